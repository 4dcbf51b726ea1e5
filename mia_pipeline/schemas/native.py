"""The compiled fast paths: ``_native/mia_jsonl.c`` decodes one kind's lines into Arrow columns;
``_native/mia_hash.c`` holds the fused kernels of ``content_hash`` (used by :mod:`.hashing`);
``_native/mia_lines.c`` finds line ends and sniffs kinds (used by :mod:`.lines`).

Why: Arrow's JSON reader (a general reader) decodes ~150 MB/s here; this decoder knows the
kind's schema and writes column buffers directly, several times faster, with no gather of the
lines (it reads them where they are in the batch). See the C file for the exact contract; in
short a line is either *accepted* with exactly the values the reference path (``slowpath.py``)
would give, or *declined* — and declined lines continue down the existing ladder (Arrow's reader,
then ``json.loads``), which names any error. So the decoder changes speed, never results.

One shared library is built from the C sources with the system C compiler on first use (``make
install`` does it up front), next to the sources, and rebuilt when a source is newer. Without a
compiler, or with ``MIA_NATIVE_PARSER=0``, :func:`available` is false: parsing uses Arrow's
reader alone and hashing its numpy kernels (same results, slower). ctypes releases the GIL during a call, so two threads decode
two halves of a kind's lines in parallel.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from mia_pipeline.schemas.contract import KIND_PARSE_SCHEMAS

log = logging.getLogger(__name__)

SOURCES = tuple(Path(__file__).with_name("_native") / name for name in ("mia_jsonl.c", "mia_hash.c", "mia_lines.c"))
LIBRARY = SOURCES[0].with_name("libmia_native.so")
T_STRUCT, T_LIST, T_STRING, T_INT64, T_DOUBLE, T_BOOL = 1, 2, 3, 4, 5, 6
PARALLEL_LINES = 16_384  # below this many lines a kind is decoded on one thread
MAX_CHILDREN = 64  # the decoder tracks seen keys of an object in one 64-bit mask


class NativeUnavailable(RuntimeError):
    """The decoder library cannot be built or loaded (the message says why)."""


class _Node(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int32), ("n_children", ctypes.c_int32), ("first_child", ctypes.c_int32),
                ("name_off", ctypes.c_int32), ("name_len", ctypes.c_int32)]


def build(force: bool = False) -> Path:
    """Compile the library if it is missing or older than one of its sources; returns its path."""
    if not force and LIBRARY.exists() and LIBRARY.stat().st_mtime >= max(s.stat().st_mtime for s in SOURCES):
        return LIBRARY
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise NativeUnavailable("no C compiler (cc/gcc) on PATH to build the compiled helpers")
    fd, tmp = tempfile.mkstemp(prefix=".libmia_native.", suffix=".so", dir=LIBRARY.parent)
    os.close(fd)
    cmd = [cc, "-O2", "-std=c11", "-shared", "-fPIC", "-o", tmp, *map(str, SOURCES)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise NativeUnavailable(f"building the compiled helpers failed: {' '.join(cmd)}\n{done.stderr[-2000:]}")
        os.replace(tmp, LIBRARY)  # atomic: concurrent builders each publish a complete library
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return LIBRARY


@functools.cache
def _lib() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(build()))
    lib.mj_new.restype = ctypes.c_void_p
    lib.mj_new.argtypes = [ctypes.c_int32, ctypes.c_void_p, ctypes.c_char_p]
    lib.mj_decode.restype = ctypes.c_int64
    lib.mj_decode.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                              ctypes.c_int64, ctypes.c_void_p]
    lib.mj_column.restype = None
    lib.mj_column.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.mj_free.restype = None
    lib.mj_free.argtypes = [ctypes.c_void_p]
    p, i64, u64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_uint64, ctypes.c_int32
    for name, args in (("mh_fixed", [p, p, p, i64, i64, u64]), ("mh_string", [p, p, i32, p, p, i64, i64, u64]),
                       ("mh_items", [p, p, i32, p, p, i64, i64]), ("mh_list", [p, p, i32, p, i64, i64, p, i64, u64]),
                       ("mh_finish", [p, i64, p]), ("ml_line_ends", [p, i64, i64, p]),
                       ("ml_sniff", [p, p, p, i64, u64, p, p, i32, p])):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = None, args
    lib.ml_count_newlines.restype = i64
    lib.ml_count_newlines.argtypes = [p, i64, i64]
    return lib


@functools.cache
def available() -> bool:
    """Whether the compiled helpers are in use (built and loaded, not disabled by MIA_NATIVE_PARSER=0)."""
    if os.environ.get("MIA_NATIVE_PARSER", "1").strip().lower() in ("0", "false", "off", "no"):
        return False
    if sys.byteorder != "little":
        log.warning("compiled helpers assume a little-endian machine; using Arrow's reader and numpy only")
        return False
    try:
        _lib()
        return True
    except (NativeUnavailable, OSError) as exc:
        log.warning("compiled helpers unavailable, using Arrow's reader and numpy only: %s", exc)
        return False


def use(compiled: bool | None) -> bool:
    """Whether a caller with a ``compiled`` switch takes the compiled path: its choice when given
    (tests compare both), else :func:`available`."""
    return available() if compiled is None else compiled


@dataclass(frozen=True)
class _Program:
    """A kind's parse schema flattened for the decoder: node i's children are contiguous."""

    nodes: ctypes.Array
    names: bytes
    types: list[pa.DataType]  # Arrow type of each node
    children: list[list[int]]


def _flatten(schema: pa.Schema) -> _Program:
    types: list[pa.DataType] = [pa.struct(list(schema))]
    children: list[list[int]] = [[]]
    spec: list[list[int]] = [[T_STRUCT, 0, 0, 0, 0]]
    names = bytearray()
    queue = [0]
    while queue:  # breadth-first: a node's children get consecutive indices
        i = queue.pop(0)
        t = types[i]
        fields = list(t) if pa.types.is_struct(t) else [pa.field("item", t.value_type)]
        if len(fields) > MAX_CHILDREN:
            raise TypeError(f"a struct of {len(fields)} fields is beyond the decoder's {MAX_CHILDREN}")
        spec[i][1], spec[i][2] = len(fields), len(types)
        for f in fields:
            j = len(types)
            types.append(f.type)
            children.append([])
            children[i].append(j)
            spec.append([_code(f.type), 0, 0, len(names), len(f.name.encode())])
            names += f.name.encode()
            if pa.types.is_struct(f.type) or pa.types.is_list(f.type):
                queue.append(j)
    nodes = (_Node * len(spec))(*[_Node(*s) for s in spec])
    return _Program(nodes, bytes(names), types, children)


_CODES = ((pa.types.is_struct, T_STRUCT), (pa.types.is_list, T_LIST), (pa.types.is_string, T_STRING),
          (pa.types.is_int64, T_INT64), (pa.types.is_float64, T_DOUBLE), (pa.types.is_boolean, T_BOOL))


def _code(t: pa.DataType) -> int:
    for is_type, code in _CODES:
        if is_type(t):
            return code
    raise TypeError(f"the JSON-lines decoder has no rule for Arrow type {t}")  # contract bug


@functools.cache
def _program(kind: str) -> _Program:
    return _flatten(KIND_PARSE_SCHEMAS[kind])


class _Columns:
    """Owns one decoder result; Arrow buffers wrapping its memory keep this object alive."""

    def __init__(self, program: _Program):
        self.lib = _lib()
        self.program = program
        self.handle = self.lib.mj_new(len(program.nodes), ctypes.addressof(program.nodes), program.names)
        if not self.handle:
            raise MemoryError("JSON-lines decoder: out of memory")

    def __del__(self):
        if getattr(self, "handle", None):
            self.lib.mj_free(self.handle)
            self.handle = None

    def decode(self, data: bytes | bytearray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
        status = np.zeros(len(starts), dtype=np.uint8)
        view = np.frombuffer(data, dtype=np.uint8)  # the bytes where they are: no copy
        if len(starts) and int((starts + lens).max()) > len(view):
            raise ValueError("line ranges beyond the end of the buffer")
        got = self.lib.mj_decode(self.handle, view.ctypes.data, starts.ctypes.data, lens.ctypes.data, len(starts),
                                 status.ctypes.data)
        if got < 0:
            raise MemoryError("JSON-lines decoder: out of memory")
        return status.view(bool)

    def _buffer(self, ptr: int | None, size: int) -> pa.Buffer:
        return pa.foreign_buffer(ptr, size, base=self) if ptr and size else pa.py_buffer(b"")

    def array(self, k: int) -> pa.Array:
        counts = (ctypes.c_int64 * 2)()
        ptrs = (ctypes.c_void_p * 3)()
        sizes = (ctypes.c_int64 * 3)()
        self.lib.mj_column(self.handle, k, counts, ptrs, sizes)
        n, nulls = counts[0], counts[1]
        t = self.program.types[k]
        validity = self._buffer(ptrs[0], sizes[0]) if nulls else None
        kids = [self.array(c) for c in self.program.children[k]]
        if pa.types.is_struct(t):
            return pa.Array.from_buffers(t, n, [validity], null_count=nulls, children=kids)
        buffers = [validity, self._buffer(ptrs[1], sizes[1])]  # values, or offsets of strings/lists
        if pa.types.is_string(t):
            buffers.append(self._buffer(ptrs[2], sizes[2]))
        return pa.Array.from_buffers(t, n, buffers, null_count=nulls, children=kids or None)

    def table(self, schema: pa.Schema) -> pa.Table:
        return pa.Table.from_arrays([self.array(c) for c in self.program.children[0]], schema=schema)


def _decode_part(kind: str, data: bytes, starts: np.ndarray, lens: np.ndarray) -> tuple[pa.Table, np.ndarray]:
    cols = _Columns(_program(kind))
    accepted = cols.decode(data, starts, lens)
    return cols.table(KIND_PARSE_SCHEMAS[kind]), accepted


def decode_kind(kind: str, data: bytes, starts: np.ndarray, lens: np.ndarray,
                pool: ThreadPoolExecutor | None = None) -> tuple[list[pa.Table], np.ndarray]:
    """Decode lines ``data[starts[i]:starts[i]+lens[i]]`` (newline excluded) as ``kind``.

    Returns the tables of accepted lines (parse schema, in line order; one per part) and the
    accepted mask over the input lines. With a pool and enough lines, two halves run in parallel.
    """
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    lens = np.ascontiguousarray(lens, dtype=np.int64)
    n = len(starts)
    if pool is None or n < PARALLEL_LINES:
        table, accepted = _decode_part(kind, data, starts, lens)
        return [table], accepted
    mid = n // 2
    parts = [pool.submit(_decode_part, kind, data, starts[a:b], lens[a:b]) for a, b in ((0, mid), (mid, n))]
    results = [p.result() for p in parts]
    return [t for t, _ in results], np.concatenate([a for _, a in results])


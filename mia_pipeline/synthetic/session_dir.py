"""Generate one session into a directory, atomically: the seven ``<table>.parquet`` + ``meta.json``.

The session is written to a temporary directory next to the target and swapped in as a whole by
:func:`mia_pipeline.storage.publish.publish_folder`: a crash leaves the old session or the new one
(never a mix); leftovers of a crashed run are removed by the next run.
``meta.json`` holds no wall-clock time, so it is byte-identical across runs too.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import datetime
from importlib import metadata
from pathlib import Path

from mia_pipeline.storage.atomic import sha256_file
from mia_pipeline.storage.publish import publish_folder
from mia_pipeline.synthetic import frames
from mia_pipeline.synthetic.config import GenConfig, validate_choice
from mia_pipeline.synthetic.generator import MIA_IA_DataGenerator
from mia_pipeline.synthetic.invariants import assert_invariants
from mia_pipeline.synthetic.overnight import session_close
from mia_pipeline.synthetic.parquet import ROW_GROUP_ROWS, WRITE_OPTIONS, StreamWriter, write_table_file

META_FILE = "meta.json"
FORMAT_VERSION = 1


def _versions() -> dict[str, str]:
    out = {}
    for dist in ("mia-pipeline", "numpy", "pandas", "pyarrow"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out


class NotASessionFolder(ValueError):
    """The output path exists and is not a session folder this generator wrote: it is never replaced."""


_PSEUDO = (Path("/proc"), Path("/sys"), Path("/dev"))


def check_replaceable(out_dir: Path) -> None:
    """Refuse an output path that would destroy something else: a path under /proc, /sys or /dev, a
    symlink, a file, or an existing folder that is not a session written here (no ``meta.json`` with
    ``generator: mia_pipeline.synthetic``, or files other than the session's). Replacing a session
    folder with a new one is fine (that is a re-run)."""
    resolved = Path(os.path.abspath(out_dir))
    if any(resolved == p or p in resolved.parents for p in _PSEUDO):
        raise NotASessionFolder(f"{out_dir} is inside {next(p for p in _PSEUDO if p == resolved or p in resolved.parents)}, "
                                "a system folder; choose a folder on a disk")
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise NotASessionFolder(f"{out_dir} exists and is not a folder; choose a new or a session folder")
    if not out_dir.exists():
        return
    names = {p.name for p in out_dir.iterdir()}
    expected = {META_FILE, *(f"{t}.parquet" for t in frames.TABLES)}
    try:
        meta = json.loads((out_dir / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = None
    if not names:
        return
    if not isinstance(meta, dict) or meta.get("generator") != "mia_pipeline.synthetic" or not names <= expected:
        raise NotASessionFolder(f"{out_dir} exists and is not a session folder written by `mia generate` "
                                f"({len(names)} entries, e.g. {sorted(names)[0]!r}); it is left as it is: "
                                "choose a new folder")


def generate_session_to_dir(
    out_dir: Path,
    *,
    start: datetime,
    minutes: int,
    scenario: str,
    seed: int,
    leadership: str = "NQ_leads",
    strength: float = 0.15,
    options_context: bool = True,
    include_labels: bool = True,
    **config: object,
) -> dict:
    """Generate, check (``assert_invariants``) and atomically write one session to ``out_dir``.

    ``start`` must be timezone-aware; extra keyword arguments are ``GenConfig`` fields (tick_size,
    book_levels, ...). Raises ``ValueError`` for bad arguments and ``InvariantViolation`` if a check
    fails (nothing is written then). Same arguments -> byte-identical files.

    Returns ``{"path", "rows": {table: n}, "files": {table: sha256}, "checks": [InvariantResult
    dicts], "duration_s", "close"}`` (``close``: the last quotes, an ``overnight.SessionClose`` or
    ``None``; the next day of a run opens from it, see ``overnight.next_open``).
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    cfg = GenConfig(start=start, minutes=minutes, **config)
    gen = MIA_IA_DataGenerator(seed=seed)
    validate_choice(scenario, leadership, strength)
    check_replaceable(out_dir)
    with publish_folder(out_dir) as tmp:
        rows, files, checks, close = _write_session(tmp, gen, cfg, scenario, leadership, strength, options_context,
                                                    include_labels, seed)
    return {
        "path": str(out_dir), "rows": rows, "files": files,
        "checks": [c.to_dict() for c in checks], "duration_s": round(time.perf_counter() - t0, 3),
        "close": close,
    }


def _write_session(tmp: Path, gen, cfg: GenConfig, scenario, leadership, strength, options_context, include_labels,
                   seed) -> tuple:
    """Generate, check and write the tables and ``meta.json`` into ``tmp``; (rows, files, checks, close)."""
    # Tables are written to the temporary directory as soon as they are generated, while generation
    # and the checks go on: one thread appends the order book chunk by chunk as it is built (the
    # largest file), another writes the other tables. Nothing is moved into place before the checks pass.
    pool, book_pool = ThreadPoolExecutor(max_workers=1), ThreadPoolExecutor(max_workers=1)
    writes: dict = {}
    streams: dict = {}
    chunk_writes: list = []
    try:
        def write(name, table):
            if name in streams:
                writes[name] = book_pool.submit(streams[name].close)
            else:
                writes[name] = pool.submit(write_table_file, table, tmp / f"{name}.parquet", True)

        def write_chunk(name, chunk):
            if name not in streams:
                streams[name] = StreamWriter(tmp / f"{name}.parquet", chunk.schema, fsync=True)
            chunk_writes.append(book_pool.submit(streams[name].write, chunk))

        tables = gen.generate_tables(cfg, scenario, leadership, strength, options_context, include_labels,
                                     on_table=write, on_chunk=write_chunk)
        checks = assert_invariants(tables, tick_size=cfg.tick_size, bar_tf_s=cfg.bar_tf_s)
        for future in chunk_writes:
            future.result()  # re-raise a failed chunk write here
        paths = {name: writes[name].result() for name in frames.TABLES}
        pool.shutdown()
        book_pool.shutdown()
        files = {name: sha256_file(p) for name, p in paths.items()}
        rows = {name: t.num_rows for name, t in tables.items()}
        close = session_close(tables["l1"], cfg.symbol_es, cfg.symbol_nq)
        del tables
        config_json = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(cfg).items()}
        meta = {
            "format_version": FORMAT_VERSION,
            "generator": "mia_pipeline.synthetic",
            "scenario": scenario, "leadership": leadership, "strength": strength, "seed": seed,
            "options_context": options_context, "include_labels": include_labels,
            "config": config_json, "start_ms": cfg.start_ms, "end_ms": cfg.end_ms,
            "parquet": dict(WRITE_OPTIONS, row_group_rows=ROW_GROUP_ROWS), "versions": _versions(),
            "rows": rows, "sha256": files,
        }
        with open(tmp / META_FILE, "w") as fh:
            json.dump(meta, fh, indent=2, sort_keys=True)
            fh.write("\n")
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        book_pool.shutdown(wait=True, cancel_futures=True)
        for stream in streams.values():
            stream.abort()
        raise
    return rows, files, checks, close

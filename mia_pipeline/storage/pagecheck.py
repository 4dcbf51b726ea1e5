"""Reading a stored Parquet file only as what its manifest vouches for.

Files this project writes (day partitions, archive month files) carry a CRC32 per page and say so in
their key-value metadata (:data:`PAGE_CRC_META`). A reader opens them with page-checksum verification:
each page it decodes is checked, at CRC cost, so a flipped byte is an error, never a row. A file
written before the checksums were kept is checked whole against its manifest's sha256 instead, once
per process while it stays the same file (inode, size, modification time).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

PAGE_CRC_META = {"mia.page_crc": "1"}
_FLAG = b"mia.page_crc"
_VERIFIED: dict[tuple, str] = {}  # (path, inode, size, mtime_ns) -> sha256 it was found to have
_GUARD = threading.Lock()


class DamagedFile(OSError):
    """A stored file that does not match what vouches for it (size, rows, a page's CRC, its sha256)."""


def has_page_crc(pf: pq.ParquetFile) -> bool:
    return (pf.metadata.metadata or {}).get(_FLAG) == b"1"


def open_checked(source, *, rows: int | None = None, size: int | None = None,
                 sha256: str | None = None) -> pq.ParquetFile:
    """``source`` (a path or an open binary file) as a ParquetFile whose reads verify every page's CRC.

    ``size``/``rows``: what the manifest says (checked now); ``sha256``: checked now, over the whole file,
    when the file carries no page checksums (local paths only; cached per file version)."""
    if isinstance(source, (str, Path)) and size is not None:
        actual = os.stat(source).st_size
        if actual != size:
            raise DamagedFile(f"{source} has {actual:,} bytes, its manifest says {size:,} (damaged or replaced)")
    try:
        pf = pq.ParquetFile(source, page_checksum_verification=True)
    except (pa.ArrowException, ValueError) as exc:
        raise DamagedFile(f"{_name(source)} is not readable Parquet ({_first(exc)})") from None
    if rows is not None and pf.metadata.num_rows != rows:
        raise DamagedFile(f"{_name(source)} holds {pf.metadata.num_rows:,} rows, its manifest says {rows:,}")
    if sha256 is not None and not has_page_crc(pf) and isinstance(source, (str, Path)):
        verify_sha256(Path(source), sha256)
    return pf


def read_checked(pf: pq.ParquetFile, where: str, **kwargs) -> pa.Table:
    """``pf.read(**kwargs)`` (or ``read_row_groups``), a page that fails its CRC raised as DamagedFile."""
    try:
        if "row_groups" in kwargs:
            return pf.read_row_groups(kwargs.pop("row_groups"), **kwargs)
        return pf.read(**kwargs)
    except (OSError, pa.ArrowException) as exc:
        raise DamagedFile(f"{where} is damaged ({_first(exc)})") from None


def verify_sha256(path: Path, sha256: str) -> None:
    """Raise DamagedFile unless ``path`` hashes to ``sha256`` (hashed once per file version per process)."""
    from mia_pipeline.storage.atomic import sha256_file

    st = os.stat(path)
    key = (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns)
    with _GUARD:
        known = _VERIFIED.get(key)
    if known is None:
        known = sha256_file(path)
        with _GUARD:
            _VERIFIED[key] = known
    if known != sha256:
        raise DamagedFile(f"{path} does not match the sha256 of its manifest (damaged)")


def _name(source) -> str:
    return str(source) if isinstance(source, (str, Path)) else getattr(source, "path", None) or "the file"


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

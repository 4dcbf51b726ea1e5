"""Which Sierra files exist, which symbol each holds, and importing one file of any Sierra kind.

Configuration (``sierra:`` settings): ``data_dir`` is Sierra Chart's Data folder; ``files`` maps a
symbol to its ``.scid`` file (``{ES: ESU25_FUT_CME.scid}``); left empty, every ``*.scid`` there is used
with the symbol read from its name (the futures root before the month code and year: ``ESU25_FUT_CME``
-> ``ES``, ``NQZ4`` -> ``NQ``; otherwise the name itself, upper case). Market depth lives beside it
(Sierra writes ``MarketDepthData/<scid stem>.<date>.depth``, one file per day): every ``*.depth`` whose
name starts with the ``.scid`` stem, in ``data_dir`` or ``data_dir/MarketDepthData``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from mia_pipeline.layout import Layout
from mia_pipeline.sources.sierra.ingest import (
    DepthSource,
    Landed,
    ScidSource,
    land_depth,
    land_dly,
    land_scid,
    land_study,
)
from mia_pipeline.storage import PartitionStore

STUDY_SUFFIXES = (".txt", ".csv")
SIERRA_SUFFIXES = (".scid", ".depth", ".dly", *STUDY_SUFFIXES)
_ROOT = re.compile(r"^([A-Z0-9]{1,4}?)[FGHJKMNQUVXZ]\d{1,2}(?=[_\-. ]|$)")


def is_sierra_file(path: Path) -> bool:
    """A ``.scid/.depth/.dly`` file, or a ``.txt/.csv`` whose header starts with ``Date`` (a study export)."""
    suffix = path.suffix.lower()
    if suffix in STUDY_SUFFIXES:
        try:
            with open(path, "rb") as f:
                return f.read(8).removeprefix(b"\xef\xbb\xbf").lower().startswith(b"date")
        except OSError:
            return False
    return suffix in SIERRA_SUFFIXES


def symbol_from_name(path: Path) -> str:
    """The symbol a Sierra file name implies (``ESU25_FUT_CME.scid`` -> ``ES``)."""
    stem = path.name.split(".")[0].upper()
    found = _ROOT.match(stem)
    return found.group(1) if found else stem


@dataclass
class SierraFiles:
    """One symbol's files: its ``.scid`` and the ``.depth`` files beside it."""

    symbol: str
    scid: Path
    depth: list[Path] = field(default_factory=list)


def configured_files(sierra, *, depth: bool | None = None) -> list[SierraFiles]:
    """The files the settings name (``sierra.files``) or, when none are named, every ``*.scid`` of
    ``sierra.data_dir``; an unset or missing folder gives ``[]`` (`mia sources test` says why)."""
    if not sierra.data_dir:
        return []
    root = Path(sierra.data_dir).expanduser()
    if not root.is_dir():
        return []
    real = root.resolve()
    pairs = ([(symbol, root / name) for symbol, name in sierra.files.items()] if sierra.files else
             [(symbol_from_name(p), p) for p in sorted(root.glob("*.scid")) if _own_file(p, real)])
    for symbol, path in pairs:
        if path.exists() and not _own_file(path, real):
            raise ValueError(f"sierra.files.{symbol}: {path} is a symbolic link or lies outside {root}: files of the "
                             "Sierra folder are read only as themselves (nothing is followed through a link); "
                             "name the file itself")
    want_depth = sierra.market_depth if depth is None else depth
    out = []
    for symbol, scid in pairs:
        stem = scid.name.split(".")[0]
        found = sorted({p for folder in (root, root / "MarketDepthData") if folder.is_dir() and _own_file(folder, real)
                        for p in folder.glob(f"{glob_escape(stem)}*.depth") if _own_file(p, real)}) if want_depth else []
        out.append(SierraFiles(symbol, scid, found))
    return out


def _own_file(path: Path, real_root: Path) -> bool:
    """A file (or folder) of the Sierra folder itself: no symbolic link, and inside it once resolved."""
    return not path.is_symlink() and path.resolve().is_relative_to(real_root) and path.exists()


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def record_sources(paths: list[Path], symbol: str | None = None, *, now_us: int | None = None) -> list:
    """The ``.scid`` / ``.depth`` files as sources for :func:`~mia_pipeline.sources.sierra.ingest.land_files`
    (the symbol from each file's name unless given); a missing or malformed file raises SierraFileError."""
    out, seen = [], {}
    for path in dict.fromkeys(Path(p).resolve() for p in paths):  # the same file named twice lands once
        if path.name in seen:
            raise ValueError(f"{seen[path.name]} and {path} have the same name: their records would share raw-line "
                             "keys (sierra:<name>, record index); import them in separate commands")
        seen[path.name] = path
        sym = symbol or symbol_from_name(path)
        out.append(ScidSource(path, sym, now_us=now_us) if path.suffix.lower() == ".scid" else DepthSource(path, sym))
    return out


def import_file(layout: Layout, store: PartitionStore, path: Path, *, symbol: str | None = None,
                tz: str | None = None, timeframe: str | None = None,
                known_symbols: frozenset[str] | None = None, now_us: int | None = None) -> Landed:
    """Land one Sierra file by its type (``.scid``, ``.depth``, ``.dly``, ``.txt``/``.csv`` study export).

    ``symbol`` defaults to :func:`symbol_from_name`; ``tz`` (the chart's zone) is needed for study
    exports only. Raises :class:`SierraFileError` for an unreadable file (nothing is written then: the
    file is read and validated whole before any day is committed) and ValueError for bad options."""
    path = Path(path)
    symbol = symbol or symbol_from_name(path)
    suffix = path.suffix.lower()
    if suffix == ".scid":
        return land_scid(layout, store, path, symbol, known_symbols=known_symbols, now_us=now_us)
    if suffix == ".depth":
        return land_depth(layout, store, path, symbol, known_symbols=known_symbols)
    if suffix == ".dly":
        return land_dly(layout, store, path, symbol, known_symbols=known_symbols)
    if suffix in STUDY_SUFFIXES:
        if not tz:
            raise ValueError(f"{path}: a study export is written in the chart's time zone: give --tz "
                             "(e.g. --tz America/New_York) or set sierra.chart_timezone")
        return land_study(layout, store, path, symbol, tz, timeframe=timeframe, known_symbols=known_symbols)
    raise ValueError(f"{path}: not a Sierra file (accepted: {', '.join(SIERRA_SUFFIXES)})")

"""Archived months read back day by day, exactly as the daily files were (the read side of the archive).

Layout of one month (``data/snapshots/archive/2025-03/``)::

    trades.3.parquet  signals.3.parquet  raw_events.3.parquet  ...  _manifest.json  .lock

One file per dataset per month; ``3`` is the month's generation: a rewrite (a later day archived into
the month) writes new names and switches the manifest, so a file a reader or a DuckDB view still holds
is never replaced under it. Every archived day's rows are whole, consecutive row groups of the file,
in day order, so one day is read back by its row-group range: same rows, same order, same columns.

The month manifest (``_manifest.json``) is the commit point of an archive write::

    {"format": 1, "month": "2025-03", "generation": 3, "updated_at": "...",
     "datasets": {"trades": {"file": "trades.3.parquet", "rows": 812, "bytes": 40213, "sha256": "...",
                             "compression": "zstd", "compression_level": 19,
                             "days": {"2025-03-04": {"rows": 12, "row_groups": [0, 1], "bytes": 1804,
                                                     "content_hash": "...", "columns": [...],
                                                     "schema_version": 1, "written_at": "...",
                                                     "folded": ["<sha256 of the daily file>"],
                                                     "schema": null}}}}}

``folded`` lists the sha256 of every daily file merged into that day: a daily file of an archived
day whose sha256 is listed is a leftover of an interrupted archive (readers ignore it); any other
daily file of that day is late data, read after the archived rows until `mia archive` folds it in.
``schema`` (base64 Arrow IPC) is only set when the day's own Arrow schema differs from the file's.

With the partitions on object storage (``layout.store``), the months are the objects
``<prefix>/archive/YYYY-MM/<name>``, the same names and manifest; locations are then ``s3://`` URLs
(:func:`month_location`) and month files are read with range requests (:func:`open_location`).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
from pathlib import Path

import pyarrow as pa

from mia_pipeline.layout import Layout, check_dataset, parse_day, parse_month
from mia_pipeline.storage.pagecheck import DamagedFile, open_checked, read_checked

ARCHIVE_FORMAT = 1
MONTH_MANIFEST = "_manifest.json"
_MONTH_DIR_RE = re.compile(r"\d{4}-\d{2}")


class ArchiveDamaged(RuntimeError):
    """A month manifest that is not what the archive writes (the caller turns it into StorageError)."""


def month_of(day: str) -> str:
    return parse_day(day).isoformat()[:7]


def month_file(dataset: str, generation: int) -> str:
    return f"{check_dataset(dataset)}.{int(generation)}.parquet"


def month_rel(month: str, name: str = "") -> str:
    """The month's key (or one of its objects') under the store's prefix."""
    return f"archive/{month}" + (f"/{name}" if name else "")


def month_location(layout: Layout, month: str, name: str = "") -> Path | str:
    """The month folder (or a file of it): a path, or an ``s3://`` URL when the partitions are on object storage."""
    if layout.store is not None:
        return f"{layout.store.url}/{month_rel(month, name)}"
    return layout.archive_month_dir(month) / name if name else layout.archive_month_dir(month)


def month_manifest_path(layout: Layout, month: str) -> Path | str:
    return month_location(layout, month, MONTH_MANIFEST)


def objects(layout: Layout):
    """The object store of ``layout.store``."""
    from mia_pipeline.storage.objects import ObjectStore

    return ObjectStore(layout.store)


def open_location(where: Path | str):
    """What ``pyarrow.parquet`` reads: the path itself, or a seekable reader of an ``s3://`` object (only the
    row groups asked for are fetched)."""
    if isinstance(where, str) and where.startswith("s3://"):
        from mia_pipeline.layout import parse_s3_url
        from mia_pipeline.storage.objects import ObjectStore

        loc = parse_s3_url(where)
        return ObjectStore(f"s3://{loc.bucket}").open_random(loc.prefix)
    return where


def month_file_sha256(layout: Layout, month: str, name: str) -> str | None:
    """sha256 of a month file as stored (None when it is missing)."""
    if layout.store is None:
        from mia_pipeline.storage.atomic import sha256_file

        path = layout.archive_month_dir(month) / name
        return sha256_file(path) if path.exists() else None
    return objects(layout).sha256(month_rel(month, name))


def month_objects(layout: Layout) -> dict[str, dict[str, int]]:
    """Object storage: ``{month folder name: {object name: size}}`` under ``archive/``."""
    out: dict[str, dict[str, int]] = {}
    for rel, info in objects(layout).list("archive").items():
        parts = rel.split("/")
        if len(parts) == 3:
            out.setdefault(parts[1], {})[parts[2]] = info.size or 0
    return out


def archived_months(layout: Layout) -> list[str]:
    """Month folders (``YYYY-MM``, valid months) under snapshots/archive that hold a manifest, sorted."""
    if layout.store is not None:
        names = [m for m, files in month_objects(layout).items() if MONTH_MANIFEST in files]
    elif layout.archive_dir.is_dir():
        names = [p.name for p in layout.archive_dir.iterdir() if (p / MONTH_MANIFEST).is_file()]
    else:
        return []
    out = []
    for name in names:
        if _MONTH_DIR_RE.fullmatch(name):
            try:
                parse_month(name)
            except ValueError:
                continue
            out.append(name)
    return sorted(out)


def empty_month(month: str) -> dict:
    return {"format": ARCHIVE_FORMAT, "month": month, "generation": 0, "datasets": {}}


def _check(manifest, month: str, path: Path) -> dict:
    """The manifest if it has the shape the archive writes and names only this month's own files."""
    def bad(why: str) -> ArchiveDamaged:
        return ArchiveDamaged(f"{path} is damaged: {why}; restore the month from a backup")

    if not isinstance(manifest, dict) or not isinstance(manifest.get("datasets"), dict):
        raise bad("not a month manifest (expected an object with a `datasets` object)")
    if manifest.get("month") != month:
        raise bad(f"it describes month {manifest.get('month')!r}")
    for ds, entry in manifest["datasets"].items():
        try:
            check_dataset(ds)
        except ValueError:
            raise bad(f"unknown dataset {ds!r}") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("days"), dict):
            raise bad(f"entry {ds} has no `days` object")
        if not isinstance(entry.get("file"), str) or not re.fullmatch(re.escape(ds) + r"\.\d{1,9}\.parquet",
                                                                        entry["file"]):
            raise bad(f"entry {ds} names {entry.get('file')!r}, not a file of its own month folder")
        for day, d in entry["days"].items():
            try:
                if month_of(day) != month:
                    raise bad(f"{ds} lists day {day} of another month")
            except ValueError:
                raise bad(f"{ds} lists {day!r}, not a day") from None
            rg = d.get("row_groups") if isinstance(d, dict) else None
            if not (isinstance(rg, list) and len(rg) == 2 and all(isinstance(i, int) and i >= 0 for i in rg)
                    and rg[0] <= rg[1] and isinstance(d.get("rows"), int) and isinstance(d.get("folded"), list)):
                raise bad(f"{ds} day {day} is malformed")
    return manifest


def _parse(data: bytes, month: str, where: Path | str) -> dict:
    try:
        raw = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArchiveDamaged(f"{where} is damaged: not valid JSON ({exc}); restore the month from a backup") from None
    return _check(raw, month, where)


def parse_month_manifest(data: bytes, month: str, where: Path | str) -> dict:
    """A month manifest's bytes (e.g. from a backup) as the archive reads them; ArchiveDamaged otherwise."""
    return _parse(data, month, where)


@functools.lru_cache(maxsize=64)
def _load(path: str, _ino: int, _mtime_ns: int, _size: int, month: str) -> dict:
    """Parsed manifest, cached by file identity (manifests are replaced atomically: a new inode)."""
    return _parse(Path(path).read_bytes(), month, Path(path))


def read_month_manifest(layout: Layout, month: str) -> dict:
    """The month's manifest (an empty one when the month was never archived). A copy: safe to edit.

    Raises :class:`ArchiveDamaged` when it is not what the archive writes."""
    man = _cached_month_manifest(layout, month)
    return empty_month(month) if man is None else json.loads(json.dumps(man))


def _cached_month_manifest(layout: Layout, month: str) -> dict | None:
    """Read-only shared view of the manifest (None when absent); readers must not modify it."""
    path = month_manifest_path(layout, month)
    if layout.store is not None:  # read each time: an object's time has a one-second grain, no identity to cache by
        try:
            return _parse(objects(layout).get_bytes(month_rel(month, MONTH_MANIFEST)), month, path)
        except FileNotFoundError:
            return None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return _load(str(path), st.st_ino, st.st_mtime_ns, st.st_size, month)


def archived_manifests(layout: Layout, lo: str = "0000-00-00", hi: str = "9999-99-99"
                       ) -> tuple[dict[str, dict], dict[str, str]]:
    """``({month: manifest}, {month: problem})`` for the months overlapping days [lo, hi]."""
    good, damaged = {}, {}
    for month in archived_months(layout):
        if month < lo[:7] or month > hi[:7]:
            continue
        try:
            man = _cached_month_manifest(layout, month)
        except (ArchiveDamaged, OSError) as exc:
            damaged[month] = str(exc)
            continue
        if man is not None:
            good[month] = man
    return good, damaged


def archived_day(layout: Layout, day: str, dataset: str) -> tuple[Path | str, dict] | None:
    """``(month file, day entry)`` when ``dataset`` of ``day`` is archived, else None.

    Raises :class:`ArchiveDamaged` when the month's manifest is damaged."""
    month = month_of(day)
    man = _cached_month_manifest(layout, month)
    if man is None:
        return None
    entry = man["datasets"].get(dataset)
    if not entry or day not in entry["days"]:
        return None
    # The month file's own sha256 and size ride along: a reader checks the file before serving its rows.
    return month_location(layout, month, entry["file"]), {**entry["days"][day], "file_sha256": entry["sha256"],
                                                          "file_bytes": entry["bytes"]}


def day_schema(meta: dict) -> pa.Schema | None:
    text = meta.get("schema")
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text))) if text else None


def encode_schema(schema: pa.Schema) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode()


def read_archived_rows(path: Path | str, meta: dict, columns: list[str] | None = None) -> pa.Table:
    """One archived day's rows from its row groups: the day's own columns (or ``columns``) and types."""
    local = not (isinstance(path, str) and path.startswith("s3://"))
    pf = open_checked(path if local else open_location(path), size=meta.get("file_bytes") if local else None,
                      sha256=meta.get("file_sha256"))
    names = list(columns) if columns is not None else list(meta["columns"])
    first, end = meta["row_groups"]
    held = sum(pf.metadata.row_group(i).num_rows for i in range(first, min(end, pf.metadata.num_row_groups)))
    if held != meta["rows"]:
        raise DamagedFile(f"{path}: the day's row groups hold {held:,} rows, its month manifest says {meta['rows']:,}")
    if end > first:
        table = read_checked(pf, str(path), row_groups=list(range(first, end)), columns=names)
    else:
        table = pf.schema_arrow.empty_table().select(names)
    own = day_schema(meta)
    if own is not None:
        fields = [own.field(n) for n in names if own.get_field_index(n) >= 0]
        table = table.select([f.name for f in fields]).cast(pa.schema(fields, metadata=own.metadata))
    return table


def with_archived(daily: dict[str, dict], months: dict[str, dict], lo: str, hi: str) -> dict[str, dict]:
    """Daily manifests ``{day: manifest}`` plus the archived days of ``months`` within [lo, hi], as
    manifests of the same shape (entries carry ``"archived": month``), sorted by day.

    A daily entry of an archived day is dropped when its sha256 was folded into the archive (a
    leftover); otherwise it is late data: its rows are added to the archived entry's."""
    out = dict(daily)
    for month, man in months.items():
        for ds, entry in man["datasets"].items():
            for day, meta in entry["days"].items():
                if not lo <= day <= hi:
                    continue
                own = daily.get(day, {}).get("datasets", {}).get(ds)
                synth = out.setdefault(day, {"format": 1, "day": day, "datasets": {}})
                if synth is daily.get(day):  # never modify the daily manifest the caller passed
                    synth = out[day] = {**synth, "datasets": dict(synth["datasets"])}
                synth["archived"] = month
                rec = {"file": entry["file"], "rows": meta["rows"], "bytes": meta.get("bytes", 0),
                       "sha256": entry["sha256"], "schema_version": meta.get("schema_version", 1),
                       "compression": entry.get("compression"), "written_at": meta.get("written_at"),
                       "columns": meta.get("columns", []), "staged": None, "archived": month}
                if own is not None and own.get("sha256") not in meta["folded"]:
                    rec.update(rows=meta["rows"] + int(own.get("rows", 0)), written_at=own.get("written_at"),
                               late_rows=int(own.get("rows", 0)))
                synth["datasets"][ds] = rec
    return dict(sorted(out.items()))

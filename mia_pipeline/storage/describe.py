"""What one stored day of one dataset is, read from its manifest and file: the facts every front door
(Dagster metadata, ``mia status``) reports, so they cannot disagree.

Example: ``describe_partition(store, "2025-06-23", "trades")`` on a day holding 12 trades gives
``PartitionFacts(rows=12, path=.../2025-06-23/trades.parquet, sha256=..., ...)``; on a day with no
``trades`` partition it gives ``rows=0, path=None`` (the day was looked at and holds nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mia_pipeline.layout import DATASETS, parse_day
from mia_pipeline.storage.partitions import PartitionStore

PREVIEW_ROWS = 5
PREVIEW_COLUMNS = 8


@dataclass
class PartitionFacts:
    dataset: str
    day: str
    rows: int
    path: Path | str | None = None      # a file, or an s3:// URL for partitions on object storage
    manifest: Path | str | None = None
    bytes: int = 0
    sha256: str | None = None
    schema_version: int | None = None
    compression: str | None = None
    written_at: str | None = None
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, Arrow type)
    preview: str = ""  # Markdown table of the first rows
    archived: str | None = None  # YYYY-MM when the day lives in that month's archive file

    @property
    def stored(self) -> bool:
        return self.path is not None


def _type_name(t: pa.DataType) -> str:
    if pa.types.is_struct(t):
        return "struct"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list<{_type_name(t.value_type)}>"
    return str(t)


def _cell(value) -> str:
    text = "" if value is None else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 40 else text[:37] + "..."


def preview_markdown(path: Path, schema: pa.Schema, rows: int = PREVIEW_ROWS) -> str:
    """The first ``rows`` rows of the file's top-level scalar columns as a Markdown table."""
    names = [f.name for f in schema if not pa.types.is_nested(f.type) and not pa.types.is_binary(f.type)
             and not pa.types.is_large_binary(f.type) and f.name != "content_hash"][:PREVIEW_COLUMNS]
    if not names:
        return ""
    batch = next(pq.ParquetFile(path).iter_batches(batch_size=rows, columns=names), None)
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for row in (batch.to_pylist() if batch is not None else [])[:rows]:
        lines.append("| " + " | ".join(_cell(row[n]) for n in names) + " |")
    return "\n".join(lines)


def describe_partition(store: PartitionStore, day, dataset: str, *, preview: bool = True) -> PartitionFacts:
    """Facts of one day's committed ``dataset`` partition (``rows=0, path=None`` when there is none)."""
    day = parse_day(day).isoformat()
    entry = store.entry(day, dataset)
    path = store.committed_file(day, dataset)
    if entry is None or path is None:
        archived = store.archived(day, dataset)
        if archived is not None:
            return _archived_facts(store, day, dataset, *archived)
        return PartitionFacts(dataset=dataset, day=day, rows=0)
    schema = pq.read_schema(path)
    return PartitionFacts(
        dataset=dataset, day=day, rows=entry.rows, path=store.file_location(day, entry),
        manifest=store.manifest_location(day),
        bytes=entry.bytes, sha256=entry.sha256, schema_version=entry.schema_version,
        compression=entry.compression, written_at=entry.written_at,
        columns=[(f.name, _type_name(f.type)) for f in schema],
        preview=preview_markdown(path, schema) if preview and entry.rows else "",
    )


def _archived_facts(store: PartitionStore, day: str, dataset: str, month_file: Path | str, meta: dict) -> PartitionFacts:
    """Facts of a day that lives in its month's archive file (``snapshots/archive/YYYY-MM/``): its own rows,
    columns and content hash; ``path`` is the month file, ``manifest`` the month manifest."""
    from mia_pipeline.storage import archive_index

    month = archive_index.month_of(day)
    schema = archive_index.day_schema(meta) or pq.read_schema(archive_index.open_location(month_file))
    if isinstance(month_file, Path):
        size = month_file.stat().st_size
    else:  # an object: its size on the server
        size = archive_index.objects(store.layout).size(month_file[len(store.layout.store.url) + 1:]) or 0
    return PartitionFacts(
        dataset=dataset, day=day, rows=int(meta["rows"]), path=month_file,
        manifest=archive_index.month_manifest_path(store.layout, month), bytes=size,
        sha256=meta.get("content_hash"), schema_version=meta.get("schema_version"), compression="zstd",
        written_at=meta.get("written_at"), columns=[(f.name, _type_name(f.type)) for f in schema
                                                    if f.name in meta.get("columns", schema.names)],
        archived=month,
    )


def rows_per_day(store: PartitionStore, datasets=DATASETS) -> dict[str, dict[str, int]]:
    """``{dataset: {day: rows}}`` for every stored day, from the manifests only."""
    out: dict[str, dict[str, int]] = {ds: {} for ds in datasets}
    manifests, _ = store.readable_manifests()
    for day, manifest in manifests.items():
        stored = manifest["datasets"]
        for ds in datasets:
            if ds in stored:
                out[ds][day] = int(stored[ds]["rows"])
    return out

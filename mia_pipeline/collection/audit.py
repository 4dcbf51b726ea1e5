"""The cross-day part of `mia check-integrity`: what no single day's manifest can vouch for.

- **duplicate ids across days**: a ``trade_id`` (trades, trade_exits) or ``signal_id`` (signals) stored
  on more than one day (each day's keys are unique by construction; the same trade on two days is a
  writer or clock problem and double-counts it downstream);
- **gaps**: CME Globex trading days (exchange_calendars, holidays excluded) inside the checked range
  with no stored day (daily or archived) — collection missed them;
- **archive ↔ backup**: archived month files that no verified backup holds (the archive is the only
  copy of old data: it must be backed up before retention may delete anything);
- **quarantine totals** per reason (reported, not a problem: quarantined lines are kept on purpose).

Example: days 2025-06-23 and 2025-06-25 stored, 2025-06-24 (a Tuesday) not: ``gaps(...)`` gives
``["2025-06-24: a CME Globex (exchange_calendars CMES) trading day with no stored data ..."]``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

from mia_pipeline.layout import Layout
from mia_pipeline.storage import PartitionStore, StorageError

ID_COLUMNS = {"trades": "trade_id", "trade_exits": "trade_id", "signals": "signal_id"}
MAX_LISTED = 20


@dataclass
class AuditReport:
    duplicates: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    unbacked_archives: list[str] = field(default_factory=list)
    quarantine: Counter = field(default_factory=Counter)

    @property
    def problems(self) -> list[str]:
        return self.duplicates + self.gaps + self.unbacked_archives


def duplicate_ids(store: PartitionStore, days: list[str]) -> list[str]:
    """One line per id stored on more than one day (first ``MAX_LISTED`` per dataset, then a count)."""
    out: list[str] = []
    if not days:
        return out
    for ds, key in ID_COLUMNS.items():
        parts = []
        for day in days:
            try:
                t = store.read(day, ds, columns=[key])
            except (StorageError, OSError, pa.ArrowException, KeyError):
                continue  # a damaged day is reported by the per-day check
            if t is not None and t.num_rows:
                parts.append(pa.table({"id": t.column(key).cast(pa.string()), "day": pa.array([day] * t.num_rows)}))
        if not parts:
            continue
        pairs = pa.concat_tables(parts).group_by(["id", "day"]).aggregate([])
        per_id = pairs.group_by("id").aggregate([("day", "count"), ("day", "list")])
        dup = per_id.filter(pc.greater(per_id.column("day_count"), 1)).sort_by("id")
        for row in dup.slice(0, MAX_LISTED).to_pylist():
            out.append(f"{ds}: {key} {row['id']} is stored on {row['day_count']} days "
                       f"({', '.join(sorted(row['day_list']))}); one trade or signal must live on one day")
        if dup.num_rows > MAX_LISTED:
            out.append(f"{ds}: {dup.num_rows - MAX_LISTED} more {key}(s) stored on several days")
    return out


def gaps(days: list[str], start: date | None = None, end: date | None = None) -> list[str]:
    """CME trading days in [start, end] (default: first..last stored day) with no stored day."""
    from mia_pipeline.collection.gaps import gap_days, gap_message

    return [gap_message(d) for d in gap_days(days, start, end)]


def unbacked_archives(layout: Layout, settings) -> list[str]:
    """Archived month files whose sha256 is in no verified backup."""
    from mia_pipeline.storage import archive_index

    months = archive_index.archived_months(layout)
    if not months:
        return []
    from mia_pipeline.lifecycle.catalog import backed_up_files

    try:
        held = backed_up_files(layout, settings)
    except (OSError, RuntimeError, ValueError) as exc:
        return [f"archive: cannot read the backups to check them ({exc})"]
    out = []
    for month in months:
        try:
            manifest = archive_index.read_month_manifest(layout, month)
        except archive_index.ArchiveDamaged:
            continue  # reported by archive_problems
        missing = sorted(ds for ds, e in manifest["datasets"].items() if e["sha256"] not in held)
        if missing:
            out.append(f"archive {month}: {', '.join(missing)} not in any verified backup "
                       "(run `mia backup --full`)")
    return out


def quarantine_totals(layout: Layout) -> Counter:
    from mia_pipeline.collection.quarantine import counts_by_reason

    total: Counter = Counter()
    for counts in counts_by_reason(layout).values():
        total.update(counts)
    return total


def audit(layout: Layout, store: PartitionStore, settings, start: date | None = None,
          end: date | None = None) -> AuditReport:
    """Every cross-day finding over the stored days (daily and archived) in [start, end]."""
    days = sorted(store.readable_manifests()[0])
    if start is not None:
        days = [d for d in days if d >= start.isoformat()]
    if end is not None:
        days = [d for d in days if d <= end.isoformat()]
    return AuditReport(duplicate_ids(store, days), gaps(days, start, end), unbacked_archives(layout, settings),
                       quarantine_totals(layout))

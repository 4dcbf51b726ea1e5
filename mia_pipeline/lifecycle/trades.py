"""`mia recover --restore-trades --trade-ids FILE`: put named trades back from a backup, nothing else.

The ids file holds one trade id per line; blank lines and lines starting with ``#`` are ignored. Every
id must be found in a good backup (``trades`` or ``trade_exits``, keyed by ``trade_id``) before
anything is written: an unknown id or a bad line changes nothing.

For each id the newest good backup that holds it is used. In each day concerned, the rows of
``trades`` and ``trade_exits`` with those ids are replaced by (or, when missing, completed with) the
backup's rows; every other row is kept as it is, in its order (rows are ordered by ``ts``). Each day
is one atomic commit of the partition store. A day whose current partition does not match its
manifest is refused: repair it first (``--validate-and-repair``), damage is not built upon.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mia_pipeline.collection.merge import concat
from mia_pipeline.lifecycle.catalog import BlobChecker, list_backups
from mia_pipeline.lifecycle.restore import RestoreError, RestoreInputError, dataset_ref, open_target
from mia_pipeline.settings import Settings
from mia_pipeline.small_files import NotASmallFile, read_small_text
from mia_pipeline.storage import PartitionStore
from mia_pipeline.storage.atomic import locked

TRADE_DATASETS = ("trades", "trade_exits")
TRADE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}")
MAX_IDS_FILE_BYTES = 16 << 20


@dataclass
class TradesRestore:
    restored: dict[str, dict[str, int]] = field(default_factory=dict)  # day -> dataset -> rows put back
    sources: dict[str, str] = field(default_factory=dict)  # trade id -> backup id used


def read_trade_ids(path: Path) -> list[str]:
    """The ids of ``path`` in file order, without repeats. Raises RestoreInputError naming each bad line."""
    try:
        text = read_small_text(path, MAX_IDS_FILE_BYTES, "a trade-id file lists one id per line")
    except NotASmallFile as exc:
        raise RestoreInputError(str(exc)) from None
    except UnicodeDecodeError as exc:
        raise RestoreInputError(f"{path} is not UTF-8 text (byte {exc.start}); list one trade id per line") from None
    except OSError as exc:
        raise RestoreInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    ids: dict[str, None] = {}  # file order, without repeats
    bad = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not TRADE_ID_RE.fullmatch(line):
            bad.append(f"line {n}: {line[:60]!r}")
        else:
            ids.setdefault(line)
    if bad:
        raise RestoreInputError(f"{path}: {len(bad)} line(s) are not trade ids (letters, digits, '_.:-', one per "
                                f"line): " + "; ".join(bad[:5]) + (" ..." if len(bad) > 5 else ""))
    if not ids:
        raise RestoreInputError(f"{path} lists no trade id (one per line; '#' starts a comment)")
    return list(ids)


def _ids_in(table: pa.Table, ids: list[str]) -> pa.Array:
    return pc.is_in(table.column("trade_id"), value_set=pa.array(ids, pa.string()))


def _sorted(table: pa.Table) -> pa.Table:
    if "ts" not in table.column_names or table.num_rows < 2:
        return table
    return table.take(pc.sort_indices(table, [("ts", "ascending")]))  # stable: equal ts keep their order


def restore_trades(layout, settings: Settings, store: PartitionStore, ids: list[str]) -> TradesRestore:
    """Restore the named trades (see the module docstring). Raises RestoreInputError for ids no good
    backup holds (nothing written), RestoreError when a day concerned is damaged here or in every backup."""
    target = open_target(layout, settings)
    found: dict[tuple[str, str], list[pa.Table]] = {}  # (day, dataset) -> backup rows to put back
    result = TradesRestore()
    with target.lock(exclusive=False):
        good, _ = list_backups(target)
        checker = BlobChecker(target)
        for backup in good:  # newest first; an id is taken from the newest good backup holding it
            remaining = [i for i in ids if i not in result.sources]
            if not remaining:
                break
            seen: set[str] = set()
            for day in backup.days():
                files = backup.day_files(day)
                for ds in TRADE_DATASETS:
                    ref = dataset_ref(files, ds)
                    if ref is None or not checker.ok(ref):  # a damaged copy is never used
                        continue
                    with target.open_blob(ref.sha256) as fh:
                        table = pq.read_table(fh)
                    if "trade_id" not in table.column_names:
                        continue
                    rows = table.filter(_ids_in(table, remaining))
                    if rows.num_rows:
                        found.setdefault((day, ds), []).append(rows)
                        seen.update(pc.unique(rows.column("trade_id")).to_pylist())
            for tid in seen:
                result.sources[tid] = f"{backup.kind}/{backup.id}"
    unknown = [i for i in ids if i not in result.sources]
    if unknown:
        raise RestoreInputError(f"{len(unknown)} trade id(s) are in no good backup: {', '.join(unknown[:10])}"
                                + (" ..." if len(unknown) > 10 else "") + "; nothing was restored")
    days = sorted({day for day, _ in found})
    with locked(layout.ingest_lock_file):  # a collector's pass waits: the rows read are the rows replaced
        _put_back(store, found, days, result)
    return result


def _put_back(store: PartitionStore, found: dict, days: list[str], result: TradesRestore) -> None:
    for day in days:  # all checks before any write
        for ds in TRADE_DATASETS:
            if problem := store.verify_dataset(day, ds):
                raise RestoreError(f"{problem}; nothing was restored: run `mia recover --validate-and-repair` first")
    for day in days:
        writes = {}
        for ds in TRADE_DATASETS:
            if (day, ds) not in found:
                continue
            rows = concat(found[(day, ds)])
            put_back = pc.unique(rows.column("trade_id")).to_pylist()
            current = store.read(day, ds)
            if current is None:
                writes[ds] = _sorted(rows)
            else:
                kept = current.filter(pc.invert(_ids_in(current, put_back)))
                writes[ds] = _sorted(_like(concat([kept, rows]), current.schema))
            result.restored.setdefault(day, {})[ds] = rows.num_rows
        store.write_many(day, writes)


def _like(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` in the stored schema when it has the same columns (else as concatenated)."""
    if set(table.column_names) != set(schema.names):
        return table
    try:
        return table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return table

"""Every path of the data tree is built here, from validated dates and ids only.

The tree is the guide's §2.1 plus what the pipeline needs::

    data/
      live/streaming/*.jsonl            landing zone
      live/current_session/             live_signals.json, open_positions.json, system_status.json
      snapshots/daily/YYYY-MM-DD/       <dataset>.parquet + _manifest.json + raw events
      snapshots/archive/YYYY-MM/        monthly compacted Parquet (+ compressed/)
      snapshots/quarantine/YYYY-MM-DD/  rejected events with their reason
      backtest/YYYY-MM-DD/<scenario>/   synthetic sessions
      processed/ml_ready/               ML datasets and exports
      backups/hourly|daily|weekly/
      reports/
      .dagster/                         Dagster instance storage

A date such as ``../../etc``, ``2025-13-01`` or ``2025-06-23/..`` raises :class:`LayoutError`;
it never becomes a path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from urllib.parse import urlsplit

_DAY_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MONTH_RE = re.compile(r"\d{4}-\d{2}")
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
MAX_PREFIX_BYTES = 768
_SEGMENT_RE = re.compile(r"[A-Za-z0-9_.\-=]{1,255}")

DATASETS = ("trades", "trade_exits", "signals", "market_bars", "market_ticks", "performance", "market_depth")
# The market data (ticks, bars, depth): the big, frequent writes of recorders and `mia import`.
MARKET_DATASETS = ("market_bars", "market_ticks", "market_depth")
# Stored per day beside the datasets but not a dataset of its own: the raw lines events came from.
RAW_EVENTS = "raw_events"
STORED_DATASETS = (*DATASETS, RAW_EVENTS)
BACKUP_KINDS = ("hourly", "daily", "weekly")
REPORT_KINDS = ("quality", "performance", "features")
LIVE_VIEWS = ("live_signals.json", "open_positions.json", "system_status.json")


class LayoutError(ValueError):
    """A date, month or id that cannot safely become part of a path."""


def parse_day(value: str | date) -> date:
    """``YYYY-MM-DD`` → date. Anything else (bad month, traversal, extra text) raises LayoutError."""
    if isinstance(value, datetime):
        raise LayoutError(f"expected a date, got a datetime {value!r}")
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _DAY_RE.fullmatch(value):
        raise LayoutError(f"invalid date {value!r}: expected YYYY-MM-DD, e.g. 2025-06-23")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise LayoutError(f"invalid date {value!r}: {exc} (expected YYYY-MM-DD, e.g. 2025-06-23)") from None


def parse_month(value: str) -> tuple[int, int]:
    """``YYYY-MM`` → (year, month); raises LayoutError otherwise."""
    if not isinstance(value, str) or not _MONTH_RE.fullmatch(value):
        raise LayoutError(f"invalid month {value!r}: expected YYYY-MM, e.g. 2025-06")
    year, month = int(value[:4]), int(value[5:])
    if not 1 <= month <= 12:
        raise LayoutError(f"invalid month {value!r}: month must be 01..12")
    return year, month


def check_id(value: str, what: str = "id") -> str:
    """An id that reaches a path: letters, digits, ``_ . -``; not starting with a dot; ≤ 128 chars."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value) or ".." in value:
        raise LayoutError(
            f"invalid {what} {value!r}: use letters, digits, '_', '-', '.' (no '..', no '/', max 128 chars)"
        )
    return value


def check_dataset(name: str) -> str:
    if name not in STORED_DATASETS:
        raise LayoutError(f"unknown dataset {name!r}; datasets: {', '.join(DATASETS)}")
    return name


def is_object_url(text: object) -> bool:
    return isinstance(text, str) and text.lower().startswith("s3://")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or "a/b" (no leading or trailing slash)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")

    def key(self, rel: str = "") -> str:
        """``bucket/prefix/rel`` as pyarrow names it."""
        parts = [self.bucket, *([self.prefix] if self.prefix else []), *([_check_rel(rel)] if rel else [])]
        return "/".join(parts)


def parse_s3_url(text: str) -> S3Location:
    """``s3://bucket/some/prefix`` → S3Location; anything else raises ValueError saying how to write it."""
    example = "write it as s3://bucket/prefix, e.g. s3://mia-backups/desk1"
    if not is_object_url(text):
        raise ValueError(f"{text!r} is not an s3:// URL; {example}")
    parts = urlsplit(text)
    if parts.query or parts.fragment:  # not echoed: a pre-signed query holds a signature
        raise ValueError(f"the s3:// URL has a query or fragment: it names a bucket and a prefix only; {example}")
    if "@" in parts.netloc or ":" in parts.netloc:
        raise ValueError("the s3:// URL holds a user, password or port: it names a bucket and a prefix only "
                         f"(credentials and the server come from the AWS_* variables); {example}")
    bucket = parts.netloc
    if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
        raise ValueError(f"{text!r}: {bucket!r} is not a bucket name (3-63 lowercase letters, digits, '.', '-'); "
                         f"{example}")
    prefix = parts.path.strip("/")
    if prefix:
        _check_rel(prefix, text)
    if len(prefix.encode()) > MAX_PREFIX_BYTES:  # S3 keys are at most 1,024 bytes; ours add up to ~100 under it
        raise ValueError(f"the prefix of {bucket!r} is {len(prefix.encode())} bytes long; keep it under "
                         f"{MAX_PREFIX_BYTES} (S3 keys are at most 1,024 bytes); {example}")
    return S3Location(bucket, prefix)


def _check_rel(rel: str, shown: str | None = None) -> str:
    segments = rel.split("/")
    if not all(_SEGMENT_RE.fullmatch(s) and s not in (".", "..") for s in segments):
        raise ValueError(f"{shown or rel!r}: key segments are letters, digits and '_ . - =' (no empty, '.' or '..' "
                         "segments)")
    return rel


@dataclass(frozen=True)
class Layout:
    """Paths under one data root. Pure: building a path never touches the disk."""

    root: Path
    # Where the daily partitions and their manifests are: None for ``root/snapshots/daily``, or an
    # ``s3://bucket/prefix`` (see mia_pipeline.storage.object_partitions). Everything else stays under root.
    store: S3Location | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).absolute())
        if isinstance(self.store, str):
            object.__setattr__(self, "store", parse_s3_url(self.store))

    def local_only(self, what: str) -> None:
        """Raise LayoutError when the partitions are on object storage and ``what`` works on local ones only."""
        if self.store is not None:
            raise LayoutError(f"{what} is not available for partitions on object storage yet: this root keeps "
                              f"them on {self.store.url} (data_collection.storage.url / MIA_STORAGE_URL); unset "
                              "it to keep partitions under the data root")

    # --- landing zone and live views
    @property
    def streaming_dir(self) -> Path:
        return self.root / "live" / "streaming"

    @property
    def current_session_dir(self) -> Path:
        return self.root / "live" / "current_session"

    def live_view(self, name: str) -> Path:
        if name not in LIVE_VIEWS:
            raise LayoutError(f"unknown live view {name!r}; views: {', '.join(LIVE_VIEWS)}")
        return self.current_session_dir / name

    # --- daily snapshots
    @property
    def daily_dir(self) -> Path:
        return self.root / "snapshots" / "daily"

    def day_dir(self, day: str | date) -> Path:
        return self.daily_dir / parse_day(day).isoformat()

    def dataset_file(self, day: str | date, dataset: str) -> Path:
        return self.day_dir(day) / f"{check_dataset(dataset)}.parquet"

    def manifest_file(self, day: str | date) -> Path:
        return self.day_dir(day) / "_manifest.json"

    # --- archive and quarantine
    @property
    def archive_dir(self) -> Path:
        return self.root / "snapshots" / "archive"

    def archive_month_dir(self, month: str) -> Path:
        year, mon = parse_month(month)
        return self.archive_dir / f"{year:04d}-{mon:02d}"

    @property
    def quarantine_dir(self) -> Path:
        return self.root / "snapshots" / "quarantine"

    def quarantine_day_dir(self, day: str | date) -> Path:
        return self.quarantine_dir / parse_day(day).isoformat()

    def quarantine_file(self, day: str | date) -> Path:
        return self.quarantine_day_dir(day) / "rejects.parquet"

    def quarantine_days(self) -> list[str]:
        """Day folders under snapshots/quarantine, sorted."""
        return _day_folders(self.quarantine_dir)

    @property
    def ingest_state_file(self) -> Path:
        """Committed byte offsets per landing-zone file (the ingestion's own cursor)."""
        return self.root / "live" / "ingest_state.json"

    @property
    def collector_control_file(self) -> Path:
        """Pid and state of a running `mia collect start` loop."""
        return self.root / "live" / "collector.json"

    @property
    def collector_lock_file(self) -> Path:
        """Held (flock) by the one running collector for its whole life; holds its pid."""
        return self.root / "live" / ".collector.lock"

    @property
    def collector_log_file(self) -> Path:
        """Output of a collector started with `mia collect start --detach`."""
        return self.root / "live" / "collector.log"

    @property
    def ingest_lock_file(self) -> Path:
        """Serializes ingestion passes (one at a time per data root)."""
        return self.root / "live" / ".ingest.lock"

    @property
    def sierra_tail_file(self) -> Path:
        """Records landed per Sierra Chart .scid/.depth file by `mia record sierra` (its cursor)."""
        return self.root / "live" / "sierra_tail.json"

    @staticmethod
    def set_aside(path: Path, stamp: str) -> Path:
        """Where a damaged state file is moved: ``<name>.bad-<stamp>`` beside it."""
        return path.with_name(f"{path.name}.bad-{check_id(stamp, 'timestamp')}")

    # --- synthetic sessions
    @property
    def backtest_dir(self) -> Path:
        return self.root / "backtest"

    def backtest_session_dir(self, day: str | date, scenario: str) -> Path:
        return self.backtest_dir / parse_day(day).isoformat() / check_id(scenario, "scenario")

    # --- processed, backups, reports, instance
    @property
    def processed_dir(self) -> Path:
        return self.root / "processed"

    @property
    def ml_ready_dir(self) -> Path:
        return self.processed_dir / "ml_ready"

    def backup_dir(self, kind: str) -> Path:
        if kind not in BACKUP_KINDS:
            raise LayoutError(f"unknown backup kind {kind!r}; kinds: {', '.join(BACKUP_KINDS)}")
        return self.root / "backups" / kind

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def metrics_dir(self) -> Path:
        """collection_metrics partitions: one ``YYYY-MM-DD.json`` of figures per day."""
        return self.reports_dir / "metrics"

    def metrics_file(self, day: str | date) -> Path:
        return self.metrics_dir / f"{parse_day(day).isoformat()}.json"

    def report_file(self, kind: str, start: str | date, end: str | date, suffix: str = ".html") -> Path:
        """One report page over the closed day interval [start, end]: ``reports/<end>/<kind>_<start>_<end>.html``
        (``<kind>_<day>.html`` for one day); its figures sit beside it with ``suffix=".json"``."""
        if kind not in REPORT_KINDS:
            raise LayoutError(f"unknown report {kind!r}; reports: {', '.join(REPORT_KINDS)}")
        a, b = parse_day(start).isoformat(), parse_day(end).isoformat()
        if a > b:
            raise LayoutError(f"report period {a}..{b} ends before it starts")
        return self.reports_dir / b / (f"{kind}_{a}" + ("" if a == b else f"_{b}") + suffix)

    @property
    def report_index_file(self) -> Path:
        """The page linking every report and the latest validation results."""
        return self.reports_dir / "index.html"

    @property
    def validations_dir(self) -> Path:
        """Latest Great Expectations results per asset and partition (``<asset>/<partition>.json``)."""
        return self.reports_dir / "validations"

    def report_days(self) -> list[str]:
        """Report folders ``reports/YYYY-MM-DD`` present, sorted."""
        return _day_folders(self.reports_dir)

    @property
    def alerts_state_file(self) -> Path:
        """Open alerts, their delivery outbox and the monitor's last observation (survives restarts)."""
        return self.reports_dir / "alert_state.json"

    @property
    def dagster_dir(self) -> Path:
        return self.root / ".dagster"

    @property
    def warehouse_file(self) -> Path:
        return self.root / "warehouse.duckdb"

    def tree(self) -> list[Path]:
        """Every directory of the layout, parents first."""
        return [
            self.root,
            self.streaming_dir,
            self.current_session_dir,
            self.daily_dir,
            self.archive_dir,
            self.archive_dir / "compressed",
            self.quarantine_dir,
            self.backtest_dir,
            self.processed_dir,
            self.ml_ready_dir,
            *(self.backup_dir(k) for k in BACKUP_KINDS),
            self.reports_dir,
            self.dagster_dir,
        ]

    def days_present(self) -> list[str]:
        """Day folders under snapshots/daily that are valid dates, sorted."""
        return _day_folders(self.daily_dir)


def _day_folders(parent: Path) -> list[str]:
    if not parent.is_dir():
        return []
    return sorted(p.name for p in parent.iterdir() if p.is_dir() and _DAY_RE.fullmatch(p.name))


def init_tree(layout: Layout) -> list[Path]:
    """Create the data tree (the guide's ``--create-structure``). Idempotent; returns the dirs created."""
    created = []
    for d in layout.tree():
        if not d.is_dir():
            d.mkdir(parents=True, exist_ok=True)
            created.append(d)
    return created

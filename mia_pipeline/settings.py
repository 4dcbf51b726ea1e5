"""Settings: one object built from the environment and an optional ``mia.yaml``, on pydantic-settings.

Precedence (lowest to highest): built-in defaults < ``mia.yaml`` < environment variables < keyword
overrides (``--data-dir``). ``mia.yaml`` mirrors the guide's configuration dictionaries (§1.1–1.2):
``data_collection`` (DATA_COLLECTION_CONFIG), ``ibkr``, ``sierra``, ``battle_navale``, plus ``backup``,
``timezone`` and ``symbols``; README "Configuration" lists every key and what it does.

**Every key acts or is refused.** A guide key this pipeline has no second behaviour for (``real_time``,
``snapshot_frequency``, ``backup_frequency``, ``storage.format``, ``sierra.chart_data/order_flow/
indicators``, ``battle_navale.*``) loads at the guide's value and is refused at any other, with the
reason and what to use instead (:data:`REFUSED`). The switches act through :meth:`Settings.off_reason`
/ :meth:`Settings.require` (recorders, imports, sensors, assets) and :meth:`Settings.refused_kinds`
(ingestion quarantines the events of a source that is off).

Environment: ``MIA_DATA_DIR``, ``MIA_CONFIG`` (path of mia.yaml; default ``./mia.yaml`` when present),
and the variables of :data:`_ENV`; ``MIA_SOURCES`` is comma separated ``name=on|off``.

Errors: every problem is collected before anything is raised, so one :class:`SettingsError` lists
them all, one per line, each naming where the bad value came from::

    MIA_RETENTION_DAYS=abc: expected an integer
    mia.yaml: data_collection.storage.compression: 'foo' is not one of zstd, snappy, gzip, lz4, none

Scalars are strict (``'7497'`` is not a port, ``1`` is not a bool); ranges and choices are field
constraints. The file and the environment are read into layers that remember which variable set which
key; pydantic-settings merges the layers and each validation error is reported against its origin.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from mia_pipeline.layout import Layout, is_object_url, parse_s3_url
from mia_pipeline.settings_sources import Conflict, describe, env_values, nested, read_file, shown

COMPRESSIONS = ("zstd", "snappy", "gzip", "lz4", "none")
IBKR_DATA_TYPES = ("BID_ASK", "TRADES", "VOLUME", "VOLATILITY")
IBKR_TIMEFRAMES = ("1min", "5min", "15min")
SIERRA_INDICATORS = ("VWAP", "BOLLINGER", "RSI", "CUSTOM_BATTLE_NAVALE")
FIRST_DAY = date(2024, 1, 1)  # default first daily partition; set data_collection.first_day to your first day

_SIGNALS_WHOLE = ("signal snapshots are stored whole (every field of guide §2.2); to stop capturing signals "
                  "set data_collection.sources.battle_navale_signals: false")
_SIERRA_OFF = "to leave Sierra out set data_collection.sources.sierra_chart_data: false"

#: guide keys with one behaviour here -> why another value is refused and what to use instead
REFUSED: dict[str, str] = {
    "data_collection.real_time": "capture is always real time (recorders append events as they arrive, the "
                                 "collector lands them within seconds); to capture nothing set data_collection.enabled: false",
    "data_collection.snapshot_frequency": "the trading system writes one snapshot per trade and every event it "
                                          "writes is stored; write fewer events there to store fewer",
    "data_collection.backup_frequency": "backups follow the guide's crontab (§4.2: hourly incremental, 02:00 daily "
                                        "full, Sunday archive); turn a backup schedule off in the Dagster UI and "
                                        "set how many are kept with backup.keep_hourly/keep_daily/keep_weekly",
    "data_collection.storage.format": "daily partitions are Parquet; `mia export --format json` (or csv) writes JSON",
    "sierra.chart_data": f"Sierra's chart data is its .scid/.depth files; {_SIERRA_OFF}",
    "sierra.order_flow": f"Sierra bars always carry bid/ask volume and delta (from the .scid trades); {_SIERRA_OFF}",
    "sierra.indicators": "indicators are not computed here: `mia import` a Sierra 'Write Bar and Study Data To "
                         "File' export to store the chart's study values, whatever studies it has",
    **{f"battle_navale.{k}": _SIGNALS_WHOLE for k in (
        "capture_all_signals", "include_features", "include_confluence", "include_regime", "signal_quality_score",
        "execution_context")},
}

#: data_collection.sources toggle -> the landing-zone event kind it gates at ingestion
SOURCE_KINDS = {"battle_navale_signals": "signal", "performance_data": "performance",
                "system_metrics": "system_status"}


class SettingsError(ValueError):
    """One or more configuration values are unknown, of the wrong type or out of range.

    ``problems`` holds one line per problem; ``str()`` lists them all.
    """

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            message = f"{len(self.problems)} problems in the settings:\n" + "\n".join(
                f"  - {p}" for p in self.problems)
        super().__init__(message)


class SourceDisabled(SettingsError):
    """A command or run needs collection, or a source, that the settings turned off (exit 2 from `mia`)."""


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return f"[{', '.join(map(str, value))}]" if isinstance(value, tuple) else shown(value)


def _only(key: str, default: Any) -> AfterValidator:
    """The guide's value loads; any other is refused with :data:`REFUSED` [key]."""
    def check(value: Any) -> Any:
        if value != default:
            raise ValueError(f"{_shown(value)} is refused: {REFUSED[key]}")
        return value

    return AfterValidator(check)


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder of the database, a name too long
        raise ValueError(f"unknown time zone {_shown(value)} (use an IANA name like America/New_York)") from None
    return value


def _some_symbols(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value or not all(v.strip() for v in value):
        raise ValueError(f"{list(value)!r} names no symbol; give at least one, e.g. [ES, NQ]")
    spaced = [v for v in value if any(c.isspace() for c in v.strip())]
    if spaced:
        raise ValueError(f"{spaced[0]!r} is not a symbol (it holds a space); separate symbols with commas, "
                         "e.g. ES,NQ")
    return value


def _iso_day(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a day; write it as YYYY-MM-DD, e.g. 2025-01-01") from None


PSEUDO_FILE_SYSTEMS = (Path("/proc"), Path("/sys"), Path("/dev"))


def _folder(fix: str) -> AfterValidator:
    """A folder on a real file system: not in /proc, /sys or /dev (kernel pseudo-files)."""
    def check(value: Path) -> Path:
        try:
            resolved = value.resolve()
        except (OSError, RuntimeError) as exc:
            raise ValueError(f"{value} cannot be resolved ({exc}); {fix}") from None
        for pseudo in PSEUDO_FILE_SYSTEMS:
            if resolved == pseudo or pseudo in resolved.parents:
                raise ValueError(f"{value} is inside {pseudo}, a kernel pseudo-file system, not a data folder; {fix}")
        return value

    return AfterValidator(check)


def _scid_files(value: dict[str, str]) -> dict[str, str]:
    for symbol, name in value.items():
        if not symbol.strip() or not name.lower().endswith(".scid"):
            raise ValueError(f"{symbol!r}: {name!r} is not a .scid file; map each symbol to its intraday file, "
                             "e.g. {ES: ESU25_FUT_CME.scid}")
    return value


def _int(lo: int, hi: int | None, what: str) -> Any:
    """A strict integer from ``lo`` to ``hi``; ``what`` names it in the error (see :func:`_problem`)."""
    return Annotated[StrictInt, Field(ge=lo, le=hi, description=what)]


Names = tuple[StrictStr, ...]
Days = _int(1, 100_000, "a number of days (at most 100,000: ~270 years)")
Seconds = _int(1, 3600, "a number of seconds")
Kept = _int(1, None, "a number of backups kept")
On = Annotated[StrictBool, Field(description="on/off")]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceToggles(_Section):
    """The guide's source switches: gate their recorders/imports/sensors/assets, or their event kind."""

    ibkr_market_data: StrictBool = True       # mia record|backfill ibkr, ibkr_history, ibkr_recorder_job
    sierra_chart_data: StrictBool = True      # mia record sierra, Sierra imports, sierra_market_data + sensor
    battle_navale_signals: StrictBool = True  # `signal` events quarantined when off
    system_metrics: StrictBool = True         # `system_status` events (component status + metrics) quarantined
    performance_data: StrictBool = True       # `performance` events quarantined when off


def _store_url(value: Any) -> str | None:
    """None (partitions under the data root) or a normalized ``s3://bucket/prefix``."""
    if value is None:
        return None
    if not is_object_url(value):
        raise ValueError(f"{value!r} is not an s3:// URL; write it as s3://bucket/prefix, or unset it to keep the "
                         "partitions under the data root")
    return parse_s3_url(value).url


class StorageConfig(_Section):
    format: Annotated[StrictStr, _only("data_collection.storage.format", "parquet")] = "parquet"
    # Where the daily partitions and their manifests live (the rest of the data root stays local).
    url: Annotated[str | None, BeforeValidator(_store_url)] = None
    compression: Literal[COMPRESSIONS] = "zstd"
    retention_days: Days = 365
    archive_after_days: Days = 90

    @model_validator(mode="after")
    def _archived_before_deleted(self) -> StorageConfig:
        if self.archive_after_days > self.retention_days:
            raise Conflict(
                f"archive_after_days ({self.archive_after_days}) must not exceed retention_days "
                f"({self.retention_days}): data would be deleted before it is archived",
                "archive_after_days", "retention_days")
        return self


class DataCollectionConfig(_Section):
    enabled: StrictBool = True
    real_time: Annotated[StrictBool, _only("data_collection.real_time", True)] = True
    snapshot_frequency: Annotated[StrictStr, _only("data_collection.snapshot_frequency", "every_trade")] = "every_trade"
    backup_frequency: Annotated[StrictStr, _only("data_collection.backup_frequency", "hourly")] = "hourly"
    first_day: Annotated[date, BeforeValidator(_iso_day)] = FIRST_DAY  # first daily partition (UTC)
    sources: SourceToggles = Field(default_factory=SourceToggles)
    storage: StorageConfig = Field(default_factory=StorageConfig)


class IbkrConfig(_Section):
    symbols: Names = ("EURUSD", "GBPUSD", "USDJPY")
    data_types: tuple[Literal[IBKR_DATA_TYPES], ...] = IBKR_DATA_TYPES
    timeframes: tuple[Literal[IBKR_TIMEFRAMES], ...] = IBKR_TIMEFRAMES
    market_hours_only: StrictBool = False
    host: StrictStr = "127.0.0.1"
    port: _int(1, 65535, "a TCP port") = 7497
    client_id: _int(0, 2**31 - 1, "an IB API client id") = 17
    futures: Names = ("ES", "NQ")
    roll_days: _int(0, 60, "a number of days") = 8
    connect_timeout_s: Seconds = 10
    request_timeout_s: Seconds = 60
    retry_wait_s: Seconds = 30
    tick_by_tick: StrictBool = False


class SierraConfig(_Section):
    chart_data: Annotated[StrictBool, _only("sierra.chart_data", True)] = True
    order_flow: Annotated[StrictBool, _only("sierra.order_flow", True)] = True
    volume_profile: StrictBool = True
    indicators: Annotated[Names, _only("sierra.indicators", SIERRA_INDICATORS)] = SIERRA_INDICATORS
    data_dir: StrictStr | None = None
    # symbol -> .scid file (relative to data_dir, or absolute); empty: every *.scid of data_dir, the symbol
    # read from the file name (ESU25_FUT_CME.scid -> ES)
    files: Annotated[dict[StrictStr, StrictStr], AfterValidator(_scid_files)] = Field(default_factory=dict)
    market_depth: StrictBool = True          # also land <data_dir>/MarketDepthData/<file stem>*.depth
    chart_timezone: Annotated[StrictStr, AfterValidator(_time_zone)] = "America/New_York"  # study exports
    stale_after_s: _int(1, 7 * 86_400, "a number of seconds") = 300  # `mia sources test`


def _whole(key: str) -> Any:
    return Annotated[StrictBool, _only(f"battle_navale.{key}", True)]


class BattleNavaleConfig(_Section):
    capture_all_signals: _whole("capture_all_signals") = True
    include_features: _whole("include_features") = True
    include_confluence: _whole("include_confluence") = True
    include_regime: _whole("include_regime") = True
    signal_quality_score: _whole("signal_quality_score") = True
    execution_context: _whole("execution_context") = True


_TARGET_FIX = "point backup.target at a folder on another disk or mount, or at s3://bucket/prefix"


def _backup_target(value: Any) -> Path | str | None:
    """A folder (checked as :func:`_folder` does) or a normalized ``s3://bucket/prefix``."""
    if value is None or isinstance(value, Path):
        return None if value is None else _folder(_TARGET_FIX).func(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} is not a folder or an s3:// URL; {_TARGET_FIX}")
    if is_object_url(value):
        return parse_s3_url(value).url
    if value.lower().startswith("s3:"):  # s3:/bucket, s3:bucket: meant as a URL, never a folder named "s3:"
        raise ValueError(f"{value!r} is not an s3:// URL; write it as s3://bucket/prefix")
    return _folder(_TARGET_FIX).func(Path(value))


class BackupConfig(_Section):
    """Where `mia backup` writes and how many backups of each kind rotation keeps.

    ``target`` None means ``<data root>/backups``; a set target is a folder on another disk or mount
    (it must exist: an unmounted disk is an error, not a reason to fill the system disk), or an
    ``s3://bucket/prefix`` on object storage (the bucket must exist; server and credentials from the
    AWS_* variables, see :mod:`mia_pipeline.storage.objects`)."""

    target: Annotated[Path | str | None, BeforeValidator(_backup_target)] = None
    keep_hourly: Kept = 24
    keep_daily: Kept = 7
    keep_weekly: Kept = 4

    @property
    def local_target(self) -> Path | None:
        """The target folder when backups go to a local disk or mount (None: the default, or object storage)."""
        return self.target if isinstance(self.target, Path) else None


def _webhook(secret: SecretStr | None) -> SecretStr | None:
    value = secret.get_secret_value() if secret is not None else ""
    if value == "":
        return None
    if not value.startswith(("http://", "https://")) or len(value) < 10:
        raise ValueError("the webhook is not an http(s) URL; set monitoring.webhook_url (or MIA_ALERT_WEBHOOK) to "
                         "e.g. https://hooks.slack.com/services/..., or leave it unset to write alerts only to "
                         "reports/alerts.jsonl")
    return secret


class MonitoringConfig(_Section):
    """Collection monitoring (guide §4.1): alert thresholds, delivery and the system-metrics sampler.

    ``webhook_url`` is a secret (Slack-style incoming webhook): it is never printed or logged."""

    collection_stopped_minutes: _int(1, 24 * 60, "a number of minutes") = 5   # no events while CME is open
    quality_min: Annotated[float, Field(gt=0, le=1, description="a score in (0, 1]")] = 0.95  # data_quality_low
    storage_min_free_mb: _int(0, None, "a number of megabytes") = 1024   # storage_full below this (data/backup)
    storage_min_free_pct: Annotated[float, Field(ge=0, lt=100, description="a percentage")] = 5.0
    webhook_url: Annotated[SecretStr | None, AfterValidator(_webhook)] = None  # .get_secret_value()
    webhook_timeout_s: _int(1, 60, "a number of seconds") = 5
    webhook_retries: _int(0, 10, "a number of retries") = 3
    system_metrics_interval_s: _int(1, 3600, "a number of seconds") = 60


class _Layer(PydanticBaseSettingsSource):
    """One layer already read (mia.yaml or the environment), handed to pydantic-settings whole."""

    def __init__(self, settings_cls: type[BaseSettings], values: dict) -> None:
        super().__init__(settings_cls)
        self.values = values

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self.values


_LAYERS: ContextVar[tuple[dict, dict]] = ContextVar("mia_settings_layers", default=({}, {}))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    data_dir: Annotated[Path, _folder("point --data-dir or MIA_DATA_DIR at a folder on a disk")] = Path("data")
    timezone: Annotated[StrictStr, AfterValidator(_time_zone)] = "America/New_York"
    symbols: Annotated[Names, AfterValidator(_some_symbols)] = ("ES", "NQ", "EURUSD", "GBPUSD", "USDJPY")
    data_collection: DataCollectionConfig = Field(default_factory=DataCollectionConfig)
    ibkr: IbkrConfig = Field(default_factory=IbkrConfig)
    sierra: SierraConfig = Field(default_factory=SierraConfig)
    battle_navale: BattleNavaleConfig = Field(default_factory=BattleNavaleConfig)
    backup: BackupConfig = Field(default_factory=BackupConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings) -> tuple[PydanticBaseSettingsSource, ...]:
        env, file = _LAYERS.get()  # set by load_settings; Settings() alone is the defaults
        return init_settings, _Layer(settings_cls, env), _Layer(settings_cls, file)

    @property
    def retention_days(self) -> int:
        return self.data_collection.storage.retention_days

    @property
    def archive_after_days(self) -> int:
        return self.data_collection.storage.archive_after_days

    @property
    def compression(self) -> str:
        return self.data_collection.storage.compression

    @property
    def layout(self) -> Layout:
        """The data root, with the partitions where ``data_collection.storage.url`` puts them."""
        return Layout(self.data_dir, store=self.data_collection.storage.url)

    @property
    def sources(self) -> SourceToggles:
        return self.data_collection.sources

    def off_reason(self, source: str | None = None) -> str | None:
        """Why collection (``source`` None) or that ``data_collection.sources`` entry is off; None when on."""
        if not self.data_collection.enabled:
            return "data collection is off (data_collection.enabled: false); set it to true to collect"
        if source is not None and not getattr(self.sources, source):
            return (f"the {source} source is off (data_collection.sources.{source}: false, or MIA_SOURCES="
                    f"{source}=off); turn it on to collect it")
        return None

    def require(self, source: str | None = None) -> None:
        """Raise :class:`SourceDisabled` (one line naming the key) when :meth:`off_reason` says why."""
        if why := self.off_reason(source):
            raise SourceDisabled(why)

    def refused_kinds(self) -> dict[str, str]:
        """Landing-zone event kind -> why ingestion quarantines it (its source toggle is off)."""
        return {kind: f"data_collection.sources.{name} is off" for name, kind in SOURCE_KINDS.items()
                if not getattr(self.sources, name)}


def defaults_if_broken() -> Settings:
    """The settings, or the defaults when they do not load: for what a code location reads at load
    time (a broken mia.yaml is reported by every command and run; the UI must still load)."""
    try:
        return load_settings()
    except SettingsError:
        return Settings()


def load_settings(
    config_path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build the settings: defaults < mia.yaml < environment < keyword overrides.

    ``config_path`` defaults to ``$MIA_CONFIG`` or ``./mia.yaml`` when that file exists.
    Raises :class:`SettingsError` listing every unknown key, wrong type, invalid or refused value at once.
    """
    env = os.environ if env is None else env
    problems: list[str] = []
    path = Path(config_path) if config_path else (Path(env["MIA_CONFIG"]) if env.get("MIA_CONFIG") else None)
    if path is None and Path("mia.yaml").is_file():
        path = Path("mia.yaml")
    file_raw = read_file(path, problems) if path is not None else {}

    values = env_values(env, problems)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    labels = {key: label for key, (_, label) in values.items()} | {(k,): f"{k}={v}" for k, v in overrides.items()}

    token = _LAYERS.set((nested(values), file_raw))
    settings = None
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        file_label = str(path) if path is not None else None
        problems += [describe(Settings, e, labels, file_raw, file_label) for e in exc.errors(include_url=False)]
    finally:
        _LAYERS.reset(token)
    if problems:
        raise SettingsError(problems)
    return settings

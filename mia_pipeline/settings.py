"""Settings: one object built from the environment and an optional ``mia.yaml``.

Precedence (lowest to highest): built-in defaults < ``mia.yaml`` < environment variables.

``mia.yaml`` mirrors the guide's configuration dictionaries (§1.1–1.2)::

    data_collection:            # DATA_COLLECTION_CONFIG
      enabled: true
      real_time: true
      snapshot_frequency: every_trade
      backup_frequency: hourly
      sources: {ibkr_market_data: true, sierra_chart_data: true, battle_navale_signals: true,
                system_metrics: true, performance_data: true}
      storage: {format: parquet, compression: zstd, retention_days: 365, archive_after_days: 90}
    ibkr:                       # IBKR_DATA_CONFIG (+ connection)
      symbols: [EURUSD, GBPUSD, USDJPY]
      data_types: [BID_ASK, TRADES, VOLUME, VOLATILITY]
      timeframes: [1min, 5min, 15min]
      market_hours_only: false
      host: 127.0.0.1
      port: 7497
      client_id: 17
      futures: [ES, NQ]         # CME front months, chosen from contract details by expiry
      roll_days: 8              # roll to the next expiry this many days before the front one expires
      connect_timeout_s: 10     # handshake + start-up sync; a silent peer is an error after this
      request_timeout_s: 60     # one historical request; an empty answer or a timeout is retried
      retry_wait_s: 30          # first wait before asking a day again (doubles per try)
      tick_by_tick: false       # also record reqTickByTickData (IB limits how many at once)
    sierra:                     # SIERRA_DATA_CONFIG
      chart_data: true
      order_flow: true
      volume_profile: true
      indicators: [VWAP, BOLLINGER, RSI, CUSTOM_BATTLE_NAVALE]
      data_dir: null            # Sierra Chart's Data folder (the .scid / .depth files)
      files: {}                 # symbol -> .scid file, e.g. {ES: ESU25_FUT_CME.scid}; {} = every *.scid
      market_depth: true        # also land <data_dir>/MarketDepthData/<scid stem>*.depth
      chart_timezone: America/New_York  # the chart's zone: study exports are written in it
      stale_after_s: 300        # `mia sources test`: a file not written for longer is reported stale
    battle_navale: {capture_all_signals: true, include_features: true, ...}
    timezone: America/New_York  # display/edge time zone; storage is always UTC
    symbols: [ES, NQ, EURUSD, GBPUSD, USDJPY]
    backup:                     # `mia backup` (guide §4.2 backup_data.py)
      target: null              # folder on another disk/mount; default <data root>/backups
      keep_hourly: 24           # incremental backups kept (like restic --keep-hourly)
      keep_daily: 7             # full backups kept
      keep_weekly: 4            # archive backups kept

Environment: ``MIA_DATA_DIR`` (default ``./data``), ``MIA_CONFIG`` (path of mia.yaml; default
``./mia.yaml`` when present), ``MIA_TIMEZONE``, ``MIA_RETENTION_DAYS``, ``MIA_ARCHIVE_AFTER_DAYS``,
``MIA_SYMBOLS`` (comma separated), ``MIA_COMPRESSION``, ``MIA_SOURCES`` (comma separated
``name=on|off``, e.g. ``ibkr_market_data=off``), ``MIA_BACKUP_TARGET``, ``MIA_BACKUP_KEEP_HOURLY``,
``MIA_BACKUP_KEEP_DAILY``, ``MIA_BACKUP_KEEP_WEEKLY``, ``MIA_IBKR_HOST``, ``MIA_IBKR_PORT``,
``MIA_IBKR_CLIENT_ID``.

Errors: every problem is collected before anything is raised, so one :class:`SettingsError` lists
them all, one per line, each naming where the bad value came from::

    MIA_RETENTION_DAYS=abc: expected an integer
    mia.yaml: data_collection.storage.compression: 'foo' is not one of zstd, snappy, gzip, lz4, none

The models are pydantic (strict scalars: ``'7497'`` is not a port, ``1`` is not a bool); the
environment and the file are merged into one mapping first, remembering which variable set which
key, and each validation error is reported against that origin.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

COMPRESSIONS = ("zstd", "snappy", "gzip", "lz4", "none")
STORAGE_FORMATS = ("parquet", "json", "csv")


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


class _Conflict(ValueError):
    """A value that is fine alone but wrong with a sibling; blame the first of ``keys`` a user set."""

    def __init__(self, message: str, *keys: str) -> None:
        super().__init__(message)
        self.keys = keys


def _one_of(choices: tuple[str, ...]) -> AfterValidator:
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return value

    return AfterValidator(check)


def _positive_days(value: int) -> int:
    if value <= 0:
        raise ValueError(f"{value} is not a positive number of days")
    return value


def _tcp_port(value: int) -> int:
    if not 0 < value < 65536:
        raise ValueError(f"{value} is not a TCP port (1-65535)")
    return value


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name like America/New_York)") from None
    return value


def _some_symbols(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value or not all(v.strip() for v in value):
        raise ValueError(f"{list(value)!r} names no symbol; give at least one, e.g. [ES, NQ]")
    return value


PSEUDO_FILE_SYSTEMS = (Path("/proc"), Path("/sys"), Path("/dev"))


def _data_folder(value: Path) -> Path:
    """A data root must be on a real file system: not in /proc, /sys or /dev (kernel pseudo-files)."""
    try:
        resolved = value.resolve()
    except (OSError, RuntimeError) as exc:
        raise ValueError(f"{value} cannot be resolved ({exc}); point it at a folder on a disk") from None
    for pseudo in PSEUDO_FILE_SYSTEMS:
        if resolved == pseudo or pseudo in resolved.parents:
            raise ValueError(f"{value} is inside {pseudo}, a kernel pseudo-file system, not a data folder; "
                             "point --data-dir or MIA_DATA_DIR at a folder on a disk")
    return value


Days = Annotated[StrictInt, AfterValidator(_positive_days)]
Names = tuple[StrictStr, ...]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceToggles(_Section):
    ibkr_market_data: StrictBool = True
    sierra_chart_data: StrictBool = True
    battle_navale_signals: StrictBool = True
    system_metrics: StrictBool = True
    performance_data: StrictBool = True


class StorageConfig(_Section):
    format: Annotated[StrictStr, _one_of(STORAGE_FORMATS)] = "parquet"
    compression: Annotated[StrictStr, _one_of(COMPRESSIONS)] = "zstd"
    retention_days: Days = 365
    # Checked even when left at its default: a lower MIA_RETENTION_DAYS can make the default wrong.
    archive_after_days: Days = Field(default=90, validate_default=True)

    @field_validator("archive_after_days")
    @classmethod
    def _archived_before_deleted(cls, value: int, info: ValidationInfo) -> int:
        retention = info.data.get("retention_days")  # absent when retention_days itself is invalid
        if retention is not None and value > retention:
            raise _Conflict(
                f"archive_after_days ({value}) must not exceed retention_days ({retention}): "
                "data would be deleted before it is archived",
                "archive_after_days", "retention_days")
        return value


class DataCollectionConfig(_Section):
    enabled: StrictBool = True
    real_time: StrictBool = True
    snapshot_frequency: StrictStr = "every_trade"
    backup_frequency: StrictStr = "hourly"
    sources: SourceToggles = Field(default_factory=SourceToggles)
    storage: StorageConfig = Field(default_factory=StorageConfig)


IBKR_DATA_TYPES = ("BID_ASK", "TRADES", "VOLUME", "VOLATILITY")
IBKR_TIMEFRAMES = ("1min", "5min", "15min")


def _ibkr_names(choices: tuple[str, ...], what: str) -> AfterValidator:
    def check(value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [v for v in value if v not in choices]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))} {'is' if len(bad) == 1 else 'are'} not {what}; "
                             f"choose from {', '.join(choices)}")
        return value

    return AfterValidator(check)


def _client_id(value: int) -> int:
    if not 0 <= value < 2**31:
        raise ValueError(f"{value} is not an IB API client id (0 to 2147483647)")
    return value


def _seconds(value: int) -> int:
    if not 1 <= value <= 3600:
        raise ValueError(f"{value} is not a number of seconds from 1 to 3600")
    return value


def _roll_days(value: int) -> int:
    if not 0 <= value <= 60:
        raise ValueError(f"{value} is not a number of days from 0 to 60 before expiry")
    return value


class IbkrConfig(_Section):
    symbols: Names = ("EURUSD", "GBPUSD", "USDJPY")
    data_types: Annotated[Names, _ibkr_names(IBKR_DATA_TYPES, "an IBKR data type")] = IBKR_DATA_TYPES
    timeframes: Annotated[Names, _ibkr_names(IBKR_TIMEFRAMES, "a bar size IBKR is recorded in")] = IBKR_TIMEFRAMES
    market_hours_only: StrictBool = False
    host: StrictStr = "127.0.0.1"
    port: Annotated[StrictInt, AfterValidator(_tcp_port)] = 7497
    client_id: Annotated[StrictInt, AfterValidator(_client_id)] = 17
    futures: Names = ("ES", "NQ")
    roll_days: Annotated[StrictInt, AfterValidator(_roll_days)] = 8
    connect_timeout_s: Annotated[StrictInt, AfterValidator(_seconds)] = 10
    request_timeout_s: Annotated[StrictInt, AfterValidator(_seconds)] = 60
    retry_wait_s: Annotated[StrictInt, AfterValidator(_seconds)] = 30
    tick_by_tick: StrictBool = False


def _scid_files(value: dict[str, str]) -> dict[str, str]:
    for symbol, name in value.items():
        if not symbol.strip() or not name.lower().endswith(".scid"):
            raise ValueError(f"{symbol!r}: {name!r} is not a .scid file; map each symbol to its intraday file, "
                             "e.g. {ES: ESU25_FUT_CME.scid}")
    return value


def _stale_seconds(value: int) -> int:
    if not 1 <= value <= 7 * 86_400:
        raise ValueError(f"{value} is not a number of seconds from 1 to 604800 (a week)")
    return value


class SierraConfig(_Section):
    chart_data: StrictBool = True
    order_flow: StrictBool = True
    volume_profile: StrictBool = True
    indicators: Names = ("VWAP", "BOLLINGER", "RSI", "CUSTOM_BATTLE_NAVALE")
    data_dir: StrictStr | None = None
    # symbol -> .scid file (relative to data_dir, or absolute); empty: every *.scid of data_dir, the symbol
    # read from the file name (ESU25_FUT_CME.scid -> ES)
    files: Annotated[dict[StrictStr, StrictStr], AfterValidator(_scid_files)] = Field(default_factory=dict)
    market_depth: StrictBool = True          # also land <data_dir>/MarketDepthData/<file stem>*.depth
    chart_timezone: Annotated[StrictStr, AfterValidator(_time_zone)] = "America/New_York"  # study exports
    stale_after_s: Annotated[StrictInt, AfterValidator(_stale_seconds)] = 300  # `mia sources test`: stale file


class BattleNavaleConfig(_Section):
    capture_all_signals: StrictBool = True
    include_features: StrictBool = True
    include_confluence: StrictBool = True
    include_regime: StrictBool = True
    signal_quality_score: StrictBool = True
    execution_context: StrictBool = True


def _backup_folder(value: Path) -> Path:
    """A backup target is a folder on a disk: not in /proc, /sys or /dev."""
    try:
        return _data_folder(value)
    except ValueError as exc:
        raise ValueError(str(exc).replace("point --data-dir or MIA_DATA_DIR at a folder on a disk",
                                          "point backup.target at a folder on another disk or mount")) from None


def _at_least_one(value: int) -> int:
    if value < 1:
        raise ValueError(f"{value} keeps no backup of this kind; keep at least 1")
    return value


class BackupConfig(_Section):
    """Where `mia backup` writes and how many backups of each kind rotation keeps.

    ``target`` None means ``<data root>/backups``; a set target is a folder on another disk or mount
    (it must exist: an unmounted disk is an error, not a reason to fill the system disk)."""

    target: Annotated[Path, AfterValidator(_backup_folder)] | None = None
    keep_hourly: Annotated[StrictInt, AfterValidator(_at_least_one)] = 24
    keep_daily: Annotated[StrictInt, AfterValidator(_at_least_one)] = 7
    keep_weekly: Annotated[StrictInt, AfterValidator(_at_least_one)] = 4


class Settings(_Section):
    data_dir: Annotated[Path, AfterValidator(_data_folder)] = Path("data")
    timezone: Annotated[StrictStr, AfterValidator(_time_zone)] = "America/New_York"
    symbols: Annotated[Names, AfterValidator(_some_symbols)] = ("ES", "NQ", "EURUSD", "GBPUSD", "USDJPY")
    data_collection: DataCollectionConfig = Field(default_factory=DataCollectionConfig)
    ibkr: IbkrConfig = Field(default_factory=IbkrConfig)
    sierra: SierraConfig = Field(default_factory=SierraConfig)
    battle_navale: BattleNavaleConfig = Field(default_factory=BattleNavaleConfig)
    backup: BackupConfig = Field(default_factory=BackupConfig)

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
    def sources(self) -> SourceToggles:
        return self.data_collection.sources


# --- where values come from ------------------------------------------------------------------

Key = tuple[str, ...]

# Environment variable -> the key it sets (MIA_SOURCES sets several keys and is handled apart).
_ENV_KEYS: dict[str, Key] = {
    "MIA_DATA_DIR": ("data_dir",),
    "MIA_TIMEZONE": ("timezone",),
    "MIA_SYMBOLS": ("symbols",),
    "MIA_RETENTION_DAYS": ("data_collection", "storage", "retention_days"),
    "MIA_ARCHIVE_AFTER_DAYS": ("data_collection", "storage", "archive_after_days"),
    "MIA_COMPRESSION": ("data_collection", "storage", "compression"),
    "MIA_BACKUP_TARGET": ("backup", "target"),
    "MIA_BACKUP_KEEP_HOURLY": ("backup", "keep_hourly"),
    "MIA_BACKUP_KEEP_DAILY": ("backup", "keep_daily"),
    "MIA_BACKUP_KEEP_WEEKLY": ("backup", "keep_weekly"),
    "MIA_IBKR_HOST": ("ibkr", "host"),
    "MIA_IBKR_PORT": ("ibkr", "port"),
    "MIA_IBKR_CLIENT_ID": ("ibkr", "client_id"),
}
_ENV_INTS = {"MIA_RETENTION_DAYS", "MIA_ARCHIVE_AFTER_DAYS", "MIA_BACKUP_KEEP_HOURLY", "MIA_BACKUP_KEEP_DAILY",
             "MIA_BACKUP_KEEP_WEEKLY", "MIA_IBKR_PORT", "MIA_IBKR_CLIENT_ID"}
_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")


def _set(tree: dict, key: Key, value: Any) -> None:
    for part in key[:-1]:
        tree = tree.setdefault(part, {})
    tree[key[-1]] = value


def _env_values(env: Mapping[str, str], problems: list[str]) -> dict[Key, tuple[Any, str]]:
    """``MIA_*`` variables as {key: (value, origin label)}; unparsable ones go to ``problems``."""
    out: dict[Key, tuple[Any, str]] = {}
    for name, key in _ENV_KEYS.items():
        if name not in env:
            continue
        text, label = env[name], f"{name}={env[name]}"
        if name in _ENV_INTS:
            try:
                value: Any = int(text)
            except ValueError:
                problems.append(f"{label}: expected an integer")
                continue
        elif name == "MIA_DATA_DIR" and not text.strip():
            problems.append(f"{label}: is empty; give a folder (e.g. MIA_DATA_DIR=./data) or unset it to use ./data")
            continue
        elif name == "MIA_BACKUP_TARGET" and not text.strip():
            problems.append(f"{label}: is empty; give a folder (e.g. MIA_BACKUP_TARGET=/mnt/backup/mia) or unset "
                            "it to use <data root>/backups")
            continue
        elif name == "MIA_IBKR_HOST" and not text.strip():
            problems.append(f"{label}: is empty; give the TWS/IB Gateway host (e.g. MIA_IBKR_HOST=127.0.0.1) or unset it")
            continue
        elif name == "MIA_SYMBOLS":
            value = [s.strip() for s in text.split(",") if s.strip()]
            if not value:
                problems.append(f"{label}: names no symbol; give comma-separated symbols, e.g. MIA_SYMBOLS=ES,NQ")
                continue
        else:
            value = text
        out[key] = (value, label)
    label = f"MIA_SOURCES={env.get('MIA_SOURCES', '')}"
    for item in filter(None, (s.strip() for s in env.get("MIA_SOURCES", "").split(","))):
        name, sep, flag = (p.strip() for p in item.partition("="))
        if not sep:
            problems.append(f"{label}: expected name=on|off items, got {item!r}")
        elif flag.lower() not in _ON + _OFF:
            problems.append(f"{label}: {name}: expected on/off/true/false, got {flag!r}")
        else:
            out[("data_collection", "sources", name)] = (flag.lower() in _ON, label)
    return out


def _read_file(path: Path, problems: list[str]) -> dict:
    import yaml  # only when there is a file: keeps `mia --help` quick

    if not path.is_file():
        problems.append(f"config file {path} does not exist (set MIA_CONFIG or pass an existing path)")
        return {}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        problems.append(f"{path}: not valid YAML: {exc}")
        return {}
    except UnicodeDecodeError as exc:
        problems.append(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8")
        return {}
    except RecursionError:
        problems.append(f"{path}: nested too deeply to be a settings file (its sections are at most three levels deep)")
        return {}
    except OSError as exc:
        problems.append(f"config file {path} cannot be read: {exc.strerror or exc}")
        return {}
    if not isinstance(loaded, dict):
        problems.append(f"{path}: expected a mapping at the top level, got {type(loaded).__name__}")
        return {}
    return loaded


def _merge(base: dict, over: dict) -> dict:
    merged = dict(base)
    for k, v in over.items():
        merged[k] = _merge(merged[k], v) if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
    return merged


# --- validation errors -> one line each -----------------------------------------------------------

_EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "bool_type": "bool (true/false)", "bool_parsing": "bool (true/false)",
    "string_type": "str", "path_type": "a path string",
    "tuple_type": "a list of strings", "list_type": "a list of strings",
    "model_type": "a mapping", "model_attributes_type": "a mapping", "dict_type": "a mapping",
}


def _dotted(loc: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(loc))


def _in_file(tree: Any, key: tuple) -> bool:
    for part in key:
        if isinstance(part, int):
            return True  # an item of a list the file set
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


def _problem(err: Mapping[str, Any]) -> str:
    kind, value = err["type"], err.get("input")
    if kind == "extra_forbidden":
        *section, name = err["loc"]
        model: Any = Settings
        for part in section:
            model = model.model_fields[part].annotation
        where = f"{_dotted(tuple(section))}." if section else ""
        return f"unknown setting {where}{name!r}; valid keys here: {', '.join(sorted(model.model_fields))}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {type(value).__name__} ({value!r})"
    if kind == "value_error":
        return str(err["ctx"]["error"])
    return err["msg"]


def _describe(err: Mapping[str, Any], labels: Mapping[Key, str], file_raw: dict, file_label: str | None) -> str:
    """``<origin>: <problem>``: origin is the variable that set the value, else the file and key."""
    loc = tuple(err["loc"])
    error = (err.get("ctx") or {}).get("error")
    problem = _problem(err)
    if isinstance(error, _Conflict):  # the message names both keys: point at their section
        blamed, loc = [loc[:-1] + (k,) for k in error.keys], loc[:-1]
    else:
        blamed = [loc]
    in_file = problem if err["type"] == "extra_forbidden" else f"{_dotted(loc)}: {problem}"
    for key in blamed:
        for n in range(len(key), 0, -1):
            if key[:n] in labels:
                return f"{labels[key[:n]]}: {problem}"
        if file_label and _in_file(file_raw, key):
            return f"{file_label}: {in_file}"
    return in_file


def load_settings(
    config_path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build the settings: defaults < mia.yaml < environment < keyword overrides.

    ``config_path`` defaults to ``$MIA_CONFIG`` or ``./mia.yaml`` when that file exists.
    Raises :class:`SettingsError` listing every unknown key, wrong type and invalid value at once.
    """
    env = os.environ if env is None else env
    problems: list[str] = []
    path = Path(config_path) if config_path else (Path(env["MIA_CONFIG"]) if env.get("MIA_CONFIG") else None)
    if path is None and Path("mia.yaml").is_file():
        path = Path("mia.yaml")
    file_raw = _read_file(path, problems) if path is not None else {}

    values = _env_values(env, problems)
    values |= {(k,): (v, f"{k}={v}") for k, v in overrides.items() if v is not None}
    layered: dict = {}
    for key, (value, _) in values.items():
        _set(layered, key, value)
    labels = {key: label for key, (_, label) in values.items()}
    raw = _merge(file_raw, layered)

    settings = None
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        file_label = str(path) if path is not None else None
        problems += [_describe(e, labels, file_raw, file_label) for e in exc.errors(include_url=False)]
    if problems:
        raise SettingsError(problems)
    return settings

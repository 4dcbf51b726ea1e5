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
    sierra:                     # SIERRA_DATA_CONFIG
      chart_data: true
      order_flow: true
      volume_profile: true
      indicators: [VWAP, BOLLINGER, RSI, CUSTOM_BATTLE_NAVALE]
      data_dir: null
    battle_navale: {capture_all_signals: true, include_features: true, ...}
    timezone: America/New_York  # display/edge time zone; storage is always UTC
    symbols: [ES, NQ, EURUSD, GBPUSD, USDJPY]

Environment: ``MIA_DATA_DIR`` (default ``./data``), ``MIA_CONFIG`` (path of mia.yaml; default
``./mia.yaml`` when present), ``MIA_TIMEZONE``, ``MIA_RETENTION_DAYS``, ``MIA_ARCHIVE_AFTER_DAYS``,
``MIA_SYMBOLS`` (comma separated), ``MIA_COMPRESSION``, ``MIA_SOURCES`` (comma separated
``name=on|off``, e.g. ``ibkr_market_data=off``).

Unknown keys and wrong types raise :class:`SettingsError` naming the key and the expected type.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

COMPRESSIONS = ("zstd", "snappy", "gzip", "lz4", "none")
STORAGE_FORMATS = ("parquet", "json", "csv")


class SettingsError(ValueError):
    """A configuration value is unknown, of the wrong type or out of range."""


@dataclass(frozen=True)
class SourceToggles:
    ibkr_market_data: bool = True
    sierra_chart_data: bool = True
    battle_navale_signals: bool = True
    system_metrics: bool = True
    performance_data: bool = True


@dataclass(frozen=True)
class StorageConfig:
    format: str = "parquet"
    compression: str = "zstd"
    retention_days: int = 365
    archive_after_days: int = 90


@dataclass(frozen=True)
class DataCollectionConfig:
    enabled: bool = True
    real_time: bool = True
    snapshot_frequency: str = "every_trade"
    backup_frequency: str = "hourly"
    sources: SourceToggles = field(default_factory=SourceToggles)
    storage: StorageConfig = field(default_factory=StorageConfig)


@dataclass(frozen=True)
class IbkrConfig:
    symbols: tuple[str, ...] = ("EURUSD", "GBPUSD", "USDJPY")
    data_types: tuple[str, ...] = ("BID_ASK", "TRADES", "VOLUME", "VOLATILITY")
    timeframes: tuple[str, ...] = ("1min", "5min", "15min")
    market_hours_only: bool = False
    host: str = "127.0.0.1"
    port: int = 7497
    client_id: int = 17


@dataclass(frozen=True)
class SierraConfig:
    chart_data: bool = True
    order_flow: bool = True
    volume_profile: bool = True
    indicators: tuple[str, ...] = ("VWAP", "BOLLINGER", "RSI", "CUSTOM_BATTLE_NAVALE")
    data_dir: str | None = None


@dataclass(frozen=True)
class BattleNavaleConfig:
    capture_all_signals: bool = True
    include_features: bool = True
    include_confluence: bool = True
    include_regime: bool = True
    signal_quality_score: bool = True
    execution_context: bool = True


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    timezone: str = "America/New_York"
    symbols: tuple[str, ...] = ("ES", "NQ", "EURUSD", "GBPUSD", "USDJPY")
    data_collection: DataCollectionConfig = field(default_factory=DataCollectionConfig)
    ibkr: IbkrConfig = field(default_factory=IbkrConfig)
    sierra: SierraConfig = field(default_factory=SierraConfig)
    battle_navale: BattleNavaleConfig = field(default_factory=BattleNavaleConfig)

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


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; build nested dataclasses."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise SettingsError(f"{key}: expected a mapping, got {type(value).__name__} ({value!r})")
        return _build(tp, value, key)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise SettingsError(f"{key}: expected a list of strings, got {type(value).__name__} ({value!r})")
        items = tuple(value)
        if not all(isinstance(v, str) for v in items):
            raise SettingsError(f"{key}: expected a list of strings, got {value!r}")
        return items
    if tp is Path:
        if not isinstance(value, str | Path):
            raise SettingsError(f"{key}: expected a path string, got {type(value).__name__}")
        return Path(value)
    # bool is a subclass of int: reject True where an int is wanted and 1 where a bool is wanted.
    if tp is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise SettingsError(f"{key}: expected an integer, got {type(value).__name__} ({value!r})")
    if tp in (bool, str) and not isinstance(value, tp):
        raise SettingsError(f"{key}: expected {_type_name(tp)}, got {type(value).__name__} ({value!r})")
    return value


def _build(cls: type, raw: dict, prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise SettingsError(
            f"unknown setting {where}{unknown[0]!r}; valid keys here: {', '.join(sorted(names))}"
        )
    kwargs = {k: _coerce(v, hints[k], f"{prefix}.{k}" if prefix else k) for k, v in raw.items()}
    return cls(**kwargs)


def _parse_bool(text: str, key: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{key}: expected on/off/true/false, got {text!r}")


def _parse_int(text: str, key: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise SettingsError(f"{key}: expected an integer, got {text!r}") from None


def _env_overrides(env: typing.Mapping[str, str]) -> dict:
    """Translate MIA_* environment variables into the nested mapping shape of mia.yaml."""
    out: dict[str, Any] = {}
    storage: dict[str, Any] = {}
    if "MIA_DATA_DIR" in env:
        out["data_dir"] = env["MIA_DATA_DIR"]
    if "MIA_TIMEZONE" in env:
        out["timezone"] = env["MIA_TIMEZONE"]
    if "MIA_SYMBOLS" in env:
        out["symbols"] = [s.strip() for s in env["MIA_SYMBOLS"].split(",") if s.strip()]
    if "MIA_RETENTION_DAYS" in env:
        storage["retention_days"] = _parse_int(env["MIA_RETENTION_DAYS"], "MIA_RETENTION_DAYS")
    if "MIA_ARCHIVE_AFTER_DAYS" in env:
        storage["archive_after_days"] = _parse_int(env["MIA_ARCHIVE_AFTER_DAYS"], "MIA_ARCHIVE_AFTER_DAYS")
    if "MIA_COMPRESSION" in env:
        storage["compression"] = env["MIA_COMPRESSION"]
    sources: dict[str, bool] = {}
    for item in filter(None, (s.strip() for s in env.get("MIA_SOURCES", "").split(","))):
        name, sep, flag = item.partition("=")
        if not sep:
            raise SettingsError(f"MIA_SOURCES: expected name=on|off items, got {item!r}")
        sources[name.strip()] = _parse_bool(flag, f"MIA_SOURCES {name.strip()}")
    dc: dict[str, Any] = {}
    if storage:
        dc["storage"] = storage
    if sources:
        dc["sources"] = sources
    if dc:
        out["data_collection"] = dc
    return out


def _merge(base: dict, over: dict) -> dict:
    merged = dict(base)
    for k, v in over.items():
        merged[k] = _merge(merged[k], v) if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
    return merged


def _validate(s: Settings) -> Settings:
    st = s.data_collection.storage
    if st.compression not in COMPRESSIONS:
        raise SettingsError(f"storage.compression: {st.compression!r} is not one of {', '.join(COMPRESSIONS)}")
    if st.format not in STORAGE_FORMATS:
        raise SettingsError(f"storage.format: {st.format!r} is not one of {', '.join(STORAGE_FORMATS)}")
    if st.retention_days <= 0 or st.archive_after_days <= 0:
        raise SettingsError("storage.retention_days and archive_after_days must be positive")
    if st.archive_after_days > st.retention_days:
        raise SettingsError(
            f"storage.archive_after_days ({st.archive_after_days}) must not exceed retention_days "
            f"({st.retention_days}): data would be deleted before it is archived"
        )
    try:
        ZoneInfo(s.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"timezone: unknown time zone {s.timezone!r} (use an IANA name like America/New_York)") from None
    if not 0 < s.ibkr.port < 65536:
        raise SettingsError(f"ibkr.port: {s.ibkr.port} is not a TCP port")
    return s


def load_settings(
    config_path: str | Path | None = None,
    env: typing.Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build the settings: defaults < mia.yaml < environment < keyword overrides.

    ``config_path`` defaults to ``$MIA_CONFIG`` or ``./mia.yaml`` when that file exists.
    Raises :class:`SettingsError` on unknown keys, wrong types or invalid values.
    """
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    path = Path(config_path) if config_path else (Path(env["MIA_CONFIG"]) if env.get("MIA_CONFIG") else None)
    if path is None and Path("mia.yaml").is_file():
        path = Path("mia.yaml")
    if path is not None:
        if not path.is_file():
            raise SettingsError(f"config file {path} does not exist (set MIA_CONFIG or pass an existing path)")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise SettingsError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise SettingsError(f"{path}: expected a mapping at the top level")
        raw = loaded
    raw = _merge(raw, _env_overrides(env))
    raw = _merge(raw, {k: v for k, v in overrides.items() if v is not None})
    if isinstance(raw.get("data_dir"), Path):
        raw["data_dir"] = str(raw["data_dir"])
    return _validate(_build(Settings, raw, ""))

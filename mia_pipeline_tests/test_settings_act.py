"""Every setting acts or is refused (issue 19 item 7): each key of the guide's config blocks (§1.1–1.2)
either changes what the pipeline does or is refused at load with a reason and what to use instead;
source switches gate their commands (exit 2 naming the key), sensors (SkipReason) and assets (Failure)."""

import json
import re

import dagster as dg
import pytest
from click.testing import CliRunner

from mia_pipeline.cli.main import cli
from mia_pipeline.settings import REFUSED, Settings, SettingsError, load_settings
from mia_pipeline_tests.guide_examples import SIGNAL_EXAMPLE, TRADE_EXAMPLE, make_event, to_line

# The guide's dictionaries, as written in §1.1–1.2 (config/automation_config.py), section -> dict.
GUIDE = {
    "data_collection": {  # DATA_COLLECTION_CONFIG
        "enabled": True, "real_time": True, "snapshot_frequency": "every_trade", "backup_frequency": "hourly",
        "sources": {"ibkr_market_data": True, "sierra_chart_data": True, "battle_navale_signals": True,
                    "system_metrics": True, "performance_data": True},
        "storage": {"format": "json", "compression": "gzip", "retention_days": 365, "archive_after_days": 90},
    },
    "ibkr": {  # IBKR_DATA_CONFIG
        "symbols": ["EURUSD", "GBPUSD", "USDJPY"], "data_types": ["BID_ASK", "TRADES", "VOLUME", "VOLATILITY"],
        "timeframes": ["1min", "5min", "15min"], "market_hours_only": False,
    },
    "sierra": {  # SIERRA_DATA_CONFIG
        "chart_data": True, "order_flow": True, "volume_profile": True,
        "indicators": ["VWAP", "BOLLINGER", "RSI", "CUSTOM_BATTLE_NAVALE"],
    },
    "battle_navale": {  # BATTLE_NAVALE_DATA_CONFIG
        "capture_all_signals": True, "include_features": True, "include_confluence": True, "include_regime": True,
        "signal_quality_score": True, "execution_context": True,
    },
}


def _keys(tree: dict, prefix: str = "") -> list[str]:
    return [k for name, v in tree.items()
            for k in (_keys(v, f"{prefix}{name}.") if isinstance(v, dict) else [f"{prefix}{name}"])]


def _tree(key: str, value) -> dict:
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def _load(tmp_path, key: str, value) -> Settings:
    cfg = tmp_path / "mia.yaml"
    cfg.write_text(json.dumps(_tree(key, value)))  # JSON is YAML
    return load_settings(cfg, env={})


def _series(s: Settings) -> set[str]:
    from mia_pipeline.sources.ibkr.service import plan

    return {x.name for x in plan(s.ibkr).series}


# key -> (another value, what it does to the pipeline: a function of the settings that must hold)
ACTS = {
    "data_collection.enabled": (False, lambda s: "data_collection.enabled" in (s.off_reason("ibkr_market_data") or "")),
    "data_collection.sources.ibkr_market_data": (
        False, lambda s: "data_collection.sources.ibkr_market_data" in (s.off_reason("ibkr_market_data") or "")),
    "data_collection.sources.sierra_chart_data": (
        False, lambda s: "data_collection.sources.sierra_chart_data" in (s.off_reason("sierra_chart_data") or "")),
    "data_collection.sources.battle_navale_signals": (False, lambda s: "signal" in s.refused_kinds()),
    "data_collection.sources.system_metrics": (False, lambda s: "system_status" in s.refused_kinds()),
    "data_collection.sources.performance_data": (False, lambda s: "performance" in s.refused_kinds()),
    # the store's Parquet codec (test_compression_setting_is_the_codec_written checks the files)
    "data_collection.storage.compression": ("lz4", lambda s: s.compression == "lz4"),
    # cleanup deletes after retention_days, archive moves after archive_after_days (lifecycle tests)
    "data_collection.storage.retention_days": (400, lambda s: s.retention_days == 400),
    "data_collection.storage.archive_after_days": (30, lambda s: s.archive_after_days == 30),
    "ibkr.symbols": (["USDJPY"], lambda s: {n.split("_")[0] for n in _series(s)} == {"USDJPY", "ES", "NQ"}),
    "ibkr.data_types": (["BID_ASK"], lambda s: {n.rsplit("_", 1)[1] for n in _series(s)} == {"ASK"}),
    "ibkr.timeframes": (["5min"], lambda s: {n.split("_")[1] for n in _series(s)} == {"5min"}),
    # reqHistoricalData / reqRealTimeBars useRTH (sources/ibkr/service.py, recorder.py)
    "ibkr.market_hours_only": (True, lambda s: s.ibkr.market_hours_only is True),
    # land_scid(profile=...): the daily volume profile of Sierra's ticks (sierra tests)
    "sierra.volume_profile": (False, lambda s: s.sierra.volume_profile is False),
}
REFUSED_VALUES = {
    "data_collection.real_time": False,
    "data_collection.snapshot_frequency": "every_5min",
    "data_collection.backup_frequency": "daily",
    "data_collection.storage.format": "csv",
    "sierra.chart_data": False,
    "sierra.order_flow": False,
    "sierra.indicators": ["VWAP"],
    **{f"battle_navale.{k}": False for k in GUIDE["battle_navale"]},
}


def test_the_tables_cover_every_guide_key_once():
    keys = _keys(GUIDE)
    assert len(keys) == 27
    assert sorted(keys) == sorted([*ACTS, *REFUSED_VALUES])
    assert not set(ACTS) & set(REFUSED_VALUES)
    assert set(REFUSED) == set(REFUSED_VALUES)


@pytest.mark.parametrize("key", sorted(ACTS))
def test_a_guide_key_that_acts(tmp_path, key):
    value, effect = ACTS[key]
    default = Settings()
    assert not effect(default), f"{key}: the effect already holds at the default"
    assert effect(_load(tmp_path, key, value)), f"{key}: {value!r} changed nothing"


@pytest.mark.parametrize("key", sorted(REFUSED_VALUES))
def test_a_guide_key_without_another_behaviour_is_refused_with_what_to_use(tmp_path, key):
    section, name = key.rsplit(".", 1)
    guide_value = GUIDE
    for part in key.split("."):
        guide_value = guide_value[part]
    if key != "data_collection.storage.format":  # the guide's 'json' is itself refused (below)
        _load(tmp_path, key, guide_value)  # the guide's value loads silently
    with pytest.raises(SettingsError) as info:
        _load(tmp_path, key, REFUSED_VALUES[key])
    [line] = info.value.problems
    assert re.fullmatch(rf".*mia\.yaml: {re.escape(key)}: .+ is refused: .+", line), line
    assert "\n" not in line


def test_the_guide_dicts_load_except_json_storage(tmp_path):
    cfg = tmp_path / "mia.yaml"
    cfg.write_text(json.dumps(GUIDE))
    with pytest.raises(SettingsError) as info:
        load_settings(cfg, env={})
    assert info.value.problems == [
        f"{cfg}: data_collection.storage.format: 'json' is refused: daily partitions are Parquet; "
        "`mia export --format json` (or csv) writes JSON"]
    GUIDE["data_collection"]["storage"]["format"] = "parquet"
    try:
        cfg.write_text(json.dumps(GUIDE))
        assert load_settings(cfg, env={}).compression == "gzip"
    finally:
        GUIDE["data_collection"]["storage"]["format"] = "json"


def test_compression_setting_is_the_codec_written(layout):
    import pyarrow.parquet as pq

    from mia_pipeline.collection.ingest import ingest_landing_zone
    from mia_pipeline.storage import PartitionStore

    s = load_settings(env={"MIA_COMPRESSION": "gzip"})
    store = PartitionStore(layout, compression=s.compression)
    (layout.streaming_dir / "a.jsonl").write_bytes(to_line(TRADE_EXAMPLE))
    ingest_landing_zone(layout, store)
    path = store.committed_file("2025-06-23", "trades")
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "GZIP"


def test_first_day_setting_from_file_and_environment(tmp_path):
    from datetime import date

    assert Settings().data_collection.first_day == date(2024, 1, 1)
    assert _load(tmp_path, "data_collection.first_day", "2025-06-01").data_collection.first_day == date(2025, 6, 1)
    assert load_settings(env={"MIA_FIRST_DAY": "2025-01-01"}).data_collection.first_day == date(2025, 1, 1)
    with pytest.raises(SettingsError, match=re.escape("MIA_FIRST_DAY=06/01/2025: '06/01/2025' is not a day; "
                                                      "write it as YYYY-MM-DD")):
        load_settings(env={"MIA_FIRST_DAY": "06/01/2025"})


def test_partitions_start_at_the_first_day_and_a_broken_file_still_loads(tmp_path):
    import subprocess
    import sys

    code = ("import mia_pipeline.defs.schedules; "  # reads the time zone at load too
            "from mia_pipeline.defs.partitions import daily_partitions as d, monthly_partitions as m, "
            "weekly_partitions as w; print(d.start.date(), m.start.date(), w.start.date())")
    bad = tmp_path / "bad.yaml"
    bad.write_text("ibkr: {port: nope}\n")
    for env, expected in [({"MIA_FIRST_DAY": "2025-06-18"}, "2025-06-18 2025-06-01 2025-06-22"),
                          ({"MIA_CONFIG": str(bad)}, "2024-01-01 2024-01-01 2024-01-07")]:
        out = subprocess.run([sys.executable, "-c", code], env={"PATH": "/usr/bin:/bin", **env}, cwd=tmp_path,
                             capture_output=True, text=True, check=True).stdout.strip()
        assert out == expected


# --- the switches in the `mia` command -----------------------------------------------------------


def mia(layout, *args, env=None, code=0):
    res = CliRunner().invoke(cli, ["--data-dir", str(layout.root), *args], env=env)
    assert res.exit_code == code, res.output
    return res.output


OFF = "data_collection: {enabled: false}\n"


@pytest.mark.parametrize(("args", "sources", "key"), [
    (["record", "ibkr", "--duration", "1"], "ibkr_market_data=off", "data_collection.sources.ibkr_market_data"),
    (["backfill", "ibkr", "--start", "2025-06-23", "--end", "2025-06-23"], "ibkr_market_data=off",
     "data_collection.sources.ibkr_market_data"),
    (["record", "sierra", "--once"], "sierra_chart_data=off", "data_collection.sources.sierra_chart_data"),
    (["import", "{scid}"], "sierra_chart_data=off", "data_collection.sources.sierra_chart_data"),
    (["collect", "start", "--once"], None, "data_collection.enabled"),
    (["collect", "start", "--sensor"], None, "data_collection.enabled"),
    (["import", "{jsonl}"], None, "data_collection.enabled"),
    (["record", "ibkr", "--duration", "1"], None, "data_collection.enabled"),
])
def test_a_command_of_a_source_turned_off_exits_2_naming_the_key(layout, tmp_path, args, sources, key):
    scid, jsonl = tmp_path / "ESU25_FUT_CME.scid", tmp_path / "events.jsonl"
    scid.write_bytes(b"SCID")
    jsonl.write_bytes(to_line(TRADE_EXAMPLE))
    cfg = tmp_path / "mia.yaml"
    cfg.write_text(OFF if sources is None else "")
    args = [a.format(scid=scid, jsonl=jsonl) for a in args]
    out = mia(layout, "--config", str(cfg), *args, env={"MIA_SOURCES": sources or ""}, code=2)
    assert key in out and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1, out
    assert not list(layout.streaming_dir.glob("*.jsonl"))  # nothing staged or recorded


def test_collect_quarantines_the_events_of_a_kind_turned_off(layout):
    (layout.streaming_dir / "a.jsonl").write_bytes(
        to_line(TRADE_EXAMPLE) + to_line(SIGNAL_EXAMPLE) + to_line(make_event("performance")))
    out = mia(layout, "collect", "start", "--once", env={"MIA_SOURCES": "battle_navale_signals=off"})
    assert "trades 1" in out and "performance 1" in out and "source_disabled 1" in out


# --- the switches in Dagster ----------------------------------------------------------------------


@pytest.fixture
def off_resources(layout, tmp_path):
    from mia_pipeline.defs.resources import MiaResource

    def make(yaml_text: str):
        cfg = tmp_path / "mia.yaml"
        cfg.write_text(yaml_text)
        return {"mia": MiaResource(data_dir=str(layout.root), config_path=str(cfg))}

    return make


def test_sensors_skip_naming_the_key(layout, off_resources):
    from mia_pipeline.defs.sensors import landing_zone_sensor
    from mia_pipeline.defs.sierra import sierra_chart_sensor

    (layout.streaming_dir / "a.jsonl").write_bytes(to_line(TRADE_EXAMPLE))
    skip = landing_zone_sensor(dg.build_sensor_context(resources=off_resources(OFF)))
    assert isinstance(skip, dg.SkipReason) and "data_collection.enabled" in skip.skip_message
    res = off_resources("data_collection: {sources: {sierra_chart_data: false}}\n")
    skip = sierra_chart_sensor(dg.build_sensor_context(resources=res))
    assert isinstance(skip, dg.SkipReason) and "data_collection.sources.sierra_chart_data" in skip.skip_message


@pytest.mark.slow  # in-process Dagster runs
def test_assets_and_jobs_of_a_source_turned_off_fail_naming_the_key(off_resources):
    from mia_pipeline.defs.ibkr import ibkr_recorder_job
    from mia_pipeline.defs.sierra import sierra_market_data

    res = off_resources("data_collection: {sources: {sierra_chart_data: false, ibkr_market_data: false}}\n")
    result = dg.materialize([sierra_market_data], partition_key="2025-06-23", resources=res, raise_on_error=False)
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "data_collection.sources.sierra_chart_data" in failure.step_failure_data.user_failure_data.description
    result = ibkr_recorder_job.execute_in_process(resources=res, raise_on_error=False)
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "data_collection.sources.ibkr_market_data" in failure.step_failure_data.user_failure_data.description


def test_the_resource_gate_is_a_failure_naming_the_key(off_resources):
    mia = off_resources("data_collection: {sources: {ibkr_market_data: false}}\n")["mia"]
    assert mia.require("sierra_chart_data").sources.ibkr_market_data is False
    with pytest.raises(dg.Failure, match="data_collection.sources.ibkr_market_data"):
        mia.require("ibkr_market_data")


def test_the_landing_zone_asset_obeys_the_switches_too(layout, off_resources):
    from mia_pipeline.defs.collection import landing_zone
    from mia_pipeline.storage import PartitionStore

    (layout.streaming_dir / "a.jsonl").write_bytes(to_line(TRADE_EXAMPLE))
    result = dg.materialize([landing_zone], resources=off_resources(OFF), raise_on_error=False)
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "data_collection.enabled" in failure.step_failure_data.user_failure_data.description
    assert PartitionStore(layout).readable_manifests()[0] == {}  # nothing landed
    signal = to_line(make_event("signal", event_id="s-off", timestamp=TRADE_EXAMPLE["timestamp"]))
    (layout.streaming_dir / "b.jsonl").write_bytes(signal)
    res = off_resources("data_collection: {sources: {battle_navale_signals: false}}\n")
    result = dg.materialize([landing_zone], resources=res)
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["quarantined"].value == {"source_disabled": 1}

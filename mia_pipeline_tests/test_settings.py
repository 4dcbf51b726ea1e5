"""Settings: defaults < mia.yaml < environment, and every problem reported at once with its source."""

import re

import pytest

from mia_pipeline.settings import SettingsError, load_settings


def test_defaults_match_the_guide(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(env={})
    assert s.data_dir.as_posix() == "data"
    assert s.retention_days == 365 and s.archive_after_days == 90
    assert s.compression == "zstd"
    assert s.ibkr.symbols == ("EURUSD", "GBPUSD", "USDJPY")
    assert s.ibkr.timeframes == ("1min", "5min", "15min")
    assert "CUSTOM_BATTLE_NAVALE" in s.sierra.indicators
    assert s.sources.ibkr_market_data is True


def test_yaml_mirrors_guide_dicts_and_env_wins(tmp_path):
    cfg = tmp_path / "mia.yaml"
    cfg.write_text(
        "data_collection:\n"
        "  storage: {compression: lz4, retention_days: 400, archive_after_days: 30}\n"
        "  sources: {sierra_chart_data: false}\n"
        "ibkr: {symbols: [EURUSD], port: 4002}\n"
        "sierra: {indicators: [VWAP]}\n"
    )
    s = load_settings(cfg, env={"MIA_RETENTION_DAYS": "500", "MIA_SOURCES": "ibkr_market_data=off"})
    assert s.compression == "lz4"
    assert s.retention_days == 500  # env beats the file
    assert s.archive_after_days == 30
    assert s.sources.sierra_chart_data is False and s.sources.ibkr_market_data is False
    assert s.ibkr.symbols == ("EURUSD",) and s.ibkr.port == 4002
    assert s.sierra.indicators == ("VWAP",)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("ibkr: {symbol: [ES]}\n", r"unknown setting ibkr\.'symbol'"),
        ("bogus: 1\n", r"unknown setting 'bogus'"),
        ("ibkr: {port: '7497'}\n", r"ibkr\.port: expected an integer"),
        ("ibkr: {port: true}\n", r"ibkr\.port: expected an integer"),
        ("ibkr: {market_hours_only: 1}\n", r"market_hours_only: expected bool"),
        ("ibkr: {symbols: EURUSD}\n", r"ibkr\.symbols: expected a list"),
        ("data_collection: {storage: {compression: brotli}}\n", r"compression: 'brotli' is not one of"),
        ("data_collection: {storage: {archive_after_days: 400}}\n", r"must not exceed retention_days"),
        ("timezone: Mars/Olympus\n", r"unknown time zone"),
        ("- a\n- b\n", r"expected a mapping"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path, yaml_text, message):
    cfg = tmp_path / "mia.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(SettingsError, match=message):
        load_settings(cfg, env={})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MIA_RETENTION_DAYS": "a year"}, "MIA_RETENTION_DAYS=a year: expected an integer"),
        ({"MIA_SOURCES": "ibkr_market_data"}, "expected name=on|off"),
        ({"MIA_SOURCES": "ibkr_market_data=maybe"}, "expected on/off"),
        ({"MIA_SOURCES": "telepathy=on"}, "unknown setting data_collection.sources.'telepathy'"),
        ({"MIA_CONFIG": "/nonexistent/mia.yaml"}, "does not exist"),
    ],
)
def test_bad_environment_is_a_clear_error(env, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(env=env)


def test_every_problem_is_reported_at_once_naming_its_variable_or_file_key(tmp_path):
    cfg = tmp_path / "mia.yaml"
    cfg.write_text(
        "data_collection:\n"
        "  storage: {compression: foo}\n"
        "  sources: {telepathy: true}\n"
        "ibkr: {port: '7497', symbols: [EURUSD, 5]}\n"
        "timezone: Mars/Olympus\n"
    )
    env = {"MIA_RETENTION_DAYS": "abc", "MIA_COMPRESSION": "brotli", "MIA_SOURCES": "system_metrics=maybe"}
    with pytest.raises(SettingsError) as info:
        load_settings(cfg, env=env)
    problems = info.value.problems
    assert problems == [
        "MIA_RETENTION_DAYS=abc: expected an integer",
        "MIA_SOURCES=system_metrics=maybe: system_metrics: expected on/off/true/false, got 'maybe'",
        f"{cfg}: timezone: unknown time zone 'Mars/Olympus' (use an IANA name like America/New_York)",
        f"{cfg}: unknown setting data_collection.sources.'telepathy'; valid keys here: battle_navale_signals, "
        "ibkr_market_data, performance_data, sierra_chart_data, system_metrics",
        # the environment wins over the file: the bad value that counts is the variable's
        "MIA_COMPRESSION=brotli: 'brotli' is not one of zstd, snappy, gzip, lz4, none",
        f"{cfg}: ibkr.symbols[1]: expected str, got int (5)",
        f"{cfg}: ibkr.port: expected an integer, got str ('7497')",
    ]
    message = str(info.value)
    assert message.startswith("7 problems in the settings:\n")
    assert all(f"  - {p}" in message for p in problems)


def test_one_problem_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./mia.yaml
    with pytest.raises(SettingsError) as info:
        load_settings(env={"MIA_COMPRESSION": "foo", "MIA_CONFIG": ""})
    assert str(info.value) == "MIA_COMPRESSION=foo: 'foo' is not one of zstd, snappy, gzip, lz4, none"


@pytest.mark.parametrize(
    ("yaml_text", "env", "message"),
    [
        # archive age from the file, retention from the default: the file's key is to blame
        ("data_collection: {storage: {archive_after_days: 400}}\n", {},
         "{cfg}: data_collection.storage: archive_after_days (400) must not exceed retention_days (365)"),
        # archive age left at its default, retention lowered by the environment: the variable is to blame
        ("", {"MIA_RETENTION_DAYS": "30"},
         "MIA_RETENTION_DAYS=30: archive_after_days (90) must not exceed retention_days (30)"),
    ],
)
def test_a_conflict_names_the_value_that_was_set(tmp_path, yaml_text, env, message):
    cfg = tmp_path / "mia.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(SettingsError, match=re.escape(message.format(cfg=cfg))):
        load_settings(cfg, env=env)


def test_a_bad_file_does_not_hide_the_environments_problems(tmp_path):
    cfg = tmp_path / "mia.yaml"
    cfg.write_text("ibkr: [unclosed\n")
    with pytest.raises(SettingsError) as info:
        load_settings(cfg, env={"MIA_ARCHIVE_AFTER_DAYS": "soon"})
    assert len(info.value.problems) == 2
    assert "not valid YAML" in info.value.problems[0]
    assert info.value.problems[1] == "MIA_ARCHIVE_AFTER_DAYS=soon: expected an integer"


def test_an_empty_mia_data_dir_is_an_error_not_the_current_folder():
    from mia_pipeline.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="MIA_DATA_DIR=: is empty"):
        load_settings(env={"MIA_DATA_DIR": ""})

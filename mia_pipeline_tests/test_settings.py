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
        "sierra: {volume_profile: false}\n"
    )
    s = load_settings(cfg, env={"MIA_RETENTION_DAYS": "500", "MIA_SOURCES": "ibkr_market_data=off"})
    assert s.compression == "lz4"
    assert s.retention_days == 500  # env beats the file
    assert s.archive_after_days == 30
    assert s.sources.sierra_chart_data is False and s.sources.ibkr_market_data is False
    assert s.ibkr.symbols == ("EURUSD",) and s.ibkr.port == 4002
    assert s.sierra.volume_profile is False


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


def test_backup_defaults_file_and_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    b = load_settings(env={}).backup
    assert (b.target, b.keep_hourly, b.keep_daily, b.keep_weekly) == (None, 24, 7, 4)
    cfg = tmp_path / "mia.yaml"
    cfg.write_text("backup: {target: /mnt/backup/mia, keep_daily: 14}\n")
    b = load_settings(cfg, env={"MIA_BACKUP_KEEP_WEEKLY": "8"}).backup
    assert str(b.target) == "/mnt/backup/mia" and b.keep_daily == 14 and b.keep_weekly == 8
    b = load_settings(cfg, env={"MIA_BACKUP_TARGET": "/srv/b", "MIA_BACKUP_KEEP_DAILY": "3"}).backup
    assert str(b.target) == "/srv/b" and b.keep_daily == 3  # the environment wins


@pytest.mark.parametrize(
    ("yaml_text", "env", "message"),
    [
        ("backup: {keep_hourly: 0}\n", {}, "backup.keep_hourly: 0 is not a number of backups kept (at least 1)"),
        ("backup: {keep_daily: '7'}\n", {}, "backup.keep_daily: expected an integer"),
        ("backup: {keep_monthly: 3}\n", {}, "unknown setting backup.'keep_monthly'"),
        ("", {"MIA_BACKUP_KEEP_WEEKLY": "many"}, "MIA_BACKUP_KEEP_WEEKLY=many: expected an integer"),
        ("", {"MIA_BACKUP_TARGET": " "}, "MIA_BACKUP_TARGET= : is empty"),
        ("", {"MIA_BACKUP_TARGET": "/proc/self"}, "point backup.target at a folder on another disk"),
    ],
)
def test_bad_backup_settings_are_clear_errors(tmp_path, yaml_text, env, message):
    cfg = tmp_path / "mia.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings(cfg, env=env)


def test_ibkr_connection_from_file_and_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    k = load_settings(env={}).ibkr
    assert (k.futures, k.roll_days, k.connect_timeout_s, k.request_timeout_s, k.retry_wait_s, k.tick_by_tick) == (
        ("ES", "NQ"), 8, 10, 60, 30, False)
    cfg = tmp_path / "mia.yaml"
    cfg.write_text("ibkr: {host: gw.local, port: 4002, client_id: 3, futures: [ES], roll_days: 5}\n")
    k = load_settings(cfg, env={"MIA_IBKR_PORT": "4001", "MIA_IBKR_CLIENT_ID": "9"}).ibkr
    assert (k.host, k.port, k.client_id, k.futures, k.roll_days) == ("gw.local", 4001, 9, ("ES",), 5)
    assert load_settings(cfg, env={"MIA_IBKR_HOST": "10.0.0.2"}).ibkr.host == "10.0.0.2"


@pytest.mark.parametrize(
    ("yaml_text", "env", "message"),
    [
        ("", {"MIA_IBKR_PORT": "tws"}, "MIA_IBKR_PORT=tws: expected an integer"),
        ("", {"MIA_IBKR_PORT": "70000"}, "MIA_IBKR_PORT=70000: 70000 is not a TCP port"),
        ("", {"MIA_IBKR_CLIENT_ID": "-1"}, "MIA_IBKR_CLIENT_ID=-1: -1 is not an IB API client id"),
        ("", {"MIA_IBKR_HOST": ""}, "MIA_IBKR_HOST=: is empty"),
        ("ibkr: {data_types: [BID_ASK, QUOTES]}\n", {}, "ibkr.data_types[1]: 'QUOTES' is not one of BID_ASK, TRADES, VOLUME, VOLATILITY"),
        ("ibkr: {timeframes: [2min]}\n", {}, "ibkr.timeframes[0]: '2min' is not one of 1min, 5min, 15min"),
        ("ibkr: {roll_days: 90}\n", {}, "ibkr.roll_days: 90 is not a number of days from 0 to 60"),
        ("ibkr: {request_timeout_s: 0}\n", {}, "ibkr.request_timeout_s: 0 is not a number of seconds"),
        ("ibkr: {retry_wait_s: 7200}\n", {}, "ibkr.retry_wait_s: 7200 is not a number of seconds from 1 to 3600"),
    ],
)
def test_bad_ibkr_settings_are_clear_errors(tmp_path, yaml_text, env, message):
    cfg = tmp_path / "mia.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings(cfg, env=env)


def test_sierra_files_and_chart_time_zone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(env={}).sierra
    assert (s.files, s.market_depth, s.chart_timezone, s.stale_after_s) == ({}, True, "America/New_York", 300)
    cfg = tmp_path / "mia.yaml"
    cfg.write_text("sierra: {data_dir: C:/SierraChart/Data, files: {ES: ESU25_FUT_CME.scid}, "
                   "chart_timezone: Europe/Paris, stale_after_s: 60, market_depth: false}\n")
    s = load_settings(cfg, env={}).sierra
    assert (s.files, s.chart_timezone, s.stale_after_s, s.market_depth) == (
        {"ES": "ESU25_FUT_CME.scid"}, "Europe/Paris", 60, False)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("sierra: {files: {ES: ESU25.dly}}\n", "'ES': 'ESU25.dly' is not a .scid file"),
        ("sierra: {chart_timezone: Mars/Olympus}\n", "unknown time zone 'Mars/Olympus'"),
        ("sierra: {stale_after_s: 0}\n", "sierra.stale_after_s: 0 is not a number of seconds from 1 to 604800"),
    ],
)
def test_bad_sierra_settings_are_clear_errors(tmp_path, yaml_text, message):
    cfg = tmp_path / "mia.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings(cfg, env={})

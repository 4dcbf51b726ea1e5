"""Hostile configuration through the real `mia` CLI against a populated data root.

One data root (three days of trades, exits and ticks, ingested; ``lifecycle/_backup_data.build``) is
built per module. Each case of the matrix is one class of hostile configuration input: a ``mia.yaml``
given with ``--config`` (syntax, shape, keys, types and ranges per section, size, anchors, duplicates),
a ``MIA_*`` variable (non-numeric, negative, nan, inf, huge; paths that are files, pseudo-files,
empty, inside the data root), or the JSON config of ``mia export --custom`` / ``mia validate``.

Every case snapshots the root (a digest of every row, per day and dataset, plus every file and its
size, lock files aside), runs the command through ``CliRunner`` (the two YAML anchor bombs in a
subprocess, under a timeout and a memory limit), then asserts the root is unchanged and that the
command was refused the documented way: exit 2 (1 where the project means "the disk is not there
now" rather than "the setting is wrong"), ``SystemExit``, no traceback, and exactly one ``Error:``
line naming the variable, file or key and saying what to give instead. The refused commands are the
ones that would change the root (``mia archive``, ``mia backup --full``) wherever the setting is read
before the change; a case whose input is accepted (legitimately or by a bug) runs ``--dry-run``.

The few inputs the project accepts on purpose (an empty ``mia.yaml``; a ``MIA_*`` name it does not
know) must behave exactly like no input at all. A changed row or file (:class:`RootChanged`) fails a case
whatever else it shows. The matrix found 13 bugs when it was written (issue 25): multi-line YAML errors,
a falsy document read as no settings, a non-text key, duplicate keys (YAML and JSON) and anchor bombs
accepted or expanded into the message, a date refused without its key, time zones that were tracebacks,
``MIA_SYMBOLS="ES NQ"`` taken as one symbol, nesting tracebacks, and four validation-config values
accepted (negative, huge or numeric embargo; text for a column list).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from mia_pipeline.cli.main import cli
from mia_pipeline.layout import Layout, init_tree
from mia_pipeline.storage import PartitionStore
from mia_pipeline_tests.lifecycle._backup_data import build, contents

REPO = Path(__file__).resolve().parents[1]
ARCHIVE = ("archive",)
DRY_RUN = ("archive", "--dry-run")
BACKUP = ("backup", "--full")
EXPORT = ("export", "--custom", "--config", "{cfg}")
VALIDATE = ("validate", "--dataset", "{tmp}/ds", "--config", "{cfg}", "--no-docs")
ALERTS = frozenset({"reports/alerts.jsonl", "reports/alert_state.json"})  # a failed backup is alerted (documented)
SUBPROCESS_TIMEOUT_S = 8
SUBPROCESS_MEMORY = 2 << 30
MAX_MESSAGE = 1500


class RootChanged(Exception):
    """The data root's rows or files changed."""


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    needles: tuple[str, ...] = ()
    file: str | bytes | None = None
    env: dict[str, str] = field(default_factory=dict)
    config: bool = False
    data_dir: bool = True
    code: int = 2
    writes: frozenset[str] = frozenset()
    setup: Callable[[Path], None] | None = None
    subprocess: bool = False
    hidden: str | None = None
    name: str = "settings.yaml"


def yaml(text: str | bytes | None, *needles: str, args=ARCHIVE, **kw) -> Case:
    return Case(args, ("{cfg}", *needles), file=text, config=True, **kw)


def env(variables: dict[str, str], *needles: str, args=ARCHIVE, **kw) -> Case:
    return Case(args, needles, env=variables, **kw)


def export(text: str | bytes, *needles: str, **kw) -> Case:
    return Case(EXPORT, needles, file=text, name="conf.json", **kw)


def validate(text: str | bytes, *needles: str, **kw) -> Case:
    return Case(VALIDATE, needles, file=text, name="conf.json", **kw)


def laughs(where: str) -> str:
    """The "billion laughs": 9 levels of 10 aliases, 10**9 strings from ~700 bytes of YAML."""
    lines = ['  l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"  l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 9)]
    if where == "unknown_key":
        return "bomb:\n" + "\n".join(lines) + "\n"
    return "ibkr:\n  port:\n" + "\n".join("  " + line for line in lines) + "\n"


def _mkdir(name: str) -> Callable[[Path], None]:
    return lambda tmp: (tmp / name).mkdir()


def _touch(name: str) -> Callable[[Path], None]:
    return lambda tmp: (tmp / name).write_text("not a folder\n")


def _dangling(tmp: Path) -> None:
    (tmp / "settings.yaml").symlink_to(tmp / "gone.yaml")


J = json.dumps
MIB = 1 << 20

CASES: dict[str, Case] = {
    # ----------------------------------------------------------------------------- mia.yaml (--config)
    "yaml_not_yaml": yaml("ibkr: {port: [7497\n", "not valid YAML"),
    "yaml_python_object_tag": yaml("!!python/object/apply:os.system ['touch /tmp/mia_pwned']\n", "not valid YAML"),
    "yaml_top_level_list": yaml("- ES\n- NQ\n", "expected a mapping at the top level", "got list"),
    "yaml_top_level_falsy_scalar": yaml("false\n", "expected a mapping at the top level", args=DRY_RUN),
    "yaml_non_string_top_key": yaml("1: 2\n", "the key 1 is not text", "quote it"),
    "yaml_unknown_top_key": yaml("retention_days: 30\n", "unknown setting 'retention_days'", "valid keys here"),
    "yaml_unknown_nested_key": yaml("ibkr: {prot: 7497}\n", "unknown setting ibkr.'prot'", "valid keys here: "),
    "yaml_section_null": yaml("ibkr:\n", "ibkr: expected a mapping, got NoneType"),
    "yaml_section_is_list": yaml("backup: [/mnt/backup]\n", "backup: expected a mapping, got list"),
    "yaml_ibkr_port_string": yaml("ibkr: {port: '7497'}\n", "ibkr.port: expected an integer, got str"),
    "yaml_ibkr_port_negative": yaml("ibkr: {port: -1}\n", "ibkr.port: -1 is not a TCP port from 1 to 65535"),
    "yaml_ibkr_port_70000": yaml("ibkr: {port: 70000}\n", "ibkr.port: 70000 is not a TCP port from 1 to 65535"),
    "yaml_ibkr_port_nan": yaml("ibkr: {port: .nan}\n", "ibkr.port: expected an integer, got float (nan)"),
    "yaml_retention_negative": yaml("data_collection: {storage: {retention_days: -7}}\n",
                                    "data_collection.storage.retention_days: -7 is not a number of days",
                                    "from 1 to 100000"),
    "yaml_retention_zero": yaml("data_collection: {storage: {retention_days: 0}}\n",
                                "retention_days: 0 is not a number of days", "from 1 to 100000"),
    "yaml_retention_huge": yaml("data_collection: {storage: {retention_days: 100001}}\n",
                                "retention_days: 100001 is not a number of days", "from 1 to 100000"),
    "yaml_retention_bool": yaml("data_collection: {storage: {retention_days: true}}\n",
                                "retention_days: expected an integer, got bool"),
    "yaml_archive_after_exceeds_retention": yaml(
        "data_collection: {storage: {retention_days: 30, archive_after_days: 90}}\n",
        "archive_after_days (90) must not exceed retention_days (30)"),
    "yaml_backup_keep_zero": yaml("backup: {keep_daily: 0}\n", "backup.keep_daily: 0 is not a number of backups kept",
                                  "at least 1"),
    "yaml_backup_target_half_url": yaml("backup: {target: 's3:bucket'}\n", "backup.target",
                                        "write it as s3://bucket/prefix"),
    "yaml_backup_target_not_text": yaml("backup: {target: 5}\n", "backup.target: 5 is not a folder or an s3:// URL",
                                        "point backup.target at a folder"),
    "yaml_sierra_file_not_scid": yaml("sierra: {files: {ES: ES.txt}}\n", "sierra.files", "is not a .scid file",
                                      "map each symbol to its intraday file"),
    "yaml_sierra_timezone_unknown": yaml("sierra: {chart_timezone: Mars/Base}\n", "sierra.chart_timezone",
                                         "use an IANA name"),
    "yaml_sierra_refused_key": yaml("sierra: {indicators: [RSI]}\n", "sierra.indicators", "is refused",
                                    "`mia import` a Sierra"),
    "yaml_symbols_empty": yaml("symbols: []\n", "symbols: [] names no symbol", "give at least one"),
    "yaml_symbols_not_a_list": yaml("symbols: ES,NQ\n", "symbols: expected a list of strings, got str"),
    "yaml_first_day_impossible_date": yaml("data_collection: {first_day: 2025-02-30}\n", "data_collection.first_day", "YYYY-MM-DD"),
    "yaml_refused_guide_key": yaml("data_collection: {real_time: false}\n", "data_collection.real_time",
                                   "is refused", "set data_collection.enabled: false"),
    "yaml_storage_url_not_s3": yaml("data_collection: {storage: {url: 'http://minio:9000/b'}}\n",
                                    "data_collection.storage.url", "write it as s3://bucket/prefix"),
    "yaml_webhook_not_http": yaml("monitoring: {webhook_url: 'ftp://user:s3cr3t@hooks/x'}\n",
                                  "monitoring.webhook_url", "is not an http(s) URL", hidden="s3cr3t"),
    "yaml_timezone_very_long": yaml("timezone: '" + "A" * 100_000 + "'\n", "timezone", "IANA name"),
    "yaml_bad_bool_tag": yaml("ibkr: {tick_by_tick: !!bool maybe}\n", "a tagged value it cannot build"),
    "yaml_bad_timestamp_tag": yaml("data_collection: {first_day: !!timestamp xyz}\n",
                                   "a tagged value it cannot build"),
    "yaml_inline_merge_is_read": yaml("ibkr:\n  <<: {port: 70000}\n", "ibkr.port: 70000 is not a TCP port"),
    "yaml_binary_file": yaml(bytes(range(256)) * 4, "not UTF-8 text", "save it as UTF-8"),
    "yaml_oversize_file": yaml("# " + "x" * MIB + "\n", "is larger than 1 MB", "a mia.yaml holds settings"),
    "yaml_duplicate_keys": yaml("ibkr: {port: 4002}\nibkr: {port: 7497}\n", "the key 'ibkr' is given twice", "keep one", args=DRY_RUN),
    "yaml_billion_laughs_value": yaml(laughs("value"), "an alias (*name) is not allowed", "write the value out", subprocess=True),
    "yaml_billion_laughs_unknown_key": yaml(laughs("unknown_key"), "an alias (*name) is not allowed", subprocess=True),
    "config_is_a_directory": Case(("--config", "{tmp}/conf.d", *ARCHIVE), ("--config", "conf.d", "is a directory"),
                                  setup=_mkdir("conf.d")),
    "config_missing_file": yaml(None, "does not exist", "pass an existing path"),
    "config_dangling_symlink": yaml(None, "does not exist", "pass an existing path", setup=_dangling),
    "config_empty_file_means_defaults": yaml("", args=DRY_RUN, code=0),
    # ----------------------------------------------------------------------------------- environment
    "env_retention_scientific": env({"MIA_RETENTION_DAYS": "1e3"}, "MIA_RETENTION_DAYS=1e3", "expected an integer"),
    "env_archive_after_exceeds_retention": env({"MIA_ARCHIVE_AFTER_DAYS": "1000"}, "MIA_ARCHIVE_AFTER_DAYS=1000",
                                               "must not exceed retention_days (365)"),
    "env_archive_after_zero": env({"MIA_ARCHIVE_AFTER_DAYS": "0"}, "MIA_ARCHIVE_AFTER_DAYS=0",
                                  "from 1 to 100000"),
    "env_ibkr_port_just_above_range": env({"MIA_IBKR_PORT": "65536"}, "MIA_IBKR_PORT=65536", "from 1 to 65535"),
    "env_ibkr_client_id_overflow": env({"MIA_IBKR_CLIENT_ID": str(2**31)}, f"MIA_IBKR_CLIENT_ID={2**31}",
                                       "from 0 to 2147483647"),
    "env_backup_keep_zero": env({"MIA_BACKUP_KEEP_HOURLY": "0"}, "MIA_BACKUP_KEEP_HOURLY=0", "at least 1"),
    "env_compression_unknown": env({"MIA_COMPRESSION": "brotli"}, "MIA_COMPRESSION=brotli",
                                   "is not one of zstd, snappy, gzip, lz4, none"),
    "env_compression_empty": env({"MIA_COMPRESSION": ""}, "MIA_COMPRESSION=", "is empty", "or unset it"),
    "env_symbols_only_separators": env({"MIA_SYMBOLS": " , ,\t"}, "MIA_SYMBOLS=", "names no symbol",
                                       "e.g. MIA_SYMBOLS=ES,NQ"),
    "env_symbols_space_separated": env({"MIA_SYMBOLS": "ES NQ"}, "MIA_SYMBOLS=ES NQ", "'ES NQ' is not a symbol", "separate symbols with commas"),
    "env_timezone_unknown": env({"MIA_TIMEZONE": "Mars/Olympus"}, "MIA_TIMEZONE=Mars/Olympus", "use an IANA name"),
    "env_timezone_path_traversal": env({"MIA_TIMEZONE": "../../etc/passwd"}, "MIA_TIMEZONE=../../etc/passwd",
                                       "use an IANA name"),
    "env_timezone_is_a_zone_folder": env({"MIA_TIMEZONE": "America"}, "MIA_TIMEZONE=America", "use an IANA name"),
    "env_first_day_impossible": env({"MIA_FIRST_DAY": "2025-02-30"}, "MIA_FIRST_DAY=2025-02-30",
                                    "write it as YYYY-MM-DD"),
    "env_sources_bad_flag": env({"MIA_SOURCES": "ibkr_market_data=maybe"}, "MIA_SOURCES=ibkr_market_data=maybe",
                                "expected on/off/true/false"),
    "env_sources_unknown_source": env({"MIA_SOURCES": "telepathy=on"}, "MIA_SOURCES=telepathy=on",
                                      "unknown setting data_collection.sources.'telepathy'", "valid keys here"),
    "env_storage_url_not_s3": env({"MIA_STORAGE_URL": "ftp://nas/mia"}, "MIA_STORAGE_URL=ftp://nas/mia",
                                  "write it as s3://bucket/prefix"),
    "env_webhook_not_url": env({"MIA_ALERT_WEBHOOK": "javascript:alert('s3cr3t')"}, "MIA_ALERT_WEBHOOK=<hidden>",
                               "is not an http(s) URL", hidden="s3cr3t"),
    "env_data_dir_is_a_file": env({"MIA_DATA_DIR": "{tmp}/afile"}, "'--data-dir'", "{tmp}/afile", "is a file",
                                  data_dir=False, setup=_touch("afile")),
    "env_data_dir_in_proc": env({"MIA_DATA_DIR": "/proc"}, "/proc is inside /proc", "kernel pseudo-file system",
                                "point --data-dir or MIA_DATA_DIR at a folder", data_dir=False),
    "env_data_dir_empty": env({"MIA_DATA_DIR": ""}, "MIA_DATA_DIR=: is empty", "unset it to use ./data",
                              data_dir=False),
    "env_data_dir_missing": env({"MIA_DATA_DIR": "{tmp}/nowhere"}, "{tmp}/nowhere does not exist", "`mia --data-dir {tmp}/nowhere init`",
                                data_dir=False),
    "env_config_missing_file": env({"MIA_CONFIG": "{tmp}/none.yaml"}, "{tmp}/none.yaml does not exist",
                                   "set MIA_CONFIG or pass an existing path"),
    "env_backup_target_in_proc": env({"MIA_BACKUP_TARGET": "/proc/self"}, "MIA_BACKUP_TARGET=/proc/self",
                                     "kernel pseudo-file system", "point backup.target at a folder"),
    "env_backup_target_inside_data_root": env(
        {"MIA_BACKUP_TARGET": "{root}/live"}, "backup target {root}/live is inside the data root",
        "use {root}/backups (the default) or a folder on another disk", args=BACKUP, writes=ALERTS),
    "env_backup_target_holds_data_root": env(
        {"MIA_BACKUP_TARGET": "{root}/.."}, "holds the data root", "point backup.target (or MIA_BACKUP_TARGET) at",
        args=BACKUP, writes=ALERTS),
    "env_backup_target_is_a_file": env(
        {"MIA_BACKUP_TARGET": "{tmp}/afile"}, "{tmp}/afile is a file", "set backup.target (or MIA_BACKUP_TARGET)",
        args=BACKUP, writes=ALERTS, setup=_touch("afile")),
    # An unmounted backup disk is a condition of the moment, not a wrong setting: `backup failed`, exit 1
    # (cli/lifecycle_backup.py: TargetError -> EXIT_PROBLEM, TargetSetupError -> EXIT_USAGE).
    "env_backup_target_missing_folder": env(
        {"MIA_BACKUP_TARGET": "{tmp}/unmounted/mia"}, "{tmp}/unmounted/mia does not exist", "mount the backup disk",
        "MIA_BACKUP_TARGET", args=BACKUP, writes=ALERTS, code=1),
    "env_unknown_mia_variable_is_ignored": env({"MIA_RETENTON_DAYS": "1"}, args=DRY_RUN, code=0),
    # ------------------------------------------------------------------------ mia export --custom --config
    "export_not_json": export("format: csv\n", "{cfg} is not valid JSON", 'expected an object such as'),
    "export_top_level_list": export(J(["csv"]), "{cfg}", "expected a JSON object of export settings, got list"),
    "export_unknown_key": export(J({"formatt": "csv"}), "unknown export config key(s): formatt", "(known: format"),
    "export_wrong_type": export(J({"include_splits": "yes"}), "include_splits: expected true or false, got 'yes'"),
    "export_format_unknown": export(J({"format": "xlsx"}), "format: 'xlsx' is not one of parquet, csv, json"),
    "export_negative_embargo": export(J({"split": {"embargo": "-5min"}}), "split.embargo",
                                      "expected a duration such as '30min'"),
    "export_embargo_not_text": export(J({"split": {"embargo": 30}}), "split.embargo",
                                      "expected a duration such as '30min', got 30"),
    "export_horizon_100000days": export(J({"ml": {"tb_horizon": "100000days"}}), "ml.tb_horizon",
                                        "(at most 366 days), got '100000days'"),
    "export_n_splits_0": export(J({"split": {"n_splits": 0}}), "split.n_splits: expected an integer from 2 to 1000"),
    "export_n_splits_1": export(J({"split": {"n_splits": 1}}), "split.n_splits: expected an integer from 2 to 1000"),
    "export_n_splits_1001": export(J({"split": {"n_splits": 1001}}),
                                   "split.n_splits: expected an integer from 2 to 1000, got 1001"),
    "export_walk_forward_0": export(J({"split": {"walk_forward_splits": 0}}),
                                    "split.walk_forward_splits: expected an integer from 1 to 1000"),
    "export_correlation_pairs_unknown_feature": export(
        J({"ml": {"correlation_pairs": [[1, 999]]}}), "ml.correlation_pairs",
        "two different feature numbers from 1 to 8"),
    "export_correlation_pairs_by_name": export(
        J({"ml": {"correlation_pairs": [["price", "volume"]]}}), "ml.correlation_pairs", "feature numbers"),
    "export_ml_nan": export('{"ml": {"tb_profit_take": NaN}}', "ml.tb_profit_take",
                            "expected a positive finite number, got nan"),
    "export_ml_unknown_key": export(J({"ml": {"tb_horizn": "1h"}}), "ml: unknown ML config key(s): tb_horizn",
                                    "(known: "),
    "export_nested_value": export(J({"ml": {"rolling_windows": [[[[5]]]]}}), "ml.rolling_windows",
                                  "a non-empty list of positive integers"),
    "export_nested_too_deep": export("[" * 100_000 + "]" * 100_000, "{cfg}", "nest"),
    "export_duplicate_keys": export('{"format": "xlsx", "format": "csv"}', "the key 'format' is given twice", "keep one"),
    "export_utf8_bom": export("\ufeff" + J({"format": "csv"}), "{cfg} is not valid JSON", "BOM"),
    "export_config_missing": Case(("export", "--custom", "--config", "{tmp}/conf.json"),
                                  ("'--config'", "{tmp}/conf.json", "does not exist")),
    "export_config_is_a_directory": Case(("export", "--custom", "--config", "{tmp}/conf.d"),
                                         ("'--config'", "{tmp}/conf.d", "is a directory"), setup=_mkdir("conf.d")),
    # ------------------------------------------------------------------- mia validate --dataset D --config F
    "validate_not_json": validate("max_missing_rate: 0.1\n", "{cfg}: not valid JSON"),
    "validate_top_level_list": validate(J([0.1]), "validation config must be a JSON object, got list"),
    "validate_unknown_key": validate(J({"max_missing": 0.1}), "unknown validation config key(s): max_missing",
                                     "(known: "),
    "validate_rate_out_of_range": validate(J({"max_missing_rate": 2}),
                                           "max_missing_rate must be a number in [0.0, 1.0], got 2"),
    "validate_rate_nan": validate('{"max_missing_rate": NaN}', "max_missing_rate must be a number in [0.0, 1.0]"),
    "validate_leak_auc_below_chance": validate(J({"leak_auc": 0.3}), "leak_auc must be a number in [0.5, 1.0]"),
    "validate_shares_inverted": validate(J({"min_class_share": 0.9, "max_class_share": 0.1}),
                                         "min_class_share is above max_class_share"),
    "validate_embargo_not_a_duration": validate(J({"embargo": "soon"}), "embargo 'soon' is not a duration",
                                                "such as '30min'"),
    "validate_negative_embargo": validate(J({"embargo": "-5min"}), "embargo", "-5min"),
    "validate_embargo_100000days": validate(J({"embargo": "100000days"}), "embargo", "100000days"),
    "validate_embargo_number": validate(J({"embargo": 30}), "embargo", "duration"),
    "validate_columns_text_not_list": validate(J({"critical_columns": "t0"}), "critical_columns", "list"),
    "validate_nested_too_deep": validate("{\"embargo\": " * 50_000 + "1" + "}" * 50_000, "{cfg}", "nest"),
    "validate_config_missing": validate(None, "{cfg}", "cannot read the validation config",
                                        "No such file or directory"),
}


HUGE = "9" * 20
#: every integer variable -> the range its error gives ("(at least 1)": no upper bound, a huge value is accepted)
NUMERIC_ENV = {
    "MIA_RETENTION_DAYS": "from 1 to 100000", "MIA_ARCHIVE_AFTER_DAYS": "from 1 to 100000",
    "MIA_BACKUP_KEEP_HOURLY": "(at least 1)", "MIA_BACKUP_KEEP_DAILY": "(at least 1)",
    "MIA_BACKUP_KEEP_WEEKLY": "(at least 1)", "MIA_COLLECTION_STOPPED_MINUTES": "from 1 to 1440",
    "MIA_IBKR_PORT": "from 1 to 65535", "MIA_IBKR_CLIENT_ID": "from 0 to 2147483647",
}
for _var, _range in NUMERIC_ENV.items():
    _name = _var.removeprefix("MIA_").lower()
    CASES[f"env_{_name}_not_numeric"] = env({_var: "twelve"}, f"{_var}=twelve: expected an integer")
    CASES[f"env_{_name}_negative"] = env({_var: "-1"}, f"{_var}=-1: -1 is not ", _range)
    CASES[f"env_{_name}_nan"] = env({_var: "nan"}, f"{_var}=nan: expected an integer")
    CASES[f"env_{_name}_inf"] = env({_var: "inf"}, f"{_var}=inf: expected an integer")
    # rotation keeps "at least 1" backups with no upper bound: a huge count keeps them all (accepted)
    CASES[f"env_{_name}_huge"] = (env({_var: HUGE}, args=DRY_RUN, code=0) if _range == "(at least 1)"
                                  else env({_var: HUGE}, f"{_var}={HUGE}: {HUGE} is not ", _range))


def _params():
    for name, case in CASES.items():
        yield pytest.param(case, id=name)


@dataclass
class Root:
    path: Path
    pristine: Path
    baseline: tuple
    dry_run_output: str


def _clean_env() -> dict[str, str | None]:
    return {k: None for k in os.environ if k.startswith("MIA_")}


def _digest(root: Path) -> dict[tuple[str, str], list[str]]:
    rows = contents(PartitionStore(Layout(root)))
    return {key: sorted(hashlib.sha256(json.dumps(r, sort_keys=True, default=str).encode()).hexdigest() for r in v)
            for key, v in rows.items()}


def _files(root: Path, allowed: frozenset[str] = frozenset()) -> dict[str, int]:
    out = {}
    for p in root.rglob("*"):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not p.name.endswith(".lock") and rel not in allowed:
            out[rel] = p.stat().st_size
    return out


def _snapshot(root: Path, allowed: frozenset[str] = frozenset()) -> tuple:
    return _digest(root), _files(root, allowed)


@pytest.fixture(scope="module")
def populated(tmp_path_factory) -> Root:
    base = tmp_path_factory.mktemp("populated")
    layout = Layout(base / "data")
    init_tree(layout)
    build(layout)
    shutil.copytree(layout.root, base / "pristine", symlinks=True)
    with contextlib.chdir(base):
        dry = CliRunner().invoke(cli, ["--data-dir", str(layout.root), *DRY_RUN], env=_clean_env())
    assert dry.exit_code == 0 and "would archive 3 day(s)" in dry.output, dry.output
    snap = _snapshot(layout.root)
    assert len(snap[0]) == 12 and all(snap[0].values())
    return Root(layout.root, base / "pristine", snap, dry.output)


@pytest.fixture
def root(populated, tmp_path_factory, monkeypatch):
    for k in [k for k in os.environ if k.startswith("MIA_")]:
        monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))  # no ./mia.yaml, and ./data is nobody's
    yield populated
    if _snapshot(populated.path) != populated.baseline:
        shutil.rmtree(populated.path)
        shutil.copytree(populated.pristine, populated.path, symlinks=True)


def _fill(text: str, where: dict[str, str]) -> str:
    for key, value in where.items():
        text = text.replace("{" + key + "}", value)
    return text


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (SUBPROCESS_MEMORY, SUBPROCESS_MEMORY))


def _run_subprocess(argv: list[str], env: dict[str, str], out: Path) -> tuple[int, str, str | None]:
    """(exit code, the first 64 KiB of the output, the exception's name) of `python -m mia ...`."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("MIA_")} | env
    with open(out, "wb") as fh:
        try:
            proc = subprocess.run([sys.executable, "-m", "mia_pipeline.cli.main", *argv], env=full, stdout=fh,
                                  stderr=subprocess.STDOUT, timeout=SUBPROCESS_TIMEOUT_S, preexec_fn=_limit_memory)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"no answer within {SUBPROCESS_TIMEOUT_S} s "
                                 f"({out.stat().st_size:,} bytes of output so far)") from None
    with open(out, "rb") as fh:
        text = fh.read(64 << 10).decode("utf-8", "replace")
    assert out.stat().st_size <= 64 << 10, f"{out.stat().st_size:,} bytes of output"
    return proc.returncode, text, None if proc.returncode == 0 else "SystemExit"


@pytest.mark.parametrize("case", list(_params()))
def test_hostile_config_is_refused_and_keeps_every_row(case: Case, root: Root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("in")
    (tmp / "ds").mkdir()
    cfg = tmp / case.name
    if case.file is not None:
        (cfg.write_bytes if isinstance(case.file, bytes) else cfg.write_text)(case.file)
    if case.setup is not None:
        case.setup(tmp)
    where = {"cfg": str(cfg), "tmp": str(tmp), "root": str(root.path)}
    argv = (["--data-dir", str(root.path)] if case.data_dir else []) + (["--config", str(cfg)] if case.config else [])
    argv += [_fill(a, where) for a in case.args]
    variables = {k: _fill(v, where) for k, v in case.env.items()}

    before = _snapshot(root.path, case.writes)
    if case.subprocess:
        code, output, exception = _run_subprocess(argv, variables, tmp / "output.txt")
    else:
        res = CliRunner().invoke(cli, argv, env=_clean_env() | variables)
        code, output = res.exit_code, res.output
        exception = None if res.exception is None else type(res.exception).__name__
    after = _snapshot(root.path, case.writes)
    if after != before:
        raise RootChanged(f"rows or files changed under {root.path}: "
                          f"{sorted(set(after[1].items()) ^ set(before[1].items()))[:10]}"
                          + ("" if after[0] == before[0] else f"; row digest {sorted(before[0])} -> {sorted(after[0])}"))

    assert "Traceback" not in output, output[-3000:]
    if case.code == 0:
        assert (code, exception) == (0, None), (code, exception, output[-3000:])
        assert output == root.dry_run_output
        return
    assert (code, exception) == (case.code, "SystemExit"), (code, exception, output[-3000:])
    lines = [line for line in output.splitlines() if line.strip() and not line.startswith(("Usage: ", "Try '"))]
    assert len(lines) == 1 and lines[0].startswith("Error: "), output[:3000]
    assert len(lines[0]) <= MAX_MESSAGE, f"a {len(lines[0]):,}-character message: {lines[0][:300]}..."
    for needle in case.needles:
        assert _fill(needle, where) in lines[0], (needle, lines[0])
    if case.hidden:
        assert case.hidden not in output


def test_the_readme_says_what_an_unknown_mia_variable_does():
    """Pins ``env_unknown_mia_variable_is_ignored``: a ``MIA_*`` name the settings do not read (a typo such as
    ``MIA_RETENTON_DAYS``) changes nothing, as the README's Configuration section says."""
    readme = (REPO / "README.md").read_text()
    configuration = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    assert "Every key acts or is refused at load; none is silently ignored." in configuration
    assert "a misspelt one changes nothing" in configuration

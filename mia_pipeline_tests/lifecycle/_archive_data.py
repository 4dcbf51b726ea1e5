"""Shared by the archive/cleanup/optimize tests: a simulated data root (paper-trading days on both
sides of a month boundary, ingested for real: signals, bars, trades, exits, performance, raw lines),
built once and copied per test, and helpers that read everything a user can read."""

from __future__ import annotations

import shutil
from datetime import date
from functools import lru_cache
from pathlib import Path

from mia_pipeline.layout import STORED_DATASETS, Layout, init_tree
from mia_pipeline.storage import PartitionStore, connect_readonly, refresh_views

DAYS = ("2025-06-30", "2025-07-01", "2025-07-02")
WINDOW = ("2025-06-01", "2025-07-31")


@lru_cache(maxsize=1)
def _template(root: str) -> Path:
    from mia_pipeline.collection.collector import ingest_once
    from mia_pipeline.sources.paper_trading import simulate

    lay = Layout(Path(root))
    init_tree(lay)
    simulate(lay.streaming_dir, start=date(2025, 6, 29), days=4, seed=7)  # the 29th is a Sunday
    ingest_once(lay, PartitionStore(lay), None)
    refresh_views(lay)
    assert lay.days_present() == list(DAYS)
    return lay.root


def data_root(tmp_path_factory, tmp_path: Path) -> Layout:
    """A fresh copy of the simulated data root under ``tmp_path``."""
    template = _template(str(tmp_path_factory.getbasetemp() / "archive_template" / "data"))
    shutil.copytree(template, tmp_path / "data")
    return Layout(tmp_path / "data")


def rows(store: PartitionStore, window=WINDOW) -> dict[str, list]:
    """Every stored dataset over the window, through the library reader, as Python rows in order."""
    return {ds: store.read_window(ds, *window).to_pylist() for ds in STORED_DATASETS}


def view_rows(layout: Layout) -> dict[str, list]:
    """Every DuckDB view's rows (the file name aside), sorted."""
    with connect_readonly(layout) as con:
        names = [r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()]
        return {v: con.execute(f"SELECT * EXCLUDE (filename) FROM {v} ORDER BY ALL").fetchall() for v in names}


def small_root(path: Path, days=("2025-06-27", "2025-06-30", "2025-07-01", "2025-07-02")) -> Layout:
    """A small data root (trades, exits, ticks, raw lines on ``days``, two months) with a warehouse."""
    from mia_pipeline_tests.lifecycle._backup_data import build

    lay = Layout(path)
    init_tree(lay)
    build(lay, days)
    refresh_views(lay)
    return lay


def run_and_kill(code: str, args: list[str], delay: float) -> bool:
    """Run ``code`` in a child (it prints ``ready`` once its imports are done), SIGKILL it ``delay``
    seconds later; True when it had finished on its own (printed ``done``) before the kill."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, env=env)
    assert proc.stdout.readline().strip() == b"ready"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return proc.stdout.read().strip().endswith(b"done")

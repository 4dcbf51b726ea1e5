"""The Dagster UI shows the truth of a data root: a real webserver on 127.0.0.1, headless Chromium
screenshots of the asset graph, of one market_ticks partition and of its checks, of the schedules
(the guide's crontab), and assertions on
the rendered page text (the partition's own row count, the check names).

Chromium comes from scripts/ensure_chromium.sh (installs Debian's package when missing; the test is
skipped, with the script's reason, when it cannot be installed). The PNG paths are printed.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from mia_pipeline.cli.dagster_bridge import open_instance
from mia_pipeline.cli.main import cli
from mia_pipeline.defs.collection import daily_datasets, landing_zone
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.schemas.guide_examples import make_event, to_line

REPO = Path(__file__).resolve().parents[1]
ENSURE_CHROMIUM = REPO / "scripts" / "ensure_chromium.sh"
WORKSPACE = REPO / "workspace.yaml"  # names the code location `mia_pipeline`, as `make ui` does
WEBSERVER = Path(sys.executable).with_name("dagster-webserver")

TICKS = {"2025-06-23": 3, "2025-06-22": 0, "2025-06-21": 1}  # rows of market_ticks per day
DAY = "2025-06-23"
BUDGETS_MS = (20_000, 60_000)  # virtual time given to the page; the second is the retry


def tick(i: int, ts: str) -> bytes:
    return to_line(make_event("market_tick", seq=i, event_id=f"tick-{i}", timestamp=ts))


def ensure_chromium() -> str:
    proc = subprocess.run(["bash", str(ENSURE_CHROMIUM)], capture_output=True, text=True, timeout=900)
    if proc.returncode == 3:
        pytest.skip(proc.stderr.strip() or "no chromium")
    assert proc.returncode == 0, f"ensure_chromium.sh exited {proc.returncode}: {proc.stderr.strip()}"
    return proc.stdout.strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CLI_DAY = "2025-06-24"  # written by `mia collect start --once`: 2 ticks


def build_data(layout) -> None:
    """3 ticks on 06-23 and 1 on 06-21 landed, then a backfill of 06-21..06-23 (06-22: 0 rows), then
    2 ticks on 06-24 landed by the CLI collector (recorded in a `mia_cli` run)."""
    lines = [tick(i, f"{DAY}T1{i}:00:00.000Z") for i in range(1, 4)] + [tick(4, "2025-06-21T12:00:00.000Z")]
    (layout.streaming_dir / "a.jsonl").write_bytes(b"".join(lines))
    resources = {"mia": MiaResource(data_dir=str(layout.root))}
    with open_instance(layout) as instance:
        assert dg.materialize([landing_zone], instance=instance, resources=resources).success
        assert dg.materialize([daily_datasets], instance=instance, resources=resources, tags={
            "dagster/asset_partition_range_start": min(TICKS), "dagster/asset_partition_range_end": max(TICKS),
        }).success
        rows = {r.partition_key: r.asset_materialization.metadata["dagster/row_count"].value
                for r in instance.fetch_materializations(dg.AssetKey("market_ticks"), limit=20).records[::-1]}
    assert rows == TICKS
    with open(layout.streaming_dir / "a.jsonl", "ab") as fh:
        fh.write(tick(5, f"{CLI_DAY}T10:00:00.000Z") + tick(6, f"{CLI_DAY}T11:00:00.000Z"))
    result = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "collect", "start", "--once"])
    assert result.exit_code == 0 and "not recorded" not in result.output, result.output


def start_webserver(layout, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "DAGSTER_HOME": str(layout.dagster_dir), "MIA_DATA_DIR": str(layout.root)}
    env.pop("MIA_CONFIG", None)
    with open(log, "wb") as out:
        return subprocess.Popen(
            [str(WEBSERVER), "-h", "127.0.0.1", "-p", str(port), "-w", str(WORKSPACE)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_until_up(proc: subprocess.Popen, base: str, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dagster-webserver exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/server_info", timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"dagster-webserver did not answer within {timeout:.0f}s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    """The webserver and its code server (same process group)."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


class _Text(HTMLParser):
    """Visible text of a DOM: one string per text node, plus the cells of every table row."""

    def __init__(self):
        super().__init__()
        self.texts: list[str] = []
        self.rows: list[list[str]] = []
        self._skip = 0
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1
        elif tag in ("td", "th") and self._cell is not None:
            if self.rows:
                self.rows[-1].append(" ".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        text = data.strip()
        if text and not self._skip:
            self.texts.append(text)
            if self._cell is not None:
                self._cell.append(text)


def parse(dom: str) -> _Text:
    p = _Text()
    p.feed(dom)
    return p


def shoot(chromium: str, url: str, png: Path, profile: Path, ready, window: str = "1600,1000") -> _Text:
    """Screenshot ``url`` to ``png`` and return its rendered DOM (same page load); retried with more
    virtual time when ``ready(page)`` says the data is not on the page yet."""
    page = None
    for budget in BUDGETS_MS:
        png.unlink(missing_ok=True)
        proc = subprocess.run([
            chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-extensions",
            f"--user-data-dir={profile}", f"--window-size={window}", f"--virtual-time-budget={budget}",
            f"--screenshot={png}", "--dump-dom", url,
        ], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"chromium exited {proc.returncode} on {url}:\n{proc.stderr[-3000:]}"
        page = parse(proc.stdout)
        if ready(page):
            break
        print(f"\n{url}: data not on the page after {budget} ms of virtual time, retrying")
    assert png.is_file() and png.stat().st_size > 20_000, f"no real screenshot of {url}: {png}"
    return page


def value(page: _Text, label: str) -> str | None:
    """The value cell of the (metadata) table row whose first cell is ``label``."""
    return next((row[1] for row in page.rows if len(row) > 1 and row[0] == label), None)


SCHEDULES = {"hourly_backup_schedule", "daily_backup_schedule", "daily_maintenance_schedule",
             "daily_integrity_schedule", "weekly_archive_schedule", "weekly_backup_schedule", "weekly_ml_dataset_schedule"}


@pytest.mark.slow
def test_dagster_ui_shows_the_partition_row_count_and_checks(layout, tmp_path):
    started = time.monotonic()
    chromium = ensure_chromium()
    build_data(layout)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "webserver.log"
    shots, profile = tmp_path / "shots", tmp_path / "chromium-profile"
    shots.mkdir()
    server = start_webserver(layout, port, log)
    try:
        wait_until_up(server, base, log)

        graph_png = shots / "asset_graph_collection.png"
        graph = shoot(chromium, f"{base}/locations/mia_pipeline/asset-groups/collection", graph_png, profile,
                      ready=lambda p: {"landing_zone", "market_ticks", "live_session"} <= set(p.texts),
                      window="1600,1800")  # tall enough for the whole collection group at the default zoom
        partition_png = shots / f"market_ticks_partition_{DAY}.png"
        partition = shoot(chromium, f"{base}/assets/market_ticks?view=partitions&partition={DAY}", partition_png,
                          profile, ready=lambda p: value(p, "dagster/row_count") is not None)
        cli_png = shots / f"market_ticks_partition_{CLI_DAY}_by_the_cli.png"
        cli_day = shoot(chromium, f"{base}/assets/market_ticks?view=partitions&partition={CLI_DAY}", cli_png,
                        profile, ready=lambda p: value(p, "dagster/row_count") is not None)
        runs_png = shots / "runs.png"
        runs = shoot(chromium, f"{base}/runs", runs_png, profile, ready=lambda p: "mia_cli" in "\n".join(p.texts))
        checks_png = shots / "market_ticks_checks.png"
        checks = shoot(chromium, f"{base}/assets/market_ticks?view=checks", checks_png, profile,
                       ready=lambda p: {"has_unique_keys", "ask_above_bid"} <= set(p.texts))
        schedules_png = shots / "automation_schedules.png"
        automation = shoot(chromium, f"{base}/automation", schedules_png, profile,
                           ready=lambda p: SCHEDULES <= set(p.texts), window="1600,1400")
    finally:
        stop(server)

    print(f"\nUI screenshots ({time.monotonic() - started:.0f}s):")
    for png in (graph_png, partition_png, cli_png, runs_png, checks_png, schedules_png):
        print(f"  {png}  ({png.stat().st_size} bytes)")

    assert {"landing_zone", "market_ticks", "live_session", "warehouse_views"} <= set(graph.texts)
    # The selected partition's metadata table: that day's own row count (3), not the asset's total (4).
    assert value(partition, "day") == DAY, partition.rows
    assert value(partition, "dagster/row_count") == str(TICKS[DAY]), partition.rows
    text = "\n".join(partition.texts)
    assert re.search(rf"^{DAY}\n(?:Materialized\n)", text, re.M), "the selected partition's header is not shown"
    assert "has_unique_keys" in checks.texts and "ask_above_bid" in checks.texts, checks.texts
    # A day written outside any run (the CLI collector) shows its own figures and what wrote it.
    assert value(cli_day, "dagster/row_count") == "2", cli_day.rows
    assert "mia_cli" in "\n".join(cli_day.texts)
    assert "mia_cli" in "\n".join(runs.texts)
    assert SCHEDULES <= set(automation.texts), automation.texts  # the guide's crontab, as Dagster schedules

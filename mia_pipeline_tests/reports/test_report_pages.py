"""The issue's "Done when", as a person sees it: `mia demo` then `mia report all` (both as subprocesses, the
user's commands), then every page the index links opened in headless Chromium (Debian's ``chromium``,
installed by scripts/ensure_chromium.sh) over the DevTools Protocol:

- every image loaded (complete, natural size > 0) and every report page has at least one;
- no request left the machine (every URL the page asked for is ``file:`` or ``data:``);
- key numbers worked out here from the data itself (DuckDB over the stored Parquet files and the ML
  dataset, not the report's own JSON) appear on the pages;
- full-page screenshots are kept in ``test-artifacts/report_pages/`` (or ``$MIA_TEST_ARTIFACTS``).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from ui_browser import REPO, ensure_chromium, open_local_page

from mia_pipeline.reports.page import fmt

pytestmark = pytest.mark.slow
MIA = Path(sys.executable).with_name("mia")
ARTIFACTS = Path(os.environ.get("MIA_TEST_ARTIFACTS", REPO / "test-artifacts")) / "report_pages"


def run(args, env, ok=(0,)):
    proc = subprocess.run([str(MIA), *args], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode in ok, f"mia {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    return proc


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("pages") / "data"
    env = {**os.environ, "MIA_DATA_DIR": str(root), "DAGSTER_HOME": str(root / ".dagster")}
    env.pop("MIA_CONFIG", None)
    demo = run(["demo"], env)
    assert f"reports    : {root / 'reports' / 'index.html'}" in demo.stdout
    made = run(["report", "all"], env, ok=(0, 1))
    return root, made


def expected_numbers(root: Path) -> dict:
    """Figures a reader must find, computed here from the stored files."""
    daily = root / "snapshots" / "daily"
    con = duckdb.connect()
    trades = con.execute(f"SELECT count(*) FROM read_parquet('{daily}/*/trades.parquet')").fetchall()[0][0]
    pnl = con.execute(f"SELECT sum(e.pnl), sum((e.pnl > 0)::INT) FROM read_parquet('{daily}/*/trades.parquet') t "
                      f"JOIN read_parquet('{daily}/*/trade_exits.parquet') e USING (trade_id)").fetchall()[0]
    signals = con.execute(f"SELECT count(*) FROM read_parquet('{daily}/*/signals.parquet')").fetchall()[0][0]
    features = next((root / "processed" / "ml_ready").glob("*/features_dataset.parquet"))
    return {"trades": trades, "total_pnl": float(pnl[0]), "wins": int(pnl[1]), "signals": signals,
            "decisions": pq.read_metadata(features).num_rows}


def test_report_pages_in_chromium(demo_root):
    root, made = demo_root
    chromium = ensure_chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    index = root / "reports" / "index.html"
    assert f"index: {index}" in made.stdout

    seen = open_local_page(chromium, index.as_uri(), ARTIFACTS / "index.png", root.parent / "profile-index")
    assert not [u for u in seen["requests"] if not u.startswith(("file:", "data:"))], seen["requests"]
    links = sorted({a for a in _links(index) if not a.startswith("#")})
    kinds = {Path(a).name.split("_", 1)[0] for a in links}
    assert kinds == {"quality", "performance", "features"}, links
    assert "Latest validation results" in seen["text"] and "Dagster run" in seen["text"], \
        "the index shows the GX results with the run that made them"

    want = expected_numbers(root)
    texts = {}
    for n, href in enumerate(links):
        page = root / "reports" / href
        assert page.is_file(), href
        shot = ARTIFACTS / f"{n:02d}_{page.stem}.png"
        got = open_local_page(chromium, page.as_uri(), shot, root.parent / f"profile-{n}")
        left = [u for u in got["requests"] if not u.startswith(("file:", "data:"))]
        assert not left, f"{href} asked the network for {left}"
        assert got["images"], f"{href}: no plot on the page"
        broken = [i for i in got["images"] if not (i["complete"] and i["width"] > 0 and i["height"] > 0)]
        assert not broken, f"{href}: images that did not load: {broken}"
        assert shot.stat().st_size > 20_000
        texts[page] = got["text"]
        print(f"\n{href}: {len(got['images'])} image(s), screenshot {shot}")

    # the pages `mia report all` wrote (the demo's three days) show the figures worked out here
    made_pages = {Path(line.strip()).name.split("_", 1)[0]: texts[Path(line.strip())]
                  for line in made.stdout.splitlines() if line.startswith("  ") and line.strip().endswith(".html")}
    assert set(made_pages) == {"quality", "performance", "features"}, made.stdout
    perf = made_pages["performance"]
    assert fmt(want["trades"]) in perf and fmt(round(want["total_pnl"], 2)) in perf, \
        f"the performance page shows {want['trades']} trades and total pnl {want['total_pnl']:.2f}"
    assert fmt(want["decisions"]) in made_pages["features"], f"the features page shows the {want['decisions']} decisions"
    quality = made_pages["quality"]
    assert fmt(want["trades"]) in quality and fmt(want["signals"]) in quality, "rows per dataset on the quality page"


def _links(index: Path) -> list[str]:
    import re

    return re.findall(r'href="([^"]+)"', index.read_text(encoding="utf-8"))


def test_report_json_matches_the_page(demo_root):
    """The figures beside each page are the ones the page prints."""
    root, _ = demo_root
    for js in (root / "reports").glob("[0-9]*/*.json"):
        doc = json.loads(js.read_text())
        html = js.with_name(doc["page"]).read_text(encoding="utf-8")
        assert doc["status"].upper() in html

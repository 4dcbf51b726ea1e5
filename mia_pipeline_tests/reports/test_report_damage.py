"""Damaged or hostile input never gives a traceback, an untrue OK or a stale index: each case is a page that
says what is wrong (and exit 1), found by a hostile pass over `mia report` (one data root built once through
Dagster, copied per test and damaged)."""

import json
import shutil

import dagster as dg
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from mia_pipeline.cli.main import cli
from mia_pipeline.defs.collection import landing_zone
from mia_pipeline.defs.ml import ml_dataset
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.defs.sources import paper_trading_events
from mia_pipeline.layout import Layout, init_tree

DAYS = ("2025-06-23", "2025-06-24", "2025-06-25")
START, END = DAYS[0], DAYS[-1]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    layout = Layout(tmp_path_factory.mktemp("built") / "data")
    init_tree(layout)
    res = {"mia": MiaResource(data_dir=str(layout.root))}
    instance = dg.DagsterInstance.ephemeral()
    for day in DAYS:
        assert dg.materialize([paper_trading_events], partition_key=day, resources=res, instance=instance).success
    assert dg.materialize([landing_zone], resources=res, instance=instance).success
    assert dg.materialize([ml_dataset], partition_key="2025-06-22", resources=res, instance=instance).success
    return layout.root


@pytest.fixture
def root(built, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(built, copy, ignore=shutil.ignore_patterns(".dagster"))
    return copy


def report(root, *args):
    out = CliRunner().invoke(cli, ["--data-dir", str(root), "report", *args, "--start", START, "--end", END],
                             catch_exceptions=False)
    assert "Traceback" not in out.output
    return out


def figures(root, kind):
    return json.loads(Layout(root).report_file(kind, START, END, ".json").read_text())


def test_a_truncated_partition_is_a_problem_and_performance_is_unverified(root):
    path = root / "snapshots" / "daily" / DAYS[1] / "trades.parquet"
    path.write_bytes(path.read_bytes()[:300])
    out = report(root, "all")
    assert out.exit_code == 1, out.output
    quality, perf = figures(root, "quality"), figures(root, "performance")
    assert quality["status"] == "problem" and any(f"{DAYS[1]}/trades" in p for p in quality["problems"])
    assert perf["status"] == "unverified" and any("sha256" in p for p in perf["problems"])
    assert "mia check-integrity" in Layout(root).report_file("performance", START, END).read_text()
    assert Layout(root).report_index_file.is_file()


def test_an_edited_file_is_never_counted_as_if_it_were_intact(root):
    path = root / "snapshots" / "daily" / DAYS[1] / "trade_exits.parquet"
    t = pq.read_table(path)
    pq.write_table(t.filter(pc.less(t["pnl"], 0)), path)      # drop the winners: figures would lie
    assert report(root, "performance").exit_code == 1
    assert figures(root, "performance")["status"] == "unverified"


@pytest.mark.parametrize("damage", ["garbage manifest", "no manifest"])
def test_a_day_without_a_trustworthy_manifest_is_named(root, damage):
    manifest = root / "snapshots" / "daily" / DAYS[1] / "_manifest.json"
    if damage == "garbage manifest":
        manifest.write_text('{"broken')
    else:
        manifest.unlink()
    assert report(root, "all").exit_code == 1
    quality = figures(root, "quality")
    assert quality["status"] == "problem" and any(DAYS[1] in p for p in quality["problems"]), quality["problems"]
    assert figures(root, "performance")["status"] == "unverified"


def test_a_period_of_one_gap_day_is_a_gap_not_no_data(root):
    shutil.rmtree(root / "snapshots" / "daily" / DAYS[1])
    out = CliRunner().invoke(cli, ["--data-dir", str(root), "report", "quality", "--start", DAYS[1], "--end", DAYS[1]])
    assert out.exit_code == 1
    doc = json.loads(Layout(root).report_file("quality", DAYS[1], DAYS[1], ".json").read_text())
    assert doc["status"] == "problem" and doc["figures"]["gap_days"] == 1


def test_malformed_sidecars_and_validation_records_are_listed_as_damaged(root):
    layout = Layout(root)
    folder = layout.reports_dir / END
    folder.mkdir(parents=True, exist_ok=True)
    for n, doc in enumerate([{"kind": "quality", "page": "x.html"}, {"kind": "quality", "status": 5},
                             {"kind": "quality", "start": START, "end": None, "status": "ok", "page": "p.html"}, [1, 2]]):
        (folder / f"quality_bad{n}.json").write_text(json.dumps(doc))
    (layout.validations_dir / "trades").mkdir(parents=True, exist_ok=True)
    (layout.validations_dir / "trades" / "x.json").write_text(json.dumps({"results": [5]}))
    out = report(root, "performance")
    assert out.exit_code == 0, out.output
    index = layout.report_index_file.read_text()
    assert index.count("damaged report figures") == 4 and "damaged validation record" in index
    assert f"performance_{START}_{END}.html" in index


def test_reports_folder_in_the_way_is_one_line_and_leaves_no_temp_file(root):
    layout = Layout(root)
    shutil.rmtree(layout.reports_dir)
    layout.reports_dir.write_text("not a folder")
    out = report(root, "performance")
    assert out.exit_code == 1 and "make that path a writable folder" in out.output
    layout.reports_dir.unlink()
    layout.reports_dir.mkdir()
    layout.report_index_file.mkdir()                           # the index path is a folder
    out = report(root, "performance")
    assert out.exit_code == 1 and "make that path a writable folder" in out.output
    assert not list(layout.reports_dir.rglob("*.tmp")), "a failed rename leaves no temp file"


def test_an_unreadable_ml_dataset_is_unverified_not_no_data(root):
    (features,) = (root / "processed" / "ml_ready").glob("*/features_dataset.parquet")
    features.write_text("junk")
    assert report(root, "features").exit_code == 1
    doc = figures(root, "features")
    assert doc["status"] == "unverified" and any("unreadable" in p for p in doc["problems"])


def test_an_analysis_that_raises_gives_an_unverified_page(root, monkeypatch):
    import mia_pipeline.reports.performance as perf

    def boom(*a, **k):
        raise ValueError("unexpected shape")

    monkeypatch.setattr(perf, "build_performance_report", boom)
    assert report(root, "performance").exit_code == 1
    doc = figures(root, "performance")
    assert doc["status"] == "unverified" and "ValueError: unexpected shape" in doc["problems"][0]

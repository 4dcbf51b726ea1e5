"""Recording cost (issue 24, part 2): what Dagster's record of per-partition truth adds, SQLite vs PostgreSQL.

The work is ``bench_ingest``'s year of history: D days × 200 events/hour (one landing file per day). Per
instance, in a fresh data root:

- ONE run of ``landing_zone`` lands it and records a materialization with its own figures for each
  (dataset, day) written, plus the checks of each;
- ONE single-run backfill of the daily datasets over the D days rebuilds every day from its raw lines,
  with per-day metadata and checks again.

Three ways, same data, same run:
- the floor: the same landing and rebuild, with the checks, by the library alone (no Dagster record);
- the default profile: Dagster's SQLite instance under the data root;
- deploy/dagster.postgres.yaml: a real PostgreSQL started on 127.0.0.1 by the benchmark, as the tests
  start it (``mia_pipeline_tests/pg_server.py``; Debian's PostgreSQL, installed if missing). Its
  settings are the server defaults except ``fsync=off``, stated in the output. Where PostgreSQL cannot
  be had, its column says UNVERIFIED and why.

Printed per run: seconds, the ratio to the floor (the recording overhead), the Dagster events recorded,
and events per (dataset, day) partition written. Goal (issue 24): on PostgreSQL, each run ≤ 3× the
library alone. Exit 1 when a goal is missed or cannot be checked.

Run: ``python benchmarks/bench_recording.py`` (the year: 365 days, several minutes per instance), or
``--days 30`` for a quicker figure. The per-event cost does not depend on D; the goal is judged at the
size run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_ingest import HISTORY_PER_DAY, dagster_runs, days, history_root, library_alone  # noqa: E402

from mia_pipeline.layout import DATASETS, Layout  # noqa: E402

GOAL_RATIO = 3.0


def with_dagster(layout: Layout, day_list: list[str]) -> tuple[float, float, int, int]:
    """(landing run s, backfill run s, events recorded, (dataset, day) partitions written)."""
    land, back, results = dagster_runs(layout, day_list)
    events = sum(len(r.all_events) for r in results)
    partitions = sum(1 for r in results for m in r.get_asset_materialization_events() if m.asset_key.path[0] in DATASETS)
    return land, back, events, partitions


def postgres_root(tmp: Path, day_list: list[str]):
    """(layout on PostgreSQL, server) or (None, reason)."""
    sys.path.insert(0, str(REPO))
    from mia_pipeline.dagster_home import set_instance_profile
    from mia_pipeline_tests.pg_server import start_server

    try:
        server = start_server()
    except Exception as exc:  # noqa: BLE001 - no PostgreSQL here: said, not counted
        return None, str(exc)
    server.create_database("bench")
    os.environ.update(server.env("bench"))
    layout = history_root(tmp, "postgres", day_list)
    set_instance_profile(layout, REPO / "deploy" / "dagster.postgres.yaml")
    return layout, server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365, help="days of history (default 365)")
    args = parser.parse_args()
    if not 1 <= args.days <= 3660:
        parser.error("--days is 1..3660")
    day_list = days(args.days, "2024-06-01")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        floor = library_alone(history_root(tmp, "library", day_list), day_list)
        rows = {"library alone (floor)": (*floor, 0, 0)}
        rows["SQLite (default profile)"] = with_dagster(history_root(tmp, "sqlite", day_list), day_list)
        pg_layout, server = postgres_root(tmp, day_list)
        pg_name = "PostgreSQL (deploy/dagster.postgres.yaml, fsync=off)"
        if pg_layout is None:
            why = server
        else:
            try:
                rows[pg_name] = with_dagster(pg_layout, day_list)
            finally:
                server.stop()
    print(f"recording cost: {HISTORY_PER_DAY * args.days:,} events over {args.days} days; two runs each "
          f"(one landing run, one single-run backfill of {len(DATASETS)} datasets)")
    print(f"{'instance':55s} {'landing run':>18s} {'backfill run':>18s} {'events':>8s} {'events/partition':>17s}")
    for name, (land, back, events, parts) in rows.items():
        ratio = "" if not events else f" {land / floor[0]:4.1f}x"
        ratio_b = "" if not events else f" {back / floor[1]:4.1f}x"
        per = f"{events / parts:.1f}" if parts else "-"
        print(f"{name:55s} {land:8.1f} s{ratio:>8s} {back:8.1f} s{ratio_b:>8s} {events:8,d} {per:>17s}")
    if pg_name not in rows:
        print(f"{pg_name}: UNVERIFIED - {why}")
        print(f"goal: PostgreSQL runs <= {GOAL_RATIO:.0f}x the library alone UNVERIFIED")
        return 1
    land, back = rows[pg_name][:2]
    ok = land <= GOAL_RATIO * floor[0] and back <= GOAL_RATIO * floor[1]
    print(f"goal: PostgreSQL runs <= {GOAL_RATIO:.0f}x the library alone "
          f"(landing {land / floor[0]:.1f}x, backfill {back / floor[1]:.1f}x) {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""One day of the daily datasets with all their checks, materialized through Dagster into the data root's
instance from a shell (the CI front door): `mia materialize --select daily_datasets --partition D`.

Setup: a paper-trading day (about 2,300 events: signals, trades, exits, 1-min bars, performance) landed
into an empty data root. Measured, each twice (the figure is the faster run, as a user re-running it
sees with warm file caches):

- project: the whole `mia materialize` process (interpreter start, Dagster and the code location loaded,
  the seven datasets rebuilt from the raw lines, 35 checks and 7 Great Expectations suites evaluated
  and recorded in SQLite), with the breakdown the command can tell (start-up vs run) and, in separate
  processes, the library's own parts: rebuild, checks, GX suites (import of Great Expectations included);
- baseline, same run: Dagster's own CLI on the same selection and partition
  (`DAGSTER_HOME=<data>/.dagster dagster asset materialize -m mia_pipeline.definitions --select ...`).

Goal: the project's figure ≤ 10 s on this machine (2 cores).
"""

import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DAY = "2025-06-23"
DATASETS = "trades,trade_exits,signals,market_bars,market_ticks,performance,market_depth"
GOAL_S = 10.0

PARTS = f"""
import sys, time
from mia_pipeline.layout import Layout
from mia_pipeline.storage import PartitionStore
store = PartitionStore(Layout(sys.argv[1]))
part = sys.argv[2]
t = time.perf_counter()
if part == "rebuild":
    from mia_pipeline.collection.rebuild import rebuild_day
    rebuild_day(store, "{DAY}", None)
elif part == "checks":
    from mia_pipeline.quality.checks import run_day_checks
    run_day_checks(store, ["{DAY}"])
else:
    from mia_pipeline.quality.gx import validate_days
    validate_days(store, ["{DAY}"])
print(time.perf_counter() - t)
"""


def timed(cmd: list[str], env: dict) -> tuple[float, str]:
    t = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
    took = time.perf_counter() - t
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd[:4])} ... exited {done.returncode}:\n{(done.stderr or done.stdout)[-2000:]}")
    return took, done.stdout


def main() -> int:
    sys.path.insert(0, str(REPO))
    from mia_pipeline.collection.collector import ingest_once
    from mia_pipeline.layout import Layout, init_tree
    from mia_pipeline.sources.paper_trading import simulate
    from mia_pipeline.storage import PartitionStore

    with tempfile.TemporaryDirectory() as tmp:
        layout = Layout(Path(tmp) / "data")
        init_tree(layout)
        simulate(layout.streaming_dir, start=date.fromisoformat(DAY), days=1, seed=7)
        report = ingest_once(layout, PartitionStore(layout))
        env = {**os.environ, "MIA_DATA_DIR": str(layout.root), "DAGSTER_HOME": str(layout.dagster_dir)}
        env.pop("MIA_CONFIG", None)
        subprocess.run([str(BIN / "mia"), "init"], env=env, capture_output=True, check=True)
        mia_cmd = [str(BIN / "mia"), "materialize", "--select", "daily_datasets", "--partition", DAY]
        dagster_cmd = [str(BIN / "dagster"), "asset", "materialize", "-m", "mia_pipeline.definitions",
                       "--select", DATASETS, "--partition", DAY]
        runs, base, run_s = [], [], []
        for _ in range(2):
            took, out = timed(mia_cmd, env)
            runs.append(took)
            run_s.append(float(re.search(r"\(run (\d+\.\d)s", out).group(1)))
            base.append(timed(dagster_cmd, env)[0])
        parts = {p: min(float(timed([sys.executable, "-c", PARTS, str(layout.root), p], env)[1]) for _ in range(2))
                 for p in ("rebuild", "checks", "gx")}
    best, i = min((t, k) for k, t in enumerate(runs))
    print(f"one day ({report.lines:,} events, 7 datasets, 42 checks incl. 7 GX suites), end to end in a shell:")
    print(f"  mia materialize            : {best:5.1f} s  (start-up {best - run_s[i]:.1f} s, run {run_s[i]:.1f} s; "
          f"runs: {', '.join(f'{t:.1f}' for t in runs)})")
    print(f"    library parts, alone     : rebuild {parts['rebuild']:.2f} s, checks {parts['checks']:.2f} s, "
          f"GX suites {parts['gx']:.2f} s (import of Great Expectations included)")
    print(f"  dagster asset materialize  : {min(base):5.1f} s  (baseline: Dagster's own CLI, same selection)")
    print(f"  ratio baseline/project     : {min(base) / best:.2f}x")
    ok = best <= GOAL_S
    print(f"goal: <= {GOAL_S:.0f} s -> {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

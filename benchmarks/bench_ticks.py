"""Tick scale (issue 23): a month of Sierra Chart ES + NQ trades through `mia import` and the day-to-day commands.

Data (generated here into a temporary folder, removed at the end, also on failure; generation time is
printed, not part of any figure): for each of D consecutive CME trading days from 2025-06-02
(``synthetic.schedule.trading_days``), one ``.scid`` file per symbol, ``ESU25_FUT_CME.<day>.scid`` and
``NQU25_FUT_CME.<day>.scid`` (the symbol comes from the name), each holding ``--records`` single-trade
records (default 2,000,000; ~80 MB) inside that UTC day, written like ``bench_sierra.write_day`` (several
trades per millisecond at times, bundle flags, bid/ask volume), ES around 6000 and NQ around 21000.

For each run size D (default 1, 5 and 21 days; 21 days = 84 M ticks), in a fresh data root
(``mia --data-dir ROOT init``), each step is its own process, timed (wall) with its peak RSS (``/usr/bin/time -f %M``;
without it, the process tree's RSS polled with psutil):

- ``mia import`` of all 2 x D files in one command (ticks -> ``market_ticks``, 1/5/15-min order-flow bars);
- ``mia status``, ``mia check-integrity``, a first ``mia backup --incremental`` (everything is new: reported
  with its MB/s, no goal: it copies and re-reads from disk every byte of the period), ``mia import`` of one
  more trading day (ES + NQ, the day after the period: its cost must not grow with the store), then
  ``mia backup --incremental`` (that day is new) and again (nothing new);
- a DuckDB query through the warehouse's ``market_ticks`` view (``connect_readonly``): 1-minute VWAP per
  symbol (minutes as ``epoch_ms(ts) // 60000``, sum(last * last_size) / sum(last_size)) over the whole
  period; its figure is the query time inside the process (the process wall time, with Python and DuckDB
  start-up, is printed beside it), and its trade count must equal the records imported. Measured on
  20 M ticks: ``time_bucket(INTERVAL 1 minute, ts)`` costs 1.35x that, ``date_trunc('minute', ts)``
  on the TIMESTAMPTZ column 3.3x (DuckDB goes through its ICU calendar).

Before the runs, once: ``mia import`` of ONE ES day file into its own fresh root (the per-file goal), and
of one file holding 5 x the records (10 M by default) in a single day (the same memory ceiling).

Baseline (the floor), same run: pyarrow alone reading the same files (``read_scid`` + ``scid_ticks``) and
writing the same trade rows to one zstd Parquet file per symbol-day, in its own process (time and peak
RSS); printed with the import / floor ratio per D.

The table shows per step and D: time and peak RSS, the per-day time ratio ((t_D / D) / (t_Dmin / Dmin):
1.0 = linear in days, > 1 = super-linear) and the peak-RSS ratio (RSS at the largest D / at the smallest).

Goals (issue 23, on this machine, 2 cores):
- one 2 M-record .scid day: ``mia import`` <= 5 s wall and <= 1 GB peak RSS;
- a 10 M-record file (one day): the same 1 GB ceiling (its RSS / the 2 M-record file's is printed);
- 21 days x ES + NQ imported in one command in <= 5 min (for D days: <= 300 s x D / 21), peak RSS
  <= 1 GB at every D and independent of the number of days (largest D / smallest D <= 1.25);
- then ``mia status``, ``mia check-integrity``, ``mia backup --incremental`` each <= 5 s, and one more day
  imported into the month within the per-day budget (300 s / 21);
- 1-minute VWAP over the month in DuckDB <= 2 s.
Goals are not scaled by ``--records``: with fewer records they are lenient. Exit 1 when one is missed
or a step fails.

Run: ``python benchmarks/bench_ticks.py`` (the issue's sizes: ~3.4 GB of .scid plus the stored data and
its backup on disk, several minutes). Small sizes (smoke test, or a busy machine):
``python benchmarks/bench_ticks.py --days 1,2 --records 50000``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from mia_pipeline.synthetic.schedule import trading_days  # noqa: E402

FIRST_DAY = date(2025, 6, 2)
RECORDS = 2_000_000
DAYS = (1, 5, 21)
SYMBOLS = {"ES": ("ESU25_FUT_CME", 6000.0), "NQ": ("NQU25_FUT_CME", 21000.0)}
GB = 1024 ** 3
GOAL_FILE_S, GOAL_MONTH_S, MONTH_DAYS = 5.0, 300.0, 21
GOAL_RSS = 1 * GB
GOAL_RSS_GROWTH = 1.25
GOAL_CMD_S, GOAL_QUERY_S = 5.0, 2.0
BIG_FACTOR = 5            # the big input: 5 x the records of a day (10 M by default) in one file
MIA = next((p for p in (REPO / ".venv" / "bin" / "mia", Path(sys.executable).with_name("mia")) if p.exists()),
           None) or shutil.which("mia")
TIME = "/usr/bin/time" if Path("/usr/bin/time").exists() else None   # GNU time: -f %M = peak RSS in KB

VWAP_SQL = """
    SELECT symbol, to_timestamp(minute * 60) AS minute, vwap, volume, trades FROM (
        SELECT symbol, epoch_ms(ts) // 60000 AS minute,
               sum(last * last_size) / sum(last_size) AS vwap, sum(last_size) AS volume, count(*) AS trades
        FROM market_ticks WHERE last IS NOT NULL AND last_size > 0 GROUP BY ALL)
    ORDER BY ALL
"""
QUERY_WORKER = f"""
import sys, time
from pathlib import Path
from mia_pipeline.layout import Layout
from mia_pipeline.storage import connect_readonly
t = time.perf_counter()
con = connect_readonly(Layout(Path(sys.argv[1])))
bars = con.sql({VWAP_SQL!r}).to_arrow_table()
took = time.perf_counter() - t
trades = sum(bars.column("trades").to_pylist())
print(f"{{took:.6f}} {{bars.num_rows}} {{trades}}")
"""


# -- data ------------------------------------------------------------------------------------------------------

def write_scid_day(path: Path, n: int, day: date, seed: int, base: float) -> None:
    """``bench_sierra.write_day`` for any day, seed and price level: n single-trade records in
    [day 00:00, day 23:00) UTC."""
    from bench_sierra import write_day

    day_us = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1_000_000
    write_day(path, n, day_start_us=day_us, seed=seed, base=base)


def generate(folder: Path, days: list[date], n: int) -> list[list[Path]]:
    """Per day, its files (ES, NQ)."""
    out = []
    for k, day in enumerate(days):
        files = []
        for j, (stem, base) in enumerate(SYMBOLS.values()):
            path = folder / f"{stem}.{day.isoformat()}.scid"
            write_scid_day(path, n, day, seed=1000 * k + j, base=base + 4 * k)
            files.append(path)
        out.append(files)
    return out


# -- measuring -------------------------------------------------------------------------------------------------

@dataclass
class Step:
    seconds: float
    rss: int              # bytes
    rc: int
    out: str


def run(cmd: list[str], cwd: Path, env: dict) -> Step:
    """Run ``cmd``: its wall time and peak RSS. ``/usr/bin/time -f %M`` when present (a small parent: a child
    forked from this big process would inherit this process's peak RSS as its own ``ru_maxrss``), else the
    largest RSS of the process tree polled every 10 ms with psutil."""
    log, peak_file = cwd / "step.log", cwd / "step.rss"
    timed = [TIME, "-f", "%M", "-o", str(peak_file), *cmd] if TIME else cmd
    with open(log, "wb") as f:
        t = time.perf_counter()
        proc = subprocess.Popen(timed, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT)
        if TIME:
            proc.wait()
        else:
            import psutil

            rss, top = 0, psutil.Process(proc.pid)
            while proc.poll() is None:
                try:
                    rss = max(rss, sum(p.memory_info().rss for p in [top, *top.children(recursive=True)]))
                except psutil.Error:
                    pass
                time.sleep(0.01)
        took = time.perf_counter() - t
    if TIME:
        lines = peak_file.read_text().split()
        rss = int(lines[-1]) * 1024 if lines and lines[-1].isdigit() else 0
    return Step(took, rss, proc.returncode, log.read_text(errors="replace"))


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def floor_worker(out: Path, files: list[str]) -> None:
    """The baseline, in its own process: read each .scid into trade rows and write them to Parquet."""
    import pyarrow.parquet as pq

    from mia_pipeline.sources.sierra import read_scid, scid_ticks

    for name in files:
        path = Path(name)
        ticks = scid_ticks(read_scid(path))
        pq.write_table(ticks, out / (path.name.removesuffix(".scid") + ".parquet"), compression="zstd")


# -- the runs --------------------------------------------------------------------------------------------------

FIRST_BACKUP = "backup (first: all is new)"
STEPS = ("import", "status", "check-integrity", FIRST_BACKUP, "import one more day", "backup --incremental",
         "backup --incremental (again)", "query VWAP 1 min", "floor (pyarrow -> Parquet)")


def one_size(tmp: Path, d: int, files: list[list[Path]], records: int, env: dict) -> dict[str, Step]:
    """The steps for the first ``d`` days; ``files[-1]`` is the day imported after them ("one more day")."""
    root = tmp / f"data_{d}"
    mia = [str(MIA), "--data-dir", str(root)]
    flat = [str(p) for day in files[:d] for p in day]
    steps: dict[str, Step] = {}
    try:
        init = run([*mia, "init"], tmp, env)
        if init.rc:
            raise RuntimeError(f"mia init failed:\n{init.out[-2000:]}")
        commands = {"import": [*mia, "import", *flat], "status": [*mia, "status"],
                    "check-integrity": [*mia, "check-integrity"],
                    FIRST_BACKUP: [*mia, "backup", "--incremental"],
                    "import one more day": [*mia, "import", *map(str, files[-1])],
                    "backup --incremental": [*mia, "backup", "--incremental"],
                    "backup --incremental (again)": [*mia, "backup", "--incremental"]}
        stored = 0
        for name, cmd in commands.items():
            steps[name] = run(cmd, tmp, env)
            if name == "import":
                stored = folder_bytes(root / "snapshots")  # the D days, before the extra one
            if steps[name].rc:
                print(f"  D={d}: `{name}` exit {steps[name].rc}:\n{steps[name].out[-2000:]}", flush=True)
                if name == "import":
                    return steps
        q = run([sys.executable, "-c", QUERY_WORKER, str(root)], tmp, env)
        if q.rc == 0:
            took, minutes, trades = q.out.split()[-3:]
            expected = (d + 1) * len(SYMBOLS) * records
            if int(trades) != expected:
                print(f"  D={d}: the VWAP query counted {int(trades):,} trades, {expected:,} were imported")
                q.rc = 1
            q.out = f"{minutes} symbol-minutes, {int(trades):,} trades, process wall {q.seconds:.2f} s"
            q.seconds = float(took)
        else:
            print(f"  D={d}: the VWAP query failed:\n{q.out[-2000:]}")
        steps["query VWAP 1 min"] = q
        floor_dir = tmp / f"floor_{d}"
        floor_dir.mkdir()
        steps["floor (pyarrow -> Parquet)"] = run([sys.executable, __file__, "--floor-worker", str(floor_dir), *flat],
                                                  tmp, env)
        floor_size = folder_bytes(floor_dir)
        first = steps.get(FIRST_BACKUP)
        speed = f"{stored / 1e6 / first.seconds:,.0f} MB/s" if first and first.rc == 0 and first.seconds else "-"
        print(f"  D={d}: {len(flat)} files, {d * len(SYMBOLS) * records:,} ticks; stored snapshots "
              f"{stored / 1e6:,.0f} MB (first backup {speed}), floor Parquet {floor_size / 1e6:,.0f} MB; "
              f"query: {q.out}", flush=True)
        return steps
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(tmp / f"floor_{d}", ignore_errors=True)


def cell(s: Step | None) -> str:
    if s is None:
        return "-"
    return f"{s.seconds:7.2f} s {s.rss / 2**20:5.0f} MB" + ("" if s.rc == 0 else " FAIL")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", default=",".join(map(str, DAYS)), help="run sizes in trading days, e.g. 1,5")
    ap.add_argument("--records", type=int, default=RECORDS, help="trade records per symbol-day")
    args = ap.parse_args()
    sizes = sorted({int(x) for x in args.days.split(",") if x.strip()})
    if not sizes or sizes[0] < 1 or args.records < 10:
        ap.error("--days: positive integers; --records: at least 10")
    if MIA is None:
        print("the `mia` command was not found (install the project: pip install -e .)")
        return 2
    days = trading_days(FIRST_DAY, FIRST_DAY + timedelta(days=2 * sizes[-1] + 14))[:sizes[-1] + 1]
    days, extra = days[:-1], days[-1]   # the extra day is imported after each run's days
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIA_")}   # defaults, no mia.yaml (cwd = tmp)
    scid_bytes = (sizes[-1] + 1) * len(SYMBOLS) * (56 + 40 * args.records)
    tmp = Path(tempfile.mkdtemp(prefix="bench_ticks_"))
    failed: list[str] = []
    try:
        free = shutil.disk_usage(tmp).free
        if free < 4 * scid_bytes:
            print(f"not enough disk in {tmp.parent}: {free / 1e9:.1f} GB free, about {4 * scid_bytes / 1e9:.1f} GB "
                  "needed (the .scid files, the stored days, their backup, the floor's Parquet)")
            return 2
        src = tmp / "scid"
        src.mkdir()
        t = time.perf_counter()
        files = generate(src, days + [extra], args.records)
        print(f"data: {sizes[-1]} trading days {days[0]}..{days[-1]} x ES + NQ, {args.records:,} trades per "
              f"symbol-day, {scid_bytes / 1e6:,.0f} MB of .scid, generated in {time.perf_counter() - t:.1f} s "
              f"(not timed); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)

        # one file, its own root: the per-file goal
        one_root = tmp / "data_one"
        mia1 = [str(MIA), "--data-dir", str(one_root)]
        run([*mia1, "init"], tmp, env)
        one = run([*mia1, "import", str(files[0][0])], tmp, env)
        shutil.rmtree(one_root, ignore_errors=True)
        if one.rc:
            print(f"  import of one file: exit {one.rc}:\n{one.out[-2000:]}")
        print(f"  one ES day ({args.records:,} records) imported: {cell(one)}", flush=True)

        # a big input: BIG_FACTOR x the records in one file of one day, its own root (same memory ceiling)
        big_file = src / f"ESZ25_FUT_CME.{days[0].isoformat()}.scid"
        write_scid_day(big_file, BIG_FACTOR * args.records, days[0], seed=99, base=6000.0)
        big_root = tmp / "data_big"
        run([str(MIA), "--data-dir", str(big_root), "init"], tmp, env)
        big = run([str(MIA), "--data-dir", str(big_root), "import", str(big_file)], tmp, env)
        shutil.rmtree(big_root, ignore_errors=True)
        big_file.unlink()
        if big.rc:
            print(f"  import of the big file: exit {big.rc}:\n{big.out[-2000:]}")
        print(f"  one file of {BIG_FACTOR * args.records:,} records in one day imported: {cell(big)}", flush=True)

        results = {d: one_size(tmp, d, files, args.records, env) for d in sizes}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    lo, hi = sizes[0], sizes[-1]
    width = 20
    head = (f"{'step':<30}" + "".join(f"{'D=' + str(d):>{width}}" for d in sizes)
            + f"{'per-day t ratio':>17}{'RSS ratio':>11}  {'goal':<52}verdict")
    print("\n" + head + "\n" + "-" * len(head))

    def verdict(ok: bool, name: str) -> str:
        if not ok:
            failed.append(name)
        return "OK" if ok else "MISSED"

    one_ok = one.rc == 0 and one.seconds <= GOAL_FILE_S and one.rss <= GOAL_RSS
    print(f"{'import, one ES day (1 file)':<30}{cell(one):>{width}}" + " " * (width * (len(sizes) - 1) + 28)
          + f"  {'<= 5 s, <= 1 GB':<52}{verdict(one_ok, 'import one file')}")
    big_ok = big.rc == 0 and big.rss <= GOAL_RSS
    print(f"{f'import, {BIG_FACTOR}x records (1 file)':<30}{cell(big):>{width}}" + " " * (width * (len(sizes) - 1) + 17)
          + f"{big.rss / max(one.rss, 1):>11.2f}  {'<= 1 GB (the same ceiling; ratio to one day shown)':<52}"
          + verdict(big_ok, "import big file"))
    for name in STEPS:
        got = {d: results[d].get(name) for d in sizes}
        ratio = rss_ratio = ""
        if got[lo] and got[hi] and hi != lo:
            ratio = f"{(got[hi].seconds / hi) / (got[lo].seconds / lo):.2f}"
            rss_ratio = f"{got[hi].rss / got[lo].rss:.2f}"
        ran = [s for s in got.values() if s is not None]
        fine = len(ran) == len(sizes) and all(s.rc == 0 for s in ran)
        if name == "import":
            goal = f"<= {GOAL_MONTH_S:.0f} s x D/{MONTH_DAYS}, <= 1 GB, RSS ratio <= {GOAL_RSS_GROWTH}"
            ok = fine and all(got[d].seconds <= GOAL_MONTH_S * d / MONTH_DAYS and got[d].rss <= GOAL_RSS
                              for d in sizes) and (not rss_ratio or float(rss_ratio) <= GOAL_RSS_GROWTH)
        elif name == "import one more day":  # the same day into a bigger store: its cost must not grow with D
            ratio = f"{got[hi].seconds / got[lo].seconds:.2f}" if got[lo] and got[hi] and hi != lo else ""
            goal = f"<= {GOAL_MONTH_S / MONTH_DAYS:.1f} s, <= 1 GB (ratio: t at D={hi} / t at D={lo})"
            ok = fine and all(s.seconds <= GOAL_MONTH_S / MONTH_DAYS and s.rss <= GOAL_RSS for s in ran)
        elif name == FIRST_BACKUP:
            goal, ok = "(reported: the first copy of every day, see MB/s above)", fine
        elif name.startswith("floor"):
            goal, ok = "(baseline; must run)", fine
        elif name.startswith("query"):
            goal = f"<= {GOAL_QUERY_S:.0f} s (query in DuckDB)"
            ok = fine and all(s.seconds <= GOAL_QUERY_S for s in ran)
        else:
            goal = f"<= {GOAL_CMD_S:.0f} s"
            ok = fine and all(s.seconds <= GOAL_CMD_S for s in ran)
        print(f"{name:<30}" + "".join(f"{cell(got[d]):>{width}}" for d in sizes) + f"{ratio:>17}{rss_ratio:>11}  "
              f"{goal:<52}{verdict(ok, name)}")
    ratios = []
    for d in sizes:
        imp, flo = results[d].get("import"), results[d].get("floor (pyarrow -> Parquet)")
        if imp and flo and imp.rc == 0 and flo.rc == 0:
            ratios.append(f"D={d}: {imp.seconds / flo.seconds:.1f}x time, {imp.rss / flo.rss:.1f}x RSS")
    print(f"{'import / floor':<30}" + "; ".join(ratios))
    print("goals met" if not failed else "GOAL MISSED: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--floor-worker":
        floor_worker(Path(sys.argv[2]), sys.argv[3:])
        sys.exit(0)
    sys.exit(main())

"""Backup and verified restore of >= 1 GB of partitions vs ``cp -r`` + ``sha256sum`` in the same run.

Project: ``run_backup(mode="full")`` into an empty target (every file read and hashed, copied into the
content-addressed store, fsynced, re-read from the disk and re-hashed, manifest written), then
``restore_day`` of every day into an empty data root (blobs re-hashed, copied with their sha256 checked,
committed under the store's protocol, the day verified against its manifest). Baseline: ``cp -r`` of
the daily folder then ``sha256sum`` of every copied file (no fsync, no re-read from disk).
Figures are MB/s of partition bytes. Also: an incremental backup of the unchanged tree (goal <= 1 s).
Where Debian's restic can be installed (``scripts/ensure_restic.sh``), ``restic backup`` of the daily
folder into a fresh repository and ``restic restore --verify`` of it are measured on the same tree and
reported beside (no goal: restic also encrypts, deduplicates by chunk and compresses nothing here).
Goals: backup and restore reach at least half the baseline's MB/s (they fsync and re-read what they
wrote, which the baseline does not); the incremental backup takes at most 1 s.
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mia_pipeline.layout import Layout, init_tree  # noqa: E402
from mia_pipeline.lifecycle.backup import run_backup  # noqa: E402
from mia_pipeline.lifecycle.restore import restore_day  # noqa: E402
from mia_pipeline.settings import load_settings  # noqa: E402
from mia_pipeline.storage import PartitionStore  # noqa: E402

DAYS = 40
ROWS = 800_000  # 2 int64 columns, uncompressed: ~13 MB per file, 2 files per day -> ~1 GB
GOAL_RATIO = 0.5
GOAL_INCREMENTAL_S = 1.0


def build(layout: Layout) -> int:
    rng = np.random.default_rng(7)
    store = PartitionStore(layout)
    for i in range(DAYS):
        day = f"2025-{5 + i // 28:02d}-{1 + i % 28:02d}"
        tables = {ds: pa.table({"ts": np.arange(ROWS, dtype=np.int64), "v": rng.integers(0, 2**62, ROWS)})
                  for ds in ("market_ticks", "market_bars")}
        store.write_many(day, tables, compression="none")
    return sum(p.stat().st_size for p in layout.daily_dir.rglob("*.parquet"))


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def baseline(src: Path, dst: Path) -> float:
    def run():
        subprocess.run(["cp", "-r", str(src), str(dst)], check=True)
        files = [str(p) for p in dst.rglob("*") if p.is_file()]
        subprocess.run(["sha256sum", *files], check=True, stdout=subprocess.DEVNULL)
    return timed(run)


def restic(src: Path, repo: Path, out: Path) -> tuple[float, float] | None:
    """(backup s, verified restore s) with restic, or None when it cannot be installed here."""
    import os

    found = subprocess.run([str(Path(__file__).resolve().parents[1] / "scripts" / "ensure_restic.sh")],
                           capture_output=True, text=True)
    if found.returncode != 0:
        print(f"restic: not measured ({found.stderr.strip()})")
        return None
    exe = found.stdout.strip()
    env = {**os.environ, "RESTIC_PASSWORD": "bench", "RESTIC_REPOSITORY": str(repo), "RESTIC_PROGRESS_FPS": "0"}

    def run(*args: str) -> None:
        subprocess.run([exe, "--quiet", *args], check=True, env=env, stdout=subprocess.DEVNULL)

    run("init")
    backup = timed(lambda: run("backup", str(src)))
    restore = timed(lambda: run("restore", "latest", "--target", str(out), "--verify"))
    return backup, restore


def main() -> int:
    with tempfile.TemporaryDirectory(dir=Path.home() if Path.home().is_dir() else None) as tmp:
        tmp = Path(tmp)
        layout = Layout(tmp / "data")
        init_tree(layout)
        nbytes = build(layout)
        mb = nbytes / 1e6
        settings = load_settings(env={"MIA_DATA_DIR": str(layout.root)})

        b_backup = baseline(layout.daily_dir, tmp / "copy1")
        p_backup = timed(lambda: run_backup(layout, settings, "full"))
        p_incremental = timed(lambda: run_backup(layout, settings, "incremental"))

        restored = Layout(tmp / "restored")
        init_tree(restored)
        r_settings = load_settings(env={"MIA_DATA_DIR": str(restored.root),
                                        "MIA_BACKUP_TARGET": str(layout.root / "backups")})
        r_store = PartitionStore(restored)
        days = layout.days_present()
        b_restore = baseline(tmp / "copy1", tmp / "copy2")
        p_restore = timed(lambda: [restore_day(restored, r_settings, r_store, d) for d in days])
        assert all(r_store.verify(d) == [] for d in days)
        with_restic = restic(layout.daily_dir, tmp / "restic-repo", tmp / "restic-out")

    ok = True
    print(f"partitions: {DAYS} days, {mb:,.0f} MB")
    for label, p, b in (("full backup", p_backup, b_backup), ("verified restore", p_restore, b_restore)):
        ratio = b / p
        met = ratio >= GOAL_RATIO
        ok &= met
        print(f"{label:<17}: project {mb / p:8.1f} MB/s ({p:.2f} s) | cp -r + sha256sum {mb / b:8.1f} MB/s "
              f"({b:.2f} s) | ratio {ratio:.2f} (goal >= {GOAL_RATIO}) {'OK' if met else 'MISSED'}")
    if with_restic:
        rb, rr = with_restic
        print(f"restic 0.14 (same tree, reported): backup {mb / rb:8.1f} MB/s ({rb:.2f} s), restore --verify "
              f"{mb / rr:8.1f} MB/s ({rr:.2f} s) | project backup {rb / p_backup:.2f}x, restore {rr / p_restore:.2f}x "
              "restic's speed")
    met = p_incremental <= GOAL_INCREMENTAL_S
    ok &= met
    print(f"incremental backup of the unchanged tree: {p_incremental:.3f} s (goal <= {GOAL_INCREMENTAL_S} s) "
          f"{'OK' if met else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

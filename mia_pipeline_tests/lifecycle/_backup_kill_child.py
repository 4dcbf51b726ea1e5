"""Subprocess for the backup/restore kill tests: loops forever so a SIGKILL lands anywhere in the work.

``backup ROOT [TARGET]``: full and incremental backups in turn (rotation keeps 2 hourly, 1 daily: every pass
also deletes manifests and collects blobs).
``restore ROOT TARGET_A TARGET_B``: restores every day from target A, then from target B, and again.
"""

import sys

import pyarrow.parquet  # noqa: F401  (imported before "ready": kills should land in the work)

from mia_pipeline.layout import Layout
from mia_pipeline.lifecycle.backup import run_backup
from mia_pipeline.lifecycle.restore import restore_day
from mia_pipeline.settings import load_settings
from mia_pipeline.storage import PartitionStore


def settings(root: str, target: str | None = None):
    env = {"MIA_DATA_DIR": root, "MIA_RETENTION_DAYS": "100000", "MIA_BACKUP_KEEP_HOURLY": "2",
           "MIA_BACKUP_KEEP_DAILY": "1"}
    if target:
        env["MIA_BACKUP_TARGET"] = target
    return load_settings(env=env)


if __name__ == "__main__":
    what, root = sys.argv[1], sys.argv[2]
    layout = Layout(root)
    store = PartitionStore(layout)
    if what == "backup":
        s = settings(root, sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] else None)
        print("ready", flush=True)
        while True:
            run_backup(layout, s, "full", store=store)
            run_backup(layout, s, "incremental", store=store)
    else:
        targets = [settings(root, t) for t in sys.argv[3:5]]
        print("ready", flush=True)
        while True:
            for s in targets:
                for day in layout.days_present():
                    restore_day(layout, s, store, day)

"""storage_full on a real small volume: a 16 MB tmpfs as the backup target, filled and emptied."""

import os
import subprocess

import pytest
from alert_doubles import Clock, settings_for

from mia_pipeline.quality.alerts import evaluate_alerts


@pytest.fixture
def small_volume(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (run the suite as root to test a real full volume)")
    mnt = tmp_path / "backup-disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_filling_the_backup_volume_raises_storage_full_naming_it_and_emptying_resolves(layout, small_volume):
    settings = settings_for(layout, storage_min_free_mb=4, storage_min_free_pct=0.0,
                            backup_target=small_volume / "mia-backups")
    clock = Clock()
    assert evaluate_alerts(layout, settings, market_open=False, **clock.kw).fired == []
    filler = small_volume / "filler.bin"
    filler.write_bytes(b"\0" * (14 * 2**20))  # 14 of 16 MB: 2 MB free, under the 4 MB floor
    ev = evaluate_alerts(layout, settings, market_open=False, **clock.advance(1).kw)
    (fired,) = ev.fired
    assert fired["name"] == "storage_full" and fired["key"] == "backup" and fired["level"] == "CRITICAL"
    assert f"mounted at {small_volume}" in fired["message"] and "the backup volume" in fired["message"]
    assert fired["context"]["free_mb"] < 4 and fired["context"]["total_mb"] == 16
    assert evaluate_alerts(layout, settings, market_open=False, **clock.advance(1).kw).fired == []
    filler.unlink()
    (resolved,) = evaluate_alerts(layout, settings, market_open=False, **clock.advance(1).kw).resolved
    assert resolved["incident"] == fired["incident"] and "the backup volume" in resolved["message"]

"""The atomic folder publish (storage/publish.py) with real files and injected faults: a failure
while filling, while syncing or while swapping leaves the previous folder exactly as it was and no
temp folder; a crash between the two renames of the fallback swap is undone by the next publish."""

import os

import pytest

from mia_pipeline.storage import publish
from mia_pipeline.storage.publish import publish_folder, recover


def _snapshot(parent):
    return {str(p.relative_to(parent)): p.read_bytes() if p.is_file() else None for p in sorted(parent.rglob("*"))}


def _publish(target, version, n=3):
    with publish_folder(target) as tmp:
        for i in range(n):
            (tmp / f"part_{i}.txt").write_text(f"{version}\n")


def test_publish_replaces_the_folder_as_a_whole(tmp_path):
    target = tmp_path / "week"
    _publish(target, "v1", n=4)
    _publish(target, "v2", n=2)
    assert sorted(p.name for p in target.iterdir()) == ["part_0.txt", "part_1.txt"], "no file of v1 left"
    assert {p.read_text() for p in target.iterdir()} == {"v2\n"}
    assert [p.name for p in tmp_path.iterdir()] == ["week"], "no temp or old folder left"


def test_failure_while_filling_leaves_the_previous_folder(tmp_path):
    target = tmp_path / "week"
    _publish(target, "v1")
    before = _snapshot(tmp_path)
    with pytest.raises(OSError, match="disk full"), publish_folder(target) as tmp:
        (tmp / "part_0.txt").write_text("v2\n")   # a real, half-written new set
        raise OSError("disk full")
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("step", ["sync_tree", "fsync_dir"])
def test_failure_while_publishing_leaves_the_previous_folder(tmp_path, monkeypatch, step):
    target = tmp_path / "week"
    _publish(target, "v1")
    before = _snapshot(tmp_path)

    def fail(*args, **kwargs):
        raise OSError(f"{step} failed")

    if step == "fsync_dir":  # the only fsync_dir before the swap is the temp folder's own
        real = publish.fsync_dir
        monkeypatch.setattr(publish, "fsync_dir", lambda p: fail() if p.name.endswith(".tmp") else real(p))
    else:
        monkeypatch.setattr(publish, step, fail)
    with pytest.raises(OSError, match=f"{step} failed"):
        _publish(target, "v2")
    assert _snapshot(tmp_path) == before


def test_a_crash_between_the_fallback_renames_is_undone(tmp_path):
    target = tmp_path / "week"
    _publish(target, "v1")
    os.replace(target, tmp_path / ".week.0123456789ab.old")        # what the first rename leaves
    (tmp_path / ".week.fedcba987654.tmp").mkdir()                  # and the new set, never swapped in
    (tmp_path / ".week.fedcba987654.tmp" / "part_0.txt").write_text("v2\n")
    (tmp_path / ".week.b.0123456789ab.old").mkdir()                # a sibling's ("week.b"): not touched
    recover(target, stale_after_s=0)
    assert {p.read_text() for p in target.iterdir()} == {"v1\n"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".week.b.0123456789ab.old", "week"]

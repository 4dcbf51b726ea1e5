"""Issue 25 (5): a tampered backup manifest cannot plant another day's data.

The manifest's checksum only detects accidental damage (anyone who can write the target can recompute
it), so a restore checks what it is about to publish: the day manifest must describe the day, and every
file's rows must lie inside the day with unique keys. A backup that fails is skipped (reported) and an
older good one is used; with none, nothing is written.
"""

import io
import json
import shutil
from dataclasses import replace

import pytest

from mia_pipeline.lifecycle.backup import run_backup
from mia_pipeline.lifecycle.catalog import DAILY_PREFIX, encode_manifest, list_backups, target_for
from mia_pipeline.lifecycle.restore import RestoreError, restore_day
from mia_pipeline_tests.lifecycle._backup_data import DAYS, build, contents, settings_for


@pytest.fixture
def data(layout, monkeypatch):
    monkeypatch.setenv("MIA_RETENTION_DAYS", "100000")
    store = build(layout)
    settings = settings_for(layout)
    first = run_backup(layout, settings, "full")
    return layout, store, settings, first


def tamper(layout, settings, backup_id: str, edit) -> None:
    """Rewrite one backup manifest with ``edit(files)`` applied, its checksum recomputed (as an attacker would)."""
    target = target_for(layout, settings)
    backup = next(b for b in list_backups(target)[0] if b.id == backup_id)
    files = dict(backup.files)
    edit(target, files)
    target.put_manifest(backup.kind, backup.id, encode_manifest(replace(backup, files=files)))


def point(day: str, other: str, with_manifest: bool):
    def edit(target, files):
        for rel in [r for r in files if r.startswith(f"{DAILY_PREFIX}{day}/")]:
            del files[rel]
        for rel, ref in list(files.items()):
            if rel.startswith(f"{DAILY_PREFIX}{other}/") and (with_manifest or not rel.endswith("_manifest.json")):
                files[rel.replace(other, day)] = ref
        if not with_manifest:  # a day manifest of its own (a new blob), naming the other day's files
            manifest = json.loads(target.open_blob(files[f"{DAILY_PREFIX}{other}/_manifest.json"].sha256).read())
            manifest["day"] = day
            data = json.dumps(manifest).encode()
            sha, size, _ = target.put_stream(io.BytesIO(data))
            ref = files[f"{DAILY_PREFIX}{other}/_manifest.json"]
            files[f"{DAILY_PREFIX}{day}/_manifest.json"] = replace(ref, sha256=sha, size=size)
    return edit


@pytest.mark.parametrize("with_manifest", [True, False], ids=["its-day-manifest-too", "a-forged-day-manifest"])
def test_a_manifest_pointing_a_day_at_another_days_files_plants_nothing(data, with_manifest):
    layout, store, settings, first = data
    tamper(layout, settings, first.id, point(DAYS[0], DAYS[1], with_manifest))
    before = contents(store)
    shutil.rmtree(layout.day_dir(DAYS[0]))
    with pytest.raises(RestoreError) as err:
        restore_day(layout, settings, store, DAYS[0])
    assert ("describes '2025-06-24'" if with_manifest else "outside 2025-06-23") in str(err.value)
    assert not layout.day_dir(DAYS[0]).exists() or store.days_present() == [DAYS[1], DAYS[2]]
    assert {k: v for k, v in contents(store).items() if k[0] != DAYS[0]} == \
        {k: v for k, v in before.items() if k[0] != DAYS[0]}


def test_a_tampered_newest_backup_is_skipped_for_the_older_good_one(data):
    layout, store, settings, first = data
    before = contents(store)
    second = run_backup(layout, settings, "incremental")
    tamper(layout, settings, second.id, point(DAYS[0], DAYS[1], with_manifest=False))
    shutil.rmtree(layout.day_dir(DAYS[0]))
    result = restore_day(layout, settings, store, DAYS[0])
    assert result.backup_id == f"hourly/{second.id}"  # its day manifest reads well...
    assert set(result.sources.values()) == {f"daily/{first.id}"}  # ...every file came from the good backup
    assert "outside 2025-06-23" in result.skipped[f"hourly/{second.id}"]
    assert contents(store) == before and store.verify(DAYS[0]) == []

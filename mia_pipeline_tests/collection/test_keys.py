"""Keys that cannot collide by accident: a performance sample is one series (source + metric + its
tags) at one instant, so two sources or two tag sets at the same instant are two rows, while a true
re-delivery is still dropped and a changed value under the same key is still a conflict."""

from conftest import SYMBOLS, append

from mia_pipeline.collection.ingest import ingest_landing_zone
from mia_pipeline.quality.checks import run_checks
from mia_pipeline_tests.guide_examples import make_event, to_line

TS = "2025-06-23T14:30:00.000Z"


def sample(i: int, **kw) -> bytes:
    return to_line(make_event("performance", event_id=f"perf-{i}", timestamp=TS, metric="latency_ms", **kw))


def test_two_sources_or_two_tag_sets_at_one_instant_are_two_rows(layout, store):
    append(layout, "a.jsonl",
           sample(1, source="ibkr", value=12.0)
           + sample(2, source="sierra", value=30.0)                                   # another source
           + sample(3, source="ibkr", value=15.0, tags={"symbol": "NQ"})             # another tag set
           + sample(4, source="ibkr", value=12.0)                                     # a re-delivery
           + sample(5, source="ibkr", value=99.0))                                    # a changed value
    report = ingest_landing_zone(layout, store, known_symbols=SYMBOLS)
    assert report.landed["performance"] == 3
    assert report.duplicates["performance"] == 1
    assert report.quarantined == {"duplicate_conflict": 1}
    assert all(o.passed for o in run_checks(store, "performance", "2025-06-23"))

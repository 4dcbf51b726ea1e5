import pytest

from mia_pipeline.storage import PartitionStore
from mia_pipeline_tests.guide_examples import make_event, to_line

SYMBOLS = frozenset({"ES", "NQ", "EURUSD", "GBPUSD", "USDJPY"})


@pytest.fixture
def store(layout) -> PartitionStore:
    return PartitionStore(layout)


def tick(i: int, ts: str = "2025-06-23T14:30:15.125Z", **kw) -> bytes:
    return to_line(make_event("market_tick", seq=i, event_id=f"tick-{i}", timestamp=ts, **kw))


def append(layout, name: str, data: bytes) -> None:
    with open(layout.streaming_dir / name, "ab") as fh:
        fh.write(data)

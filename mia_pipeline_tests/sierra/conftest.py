"""Fixtures: a Sierra Chart Data folder written by the suite's own writer, and settings pointing at it."""

from datetime import UTC, datetime

import pytest
from sierra_writer import DepthRecord, es_session, unix_us, write_depth, write_scid

from mia_pipeline.storage import PartitionStore

T0 = unix_us(datetime(2025, 6, 23, 13, 30, tzinfo=UTC))


@pytest.fixture
def store(layout) -> PartitionStore:
    return PartitionStore(layout)


def depth_batch(t_us: int, n: int = 12) -> list[DepthRecord]:
    """A clear, then ``n`` level updates sharing a millisecond, the last one ending the batch."""
    out = [DepthRecord(t_us, 1, 0, 0, 0.0, 0)]
    for i in range(n):
        out.append(DepthRecord(t_us + i, 2 + i % 6, 1 if i == n - 1 else 0, 1 + i, 6000.0 + 0.25 * (i % 5), 5 + i))
    return out


@pytest.fixture
def sierra_dir(tmp_path):
    """Data/ with ESU25_FUT_CME.scid (600 trades over ~2.5 min) and MarketDepthData/ESU25_FUT_CME.2025-06-23.depth."""
    root = tmp_path / "SierraChart" / "Data"
    (root / "MarketDepthData").mkdir(parents=True)
    write_scid(root / "ESU25_FUT_CME.scid", es_session(T0, 600), partial=b"\x01" * 11)
    write_depth(root / "MarketDepthData" / "ESU25_FUT_CME.2025-06-23.depth", depth_batch(T0) + depth_batch(T0 + 5000))
    return root


@pytest.fixture
def config(tmp_path, sierra_dir):
    cfg = tmp_path / "mia.yaml"
    cfg.write_text(f"sierra: {{data_dir: '{sierra_dir}'}}\n")
    return cfg

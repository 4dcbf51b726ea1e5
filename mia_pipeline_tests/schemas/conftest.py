import pytest

from mia_pipeline.schemas import parse_lines

# 2025-06-24T00:00:00Z: after every example timestamp, so nothing is "in the future" by default
NOW_MS = 1_750_723_200_000


@pytest.fixture
def parse():
    """parse_lines with a fixed clock; keyword overrides pass through."""

    def _parse(data: bytes, **kw):
        kw.setdefault("now_ms", NOW_MS)
        return parse_lines(data, **kw)

    return _parse

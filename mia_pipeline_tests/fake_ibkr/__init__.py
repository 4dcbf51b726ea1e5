"""A loopback fake of TWS / IB Gateway for tests and benchmarks (see :mod:`.fake_gateway`).

Not used by the recorder or the backfill themselves; it lives in the package (not in the tests)
because ``benchmarks/bench_ibkr.py`` drives the same gateway.
"""

from mia_pipeline_tests.fake_ibkr.fake_gateway import FakeGateway, GatewayError
from mia_pipeline_tests.fake_ibkr.market import FakeMarket

__all__ = ["FakeGateway", "FakeMarket", "GatewayError"]

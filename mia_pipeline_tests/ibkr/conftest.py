"""Fixtures: a fake IB gateway on 127.0.0.1 (real TWS socket protocol) and settings pointing at it."""

import logging

import pytest

from mia_pipeline.settings import load_settings
from mia_pipeline_tests.fake_ibkr import FakeGateway


@pytest.fixture(autouse=True)
def _quiet_ib_async():
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)  # expected errors (162, 200, drops) are not noise


@pytest.fixture
def gateway():
    with FakeGateway() as gw:
        yield gw


@pytest.fixture
def ibkr_env(gateway, monkeypatch):
    """MIA_IBKR_* pointing at the fake gateway; short timeouts so nothing can hang."""
    monkeypatch.setenv("MIA_IBKR_HOST", "127.0.0.1")
    monkeypatch.setenv("MIA_IBKR_PORT", str(gateway.port))
    monkeypatch.setenv("MIA_IBKR_CLIENT_ID", "7")
    return gateway


@pytest.fixture
def ibkr_cfg(gateway):
    """``ibkr:`` settings for the fake gateway (call with overrides, e.g. ``ibkr_cfg(tick_by_tick=True)``)."""

    def make(**overrides):
        cfg = load_settings(env={"MIA_IBKR_PORT": str(gateway.port)}).ibkr
        return cfg.model_copy(update={"connect_timeout_s": 3, "request_timeout_s": 2, **overrides})

    return make

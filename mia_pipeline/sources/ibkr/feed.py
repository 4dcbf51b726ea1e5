"""Is IBKR reachable, and if not, why: `mia sources test` and the guide's Python form (§1.3)::

    from mia_pipeline.sources.ibkr.feed import MarketDataFeed
    feed = MarketDataFeed()
    print(f"IBKR: {feed.test_ibkr_connection()}")   # "OK: server version 176, account DU1234567"
                                                    # or "DOWN (refused): connection refused at ..."

A :class:`ConnectionCheck` is truthy when the source is up. Reasons when down: ``refused``,
``unreachable``, ``no_answer`` (API not enabled / not trusted / wrong port), ``not_ib``,
``client_id_in_use``, ``farms_down`` (connected, but IB reports its data farms broken).
The test connects with ``client_id + 100`` so that it does not collide with a running recorder.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from mia_pipeline.sources.ibkr.session import FARM_BROKEN, ConnectFailure, close, connect

PROBE_CLIENT_OFFSET = 100


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    reason: str   # "ok" or why it is down
    detail: str

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return f"OK: {self.detail}" if self.ok else f"DOWN ({self.reason}): {self.detail}"


def check_ibkr(ibkr, timeout_s: float | None = None) -> ConnectionCheck:
    """Connect once, look at the farm messages, disconnect. Bounded by ``timeout_s`` (+1 s)."""

    async def go() -> ConnectionCheck:
        try:
            ib = await connect(ibkr.host, ibkr.port, (ibkr.client_id + PROBE_CLIENT_OFFSET) % 2**31,
                               timeout_s or ibkr.connect_timeout_s)
        except ConnectFailure as exc:
            return ConnectionCheck(False, exc.reason, str(exc))
        try:
            await asyncio.sleep(0.2)  # farm messages follow the handshake
            version, accounts = ib.client.serverVersion(), ",".join(ib.managedAccounts())
            broken = [f"{FARM_BROKEN[c]} ({m})" for c, m in sorted(ib.mia_farms.items())]
        finally:
            close(ib)
        if broken:
            return ConnectionCheck(False, "farms_down", f"connected (server version {version}) but IB reports "
                                   f"broken: {'; '.join(broken)} — data will not flow until TWS reconnects them")
        return ConnectionCheck(True, "ok", f"server version {version}, account {accounts}")

    return asyncio.run(go())


class MarketDataFeed:
    """The guide's ``MarketDataFeed`` (§1.3): connection tests of the configured sources."""

    def __init__(self, settings=None):
        if settings is None:
            from mia_pipeline.settings import load_settings

            settings = load_settings()
        self.settings = settings

    def test_ibkr_connection(self, timeout_s: float | None = None) -> ConnectionCheck:
        return check_ibkr(self.settings.ibkr, timeout_s)

    def test_sierra_connection(self):
        """Sierra Chart's data folder: present, .scid files found, last write age per symbol."""
        from mia_pipeline.sources.sierra.status import test_sierra_connection

        return test_sierra_connection(self.settings.sierra)

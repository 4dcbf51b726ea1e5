"""Connecting the real ib_async client to the fake gateway: the handshake, the start-up sync, and a
plain reason (within a bounded time) for every way a connection goes wrong (issue 14 item 6)."""

import asyncio

import pytest

from mia_pipeline.sources.ibkr.session import ConnectFailure, close, connect
from mia_pipeline_tests.fake_ibkr import FakeGateway


def attempt(port: int, client_id: int = 1, host: str = "127.0.0.1", timeout: float = 1.5):
    async def go():
        ib = await connect(host, port, client_id, timeout)
        info = (ib.client.serverVersion(), ib.managedAccounts(), dict(ib.mia_farms))
        close(ib)
        return info

    return asyncio.run(go())


def test_handshake_version_accounts_and_sync(gateway):
    version, accounts, farms = attempt(gateway.port)
    assert version == 176 and accounts == ["DU1234567"] and farms == {}
    assert gateway.connections == 1


def test_farms_broken_at_connect_are_kept(gateway):
    gateway.farms_broken = True
    _, _, farms = attempt(gateway.port)
    assert set(farms) == {2103, 2105, 2157}


@pytest.mark.parametrize(("mode", "reason", "words"), [
    ("silent", "no_answer", "did not answer the API handshake"),
    ("garbage", "not_ib", "not the TWS API protocol"),
    ("http", "not_ib", "not the TWS API protocol"),
])
def test_a_peer_that_is_not_a_working_gateway_is_named(mode, reason, words):
    with FakeGateway(mode=mode) as gw, pytest.raises(ConnectFailure, match=words) as caught:
        attempt(gw.port)
    assert caught.value.reason == reason


def test_client_id_in_use_fails_at_once_with_ib_326(gateway):
    gateway.held_client_ids.add(1)
    with pytest.raises(ConnectFailure, match="client id 1 is already in use.*326") as caught:
        attempt(gateway.port, client_id=1, timeout=30)  # would wait 30 s without the 326 watch
    assert caught.value.reason == "client_id_in_use"
    attempt(gateway.port, client_id=2)


def test_refused_and_unresolvable_hosts():
    with FakeGateway() as gw:
        port = gw.port
    with pytest.raises(ConnectFailure, match="connection refused") as caught:
        attempt(port)
    assert caught.value.reason == "refused"
    with pytest.raises(ConnectFailure, match="cannot be resolved") as caught:
        attempt(7497, host="no-such-host.invalid")
    assert caught.value.reason == "unreachable"

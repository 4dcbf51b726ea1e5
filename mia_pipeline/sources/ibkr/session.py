"""Connecting ib_async to TWS / IB Gateway with a bounded wait and a plain reason when it fails.

``await connect(host, port, client_id, timeout_s)`` returns a ready ``ib_async.IB`` (request errors
raised as ``RequestError``, read-only: this client never trades) or raises :class:`ConnectFailure`
whose ``reason`` is one of :data:`REASONS` and whose message says what to check. It never waits
longer than ``timeout_s``: a peer that accepts and never answers, garbage on the socket and a
duplicate client id (IB's error 326, which ib_async itself only notices at its timeout) all end
within it. Farm status messages seen while connecting are kept in ``ib.mia_farms``
(code -> message), for ``mia sources test``.
"""

from __future__ import annotations

import asyncio
import errno
import socket

from ib_async import IB

from mia_pipeline.sources.ibkr import decode_errors

REASONS = ("refused", "unreachable", "no_answer", "not_ib", "client_id_in_use")
FARM_BROKEN = {2103: "market data farm", 2105: "historical data farm", 2157: "sec-def farm"}
FARM_OK = {2104: 2103, 2106: 2105, 2158: 2157}
PORT_HINT = "TWS uses 7497 (paper) / 7496 (live), IB Gateway 4002 (paper) / 4001 (live)"


class ConnectFailure(ConnectionError):
    """TWS / IB Gateway could not be used; ``reason`` in :data:`REASONS`."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


async def connect(host: str, port: int, client_id: int, timeout_s: float) -> IB:
    decode_errors.install()  # undecodable messages: one line each, counted; no traceback on the terminal
    ib = IB()
    ib.RaiseRequestErrors = True
    ib.mia_farms = {}  # code -> message of the farm messages seen
    loop = asyncio.get_running_loop()
    refused: asyncio.Future = loop.create_future()

    def on_error(req_id, code, message, contract) -> None:
        if code == 326 and not refused.done():
            refused.set_result(("client_id_in_use", message))
        if code in FARM_BROKEN:
            ib.mia_farms[code] = message
        if code in FARM_OK:
            ib.mia_farms.pop(FARM_OK[code], None)

    received: list[int] = []

    def on_data(data: bytes) -> None:
        received.append(len(data))

    def on_closed(message: str) -> None:
        if not refused.done():
            refused.set_result(("garbage" if received else "closed", message))

    ib.errorEvent += on_error
    ib.client.conn.hasData += on_data
    ib.client.conn.disconnected += on_closed
    task = asyncio.ensure_future(ib.connectAsync(host, port, clientId=client_id, timeout=timeout_s, readonly=True))
    try:
        done, _ = await asyncio.wait({task, refused}, timeout=timeout_s + 1, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
            return ib
        if refused in done:
            task.cancel()
            raise _closed(refused.result(), host, port, client_id)
        task.cancel()
        raise TimeoutError
    except ConnectFailure:
        close(ib)
        raise
    except BaseException as exc:
        close(ib)
        if isinstance(exc, asyncio.CancelledError) and not task.cancelled():
            raise
        timed_out = isinstance(exc, TimeoutError | asyncio.TimeoutError)
        if refused.done() and (not timed_out or refused.result()[0] == "client_id_in_use"):
            raise _closed(refused.result(), host, port, client_id) from None
        raise _classify(exc, ib, host, port, timeout_s, bool(received)) from None
    finally:
        ib.errorEvent -= on_error
        ib.client.conn.hasData -= on_data
        ib.client.conn.disconnected -= on_closed


def close(ib: IB) -> None:
    """Disconnect, whatever state the connection is in (never raises)."""
    try:
        if ib.client.isReady():
            ib.disconnect()
        else:
            ib.client.disconnect()
    except Exception:  # noqa: BLE001 - closing a socket that is already gone
        pass


def _closed(why: tuple[str, str], host: str, port: int, client_id: int) -> ConnectFailure:
    kind, message = why
    if kind == "garbage":
        return ConnectFailure("not_ib", f"{host}:{port} answered with bytes that are not the TWS API protocol and "
                              f"closed the connection: it is not TWS / IB Gateway's API port ({PORT_HINT})")
    if kind == "client_id_in_use":
        return ConnectFailure("client_id_in_use", f"client id {client_id} is already in use at {host}:{port} "
                              f"(IB error 326: {message}); another program or a session that has not timed out "
                              "holds it: use another client id (MIA_IBKR_CLIENT_ID) or wait a minute")
    return ConnectFailure("not_ib", f"{host}:{port} closed the connection during the API handshake without an IB "
                          f"answer: it is not TWS / IB Gateway's API port, or it refused this client ({PORT_HINT})")


def _classify(exc: BaseException, ib: IB, host: str, port: int, timeout_s: float, answered: bool) -> ConnectFailure:
    if isinstance(exc, ConnectionRefusedError):
        return ConnectFailure("refused", f"connection refused at {host}:{port}: TWS / IB Gateway is not running "
                              f"there or listens on another port ({PORT_HINT})")
    if isinstance(exc, socket.gaierror):
        return ConnectFailure("unreachable", f"host {host!r} cannot be resolved ({exc.strerror}); check MIA_IBKR_HOST")
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL):
        return ConnectFailure("unreachable", f"{host}:{port} cannot be reached ({exc.strerror})")
    reached = ib.client.conn.numBytesSent > 0  # the hello went out: TCP was accepted
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        if not reached:
            return ConnectFailure("unreachable", f"no TCP answer from {host}:{port} within {timeout_s:g} s "
                                  "(a firewall, or the host is down)")
        if answered and not ib.client.serverVersion():
            return ConnectFailure("not_ib", f"{host}:{port} answered with bytes that are not the TWS API protocol "
                                  f"(no handshake within {timeout_s:g} s): it is not TWS / IB Gateway's API port "
                                  f"({PORT_HINT})")
        if ib.client.serverVersion():
            return ConnectFailure("no_answer", f"{host}:{port} answered the handshake but never finished the API "
                                  f"start-up within {timeout_s:g} s (TWS busy or a dialog waiting in TWS?)")
        return ConnectFailure("no_answer", f"{host}:{port} accepted the connection but did not answer the API "
                              f"handshake within {timeout_s:g} s: enable 'ActiveX and Socket Clients' in TWS / IB "
                              "Gateway (Configure > API > Settings), add this host to 'Trusted IPs', or check the "
                              f"port ({PORT_HINT})")
    if isinstance(exc, ConnectionError | OSError | ValueError):
        return ConnectFailure("not_ib", f"{host}:{port} did not answer like TWS / IB Gateway ({exc or type(exc).__name__}); "
                              f"check the port ({PORT_HINT})")
    return ConnectFailure("not_ib", f"connecting to {host}:{port} failed: {type(exc).__name__}: {exc}")

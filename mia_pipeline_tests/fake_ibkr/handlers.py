"""What the fake gateway answers to each client message (server version 176 layouts).

Request layouts (first field the message id; see ib_async ``client.py``)::

    71 startApi [71, 2, clientId, optCapab]            9 reqContractDetails [9, 8, reqId, <12>, ...]
    20 reqHistoricalData [20, reqId, <12>, includeExpired, end, barSize, duration, useRTH, what, ...]
     1 reqMktData [1, 11, reqId, <12>, dnc, genericTicks, snapshot, ...]
    50 reqRealTimeBars [50, 3, reqId, <12>, 5, what, useRTH, opts]
    97 reqTickByTickData [97, reqId, <12>, tickType, numberOfTicks, ignoreSize]
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mia_pipeline_tests.fake_ibkr.wire import WireContract

if TYPE_CHECKING:
    from mia_pipeline_tests.fake_ibkr.fake_gateway import FakeGateway, Session

BAR_SECONDS = {"1 secs": 1, "5 secs": 5, "1 min": 60, "5 mins": 300, "15 mins": 900, "1 hour": 3600, "1 day": 86400}
UNIT_SECONDS = {"S": 1, "D": 86400, "W": 7 * 86400}
PACING_TEXT = "Historical Market Data Service error message:Historical data request pacing violation"


def duration_seconds(text: str) -> int:
    n, unit = text.split()
    return int(n) * UNIT_SECONDS[unit]


def parse_end(text: str) -> int:
    """``YYYYmmdd HH:MM:SS UTC`` (what ib_async sends for an aware datetime) → epoch seconds."""
    return int(datetime.strptime(text[:17], "%Y%m%d %H:%M:%S").replace(tzinfo=UTC).timestamp())


class Handlers:
    def __init__(self, gw: FakeGateway):
        self.gw = gw
        self.pacing: list[tuple[float, tuple, tuple, int]] = []

    # ------------------------------------------------------------------ dispatch
    def handle(self, s: Session, f: list[str]) -> bool:
        """Answer one message; False closes the session."""
        mid = int(f[0])
        if mid == 71:
            return self.start_api(s, int(f[2]))
        simple = {61: [(62, 1)], 5: [(53, 1)], 99: [(102,)], 49: [(49, 1, int(self.gw.clock()))]}
        if mid in simple:
            for reply in simple[mid]:
                s.send(*reply)
        elif mid == 6 and f[2] == "1":
            s.send(54, 1, f[3])
        elif mid == 76:
            s.send(74, 1, f[2])
        elif mid == 7:
            s.send(55, 1, f[2])
        elif mid == 9:
            self.contract_details(s, int(f[2]), *WireContract.take(f, 3), f)
        elif mid == 20:
            self.historical(s, int(f[1]), *WireContract.take(f, 2), f)
        elif mid == 1:
            c, at = WireContract.take(f, 3)
            self.subscribe(s, "mkt", int(f[2]), c, f[at + 1])
        elif mid == 50:
            c, at = WireContract.take(f, 3)
            self.subscribe(s, "rtb", int(f[2]), c, f[at + 1])
        elif mid == 97:
            c, at = WireContract.take(f, 2)
            self.subscribe(s, "tbt", int(f[1]), c, f[at])
        elif mid in (2, 51, 98):
            s.subs.pop(int(f[2] if mid != 98 else f[1]), None)
        return True

    def start_api(self, s: Session, client_id: int) -> bool:
        if client_id in self.gw.held_client_ids or any(o.client_id == client_id for o in self.gw.sessions):
            s.send(4, 2, -1, 326, "Unable to connect as the client id is already in use. Retry with a unique "
                   "client id.", "")
            return False
        s.client_id = client_id
        s.send(15, 1, ",".join(self.gw.accounts))
        s.send(9, 1, 1)
        broken = self.gw.farms_broken
        for code in ((2103, 2105, 2157) if broken else (2104, 2106, 2158)):
            from mia_pipeline_tests.fake_ibkr.fake_gateway import STATUS_TEXT

            s.send(4, 2, -1, code, STATUS_TEXT[code], "")
        return True

    # ------------------------------------------------------------------ contracts
    def _today(self):
        return datetime.fromtimestamp(self.gw.clock(), UTC).date()

    def find(self, c: WireContract, include_expired: bool = True):
        if c.conId:
            return [x for x in self.gw.market.listed if x.con_id == c.conId]
        return self.gw.market.matching(c.symbol, c.secType, c.exchange, c.currency, c.lastTradeDateOrContractMonth,
                                       include_expired, self._today())

    def contract_details(self, s: Session, req_id: int, c: WireContract, at: int, f: list[str]) -> None:
        found = self.find(c, include_expired=f[at] == "1")
        if not found:
            s.send(4, 2, req_id, 200, "No security definition has been found for the request", "")
            return
        for x in found:
            s.send(10, req_id, x.symbol, x.sec_type, x.expiry, 0.0, "", x.exchange, x.currency, x.local_symbol,
                   x.trading_class, x.trading_class, x.con_id, x.min_tick, x.multiplier, "LMT,MKT", x.exchange, 1,
                   0, x.long_name, "", x.expiry[:6], "", "", "", "US/Central", "", "", "", "", 0,
                   1, "", "", "26", x.expiry, "", "1", "1", "1")
        s.send(52, 1, req_id)

    # ------------------------------------------------------------------ history
    def historical(self, s: Session, req_id: int, c: WireContract, at: int, f: list[str]) -> None:
        end_text, bar_text, duration_text, what = f[at + 1], f[at + 2], f[at + 3], f[at + 5]
        found = self.find(c)
        if len(found) != 1:
            s.send(4, 2, req_id, 200, "No security definition has been found for the request", "")
            return
        x = found[0]
        now = self.gw.clock()
        key = (x.con_id, end_text, bar_text, duration_text, what)
        self.gw.history_log.append((now, key))
        if self.gw.enforce_pacing and (why := self.pacing_violation(now, key, (x.con_id, x.exchange, what),
                                                                    2 if what == "BID_ASK" else 1)):
            self.gw.violations.append(why)
            s.send(4, 2, req_id, 162, PACING_TEXT, "")
            return
        script = self.gw.script.get((x.symbol if x.sec_type == "FUT" else x.local_symbol.replace(".", ""), what))
        outcome = script.popleft() if script else None
        if outcome == "hang":
            return
        if outcome == "garbage":  # an answer ib_async cannot decode (a bar count that is no number)
            s.send(17, req_id, end_text, end_text, "many", "x", "y")
            return
        if isinstance(outcome, tuple):
            s.send(4, 2, req_id, outcome[0], outcome[1], "")
            return
        if (x.sec_type, what) in self.gw.unavailable:
            s.send(4, 2, req_id, 162, f"Historical Market Data Service error message:No historical market data "
                   f"for {x.symbol}/{x.sec_type}@{x.exchange} {what} {bar_text}", "")
            return
        end = parse_end(end_text)
        bars = [] if outcome == "empty" else self.gw.market.bars(x, what, end, duration_seconds(duration_text),
                                                                  BAR_SECONDS[bar_text])
        if isinstance(outcome, dict):  # damaged bars: {index: (open, high, low, close, volume, wap, count)}
            bars = [(b[0], *outcome.get(i, b[1:])) for i, b in enumerate(bars)]
        if not bars:  # IB says so with an error, not an empty list
            s.send(4, 2, req_id, 162, "Historical Market Data Service error message:HMDS query returned no data: "
                   f"{x.local_symbol}@{x.exchange} {what}", "")
            return
        body = [v for b in bars for v in (b[0], *b[1:])]
        s.send(17, req_id, end_text, end_text, len(bars), *body)

    def pacing_violation(self, now: float, key: tuple, contract_key: tuple, weight: int) -> str | None:
        """IB's historical pacing rules, checked independently of the client's limiter."""
        self.pacing = [p for p in self.pacing if now - p[0] < 600]
        why = None
        if any(p[1] == key and now - p[0] < 15 for p in self.pacing):
            why = f"identical request within 15 s: {key}"
        elif sum(1 for p in self.pacing if p[2] == contract_key and now - p[0] < 2) >= 5:
            why = f"6 or more requests for {contract_key} within 2 s"
        elif sum(p[3] for p in self.pacing) + weight > 60:
            why = "more than 60 requests within 10 minutes"
        self.pacing.append((now, key, contract_key, weight))
        return why

    # ------------------------------------------------------------------ streaming
    def subscribe(self, s: Session, kind: str, req_id: int, c: WireContract, detail: str) -> None:
        from mia_pipeline_tests.fake_ibkr.fake_gateway import Subscription

        found = self.find(c)
        if len(found) != 1:
            s.send(4, 2, req_id, 200, "No security definition has been found for the request", "")
            return
        s.subs[req_id] = Subscription(kind, req_id, found[0], detail)

    def stream_step(self) -> None:
        """One round of data: quotes (+ RTVolume where there are trades), a 5-s bar, tick-by-tick."""
        gw = self.gw
        gw.sim_time += 5
        t = gw.sim_time
        for s in gw.sessions:
            for sub in list(s.subs.values()):
                x, r = sub.contract, sub.req_id
                mid = gw.market.mid(x, t)
                bid, ask = round(mid - x.min_tick, 6), round(mid + x.min_tick, 6)
                if sub.kind == "mkt":
                    s.send(1, 6, r, 1, bid, 3, 0)
                    s.send(1, 6, r, 2, ask, 4, 0)
                    if x.sec_type != "CASH" and "233" in sub.detail.split(","):
                        s.send(46, 6, r, 48, f"{mid};2;{t * 1000};{t % 100000};{mid};true")
                elif sub.kind == "rtb":
                    o, h, lo, c, v, w, n = gw.market.bar(x, sub.detail, t - 5, 5)
                    s.send(50, 3, r, t - 5, o, h, lo, c, max(v, 0), max(w, 0), max(n, 0))
                elif sub.detail == "BidAsk":
                    s.send(99, r, 3, t, bid, ask, 3, 4, 0)
                else:
                    s.send(99, r, 1 if sub.detail == "Last" else 2, t, mid, 1, 0, "CME", "")

"""Consistency checks of the data quality report (:mod:`mia_pipeline.reports.quality`).

**Consistency** (:func:`consistency`, cross-dataset joins) plus the per-day checks of the rule table
(:func:`~mia_pipeline.quality.checks.run_day_checks`):

- ``exit_without_entry`` (blocking): a trade exit whose entry (``entry_timestamp``) is inside the period
  but no trade snapshot has its trade_id; exits of entries before the period are counted apart (info);
- ``pnl_sign_contradiction`` (blocking): ``move = (exit - entry) x side`` (side of the entry, else the
  opposite of the exit's action) and ``move > 0`` with ``pnl < -`` :data:`PNL_COMMISSION_SIDES` ``x
  commission``, or ``move <= 0`` with ``pnl > 0``;
- ``exit_before_entry`` (blocking): an exit timestamped before its entry;
- ``open_position`` (info): an entry without exit in the period (still open, or closed after it);
- ``trade_without_signal`` (warning): no signal of the same symbol within ``LINK_TOLERANCE``
  (``ml.labels``, 10 s) before the entry (trades in the first 10 s of the period are not judged);
- ``ask_above_bid`` from the day checks: blocking on ``trades`` (a crossed quote in a trade snapshot makes
  that trade's market context wrong for every analysis), a warning on ticks, as the rule table says.
  Depth books are not reconstructed here (no crossed-book check on ``market_depth``).

What blocks (status "problem", one line per problem in ``Report.problems``): trading-day gaps,
ERROR-severity day-check failures (``checks.BLOCKING``), crossed quotes in trades, exits without entries,
pnl sign contradictions, exits before entries. Everything else is a warning or information on the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from mia_pipeline.reports.anomalies import _df, _views
from mia_pipeline.reports.base import Period

# -- consistency checks ---------------------------------------------------------------------------------------
EXIT_WITHOUT_ENTRY, EXIT_OF_EARLIER_ENTRY = "exit_without_entry", "exit_of_entry_before_period"
PNL_SIGN, EXIT_BEFORE_ENTRY = "pnl_sign_contradiction", "exit_before_entry"
OPEN_POSITION, TRADE_WITHOUT_SIGNAL = "open_position", "trade_without_signal"
PNL_COMMISSION_SIDES = 2        # a round trip pays the exit row's commission twice (entry and exit)
BLOCKING, WARNING, INFO = "blocking", "warning", "info"
EXAMPLES = 5                    # examples per finding on a normal page (all with comprehensive=True)


@dataclass
class Finding:
    """One consistency or day-check result with failures: ``count`` rows, ``severity`` one of
    blocking / warning / info."""

    check: str
    dataset: str
    count: int
    severity: str
    detail: str
    examples: list[str] = field(default_factory=list)
    day: str = ""


# -- consistency ------------------------------------------------------------------------------------------------

def _ids(df: pd.DataFrame, limit: int | None) -> list[str]:
    ids = [str(x) for x in df["trade_id"]]
    return ids if limit is None else ids[:limit]


def consistency(con, period: Period, examples: int | None = EXAMPLES) -> list[Finding]:
    """Cross-dataset consistency of the period (trades <-> trade_exits <-> signals), one :class:`Finding` per
    check with at least one failing row (``examples`` trade ids each; None: all)."""
    from mia_pipeline.ml.labels import LINK_TOLERANCE

    views = _views(con)
    start = f"TIMESTAMPTZ '{period.start} 00:00:00+00'"
    out: list[Finding] = []

    def add(check, ds, df, severity, detail):
        if len(df):
            out.append(Finding(check, ds, len(df), severity, detail.format(n=len(df)), _ids(df, examples)))

    if "trade_exits" in views:
        anti = "ANTI JOIN trades t USING (trade_id)" if "trades" in views else ""
        orphans = _df(con, f"SELECT x.trade_id, x.entry_timestamp FROM trade_exits x {anti} ORDER BY x.ts")
        inside = orphans["entry_timestamp"].isna() | (orphans["entry_timestamp"] >= pd.Timestamp(period.start, tz="UTC"))
        add(EXIT_WITHOUT_ENTRY, "trade_exits", orphans[inside], BLOCKING,
            "{n} exit(s) whose entry falls in the period have no trade snapshot")
        add(EXIT_OF_EARLIER_ENTRY, "trade_exits", orphans[~inside], INFO,
            "{n} exit(s) of trades entered before the period (their entry is outside it)")
        join = "LEFT JOIN trades t USING (trade_id)" if "trades" in views else ""
        entry_action = "t.action" if "trades" in views else "NULL"
        entry_ts = "coalesce(t.ts, x.entry_timestamp)" if "trades" in views else "x.entry_timestamp"
        pairs = _df(con, f"""
            SELECT x.trade_id, x.pnl, x.ts AS exit_ts, {entry_ts} AS entry_ts,
                   (x.exit_price - x.entry_price) * CASE coalesce({entry_action},
                        CASE x.action WHEN 'BUY' THEN 'SELL' WHEN 'SELL' THEN 'BUY' END)
                        WHEN 'BUY' THEN 1 WHEN 'SELL' THEN -1 END AS move,
                   coalesce(x.commission, 0) AS commission
            FROM trade_exits x {join} ORDER BY x.ts""")
        bad = pairs[((pairs["move"] > 0) & (pairs["pnl"] < -PNL_COMMISSION_SIDES * pairs["commission"]))
                    | ((pairs["move"] <= 0) & (pairs["pnl"] > 0))]
        add(PNL_SIGN, "trade_exits", bad, BLOCKING,
            "{n} exit(s) whose pnl sign contradicts (exit - entry) x side beyond the round-trip commission")
        add(EXIT_BEFORE_ENTRY, "trade_exits", pairs[pairs["exit_ts"] < pairs["entry_ts"]], BLOCKING,
            "{n} exit(s) timestamped before their entry")
    if "trades" in views:
        anti = "ANTI JOIN trade_exits x USING (trade_id)" if "trade_exits" in views else ""
        add(OPEN_POSITION, "trades", _df(con, f"SELECT t.trade_id FROM trades t {anti} ORDER BY t.ts"), INFO,
            "{n} entr(y/ies) without an exit in the period (open, or closed after it)")
        tol = int(LINK_TOLERANCE.total_seconds() * 1000)
        has_signal = (f"AND NOT EXISTS (SELECT 1 FROM signals s WHERE s.symbol = t.symbol AND s.ts <= t.ts "
                      f"AND s.ts >= t.ts - INTERVAL {tol} MILLISECOND)") if "signals" in views else ""
        lonely = _df(con, f"SELECT trade_id FROM trades t WHERE t.ts >= {start} + INTERVAL {tol} MILLISECOND "
                          f"{has_signal} ORDER BY t.ts")
        add(TRADE_WITHOUT_SIGNAL, "trades", lonely, WARNING,
            f"{{n}} trade(s) with no signal of the same symbol within {LINK_TOLERANCE.total_seconds():g} s "
            "before the entry")
    return out


def day_check_findings(store, days: list[str]) -> list[Finding]:
    """Failing per-day checks of the rule table (one finding per dataset, day and check). The
    ``trading_day_has_data`` failures are left out: they are the completeness gaps, listed once per day."""
    from mia_pipeline.quality.checks import run_day_checks
    from mia_pipeline.quality.rules import ASK_ABOVE_BID, TRADING_DAY_HAS_DATA

    out = []
    for ds, per_day in run_day_checks(store, days).items():
        for day, outcomes in per_day.items():
            for o in outcomes:
                if o.passed or o.name == TRADING_DAY_HAS_DATA:
                    continue
                blocks = o.blocking or (o.name == ASK_ABOVE_BID and ds == "trades")
                out.append(Finding(o.name, ds, int(o.failing), BLOCKING if blocks else WARNING, o.detail,
                                   [str(e) for e in o.examples], day))
    return out


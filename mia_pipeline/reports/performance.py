"""Battle Navale performance (guide §5.2): success rate by pattern, performance by confluence score,
efficiency by market regime and performance over time, computed from the stored ``trades`` (entry
snapshots) and ``trade_exits`` of a period.

**Which trades.** A trade belongs to the period when its entry snapshot is stored in the period; it is
*closed* when its exit is stored in the period too, *open* otherwise (counted, not scored: a trade
entered on the last day and closed after it is open here). Exits in the period whose entry is not
(entered before the start) are excluded and counted on the page. A duplicated ``trade_id`` keeps its
first entry and first exit.

**Per group** (overall, pattern, confluence bucket, market regime, week or month of the *entry*; with
``comprehensive`` also symbol and signal type), over closed trades, DuckDB doing the aggregation:

- success rate = wins / closed, a win being ``pnl > 0`` (net USD, both commissions), with a Wilson 95 %
  interval;
- expectancy = mean pnl, with a Student-t 95 % interval (none below 2 trades);
- profit factor = gross wins / |gross losses| (``inf`` without a losing trade, ``-`` without a decided one);
- mean R, R = (exit - entry) * side / |entry - stop_loss| (side +1 BUY, -1 SELL; no R without a stop);
- max drawdown = largest fall of the group's cumulative pnl from its running peak (starting at 0), in
  exit-time order.

Groups under 30 closed trades are flagged "small sample". Weeks run Sunday..Saturday (UTC), labelled by
their Sunday: one CME Globex week (Sunday 18:00 ET .. Friday 17:00 ET) falls in one such week.

Worked example: pnls +100, -50, +30, -80 in exit order -> success 2/4 = 0.5 (Wilson [0.15, 0.85]),
expectancy 0 (t-interval [-129, 129]), profit factor 130 / 130 = 1.0, cumulative 100, 50, 80, 0 ->
max drawdown 100 (peak 100 -> 0).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mia_pipeline.reports.base import (
    DAMAGE_ADVICE,
    Period,
    Report,
    ReportError,
    open_checked,
    unverified_report,
)
from mia_pipeline.reports.page import Page, md_table, new_figure

KIND, TITLE = "performance", "Battle Navale performance"
TIMEFRAMES = ("weekly", "monthly")
SMALL_SAMPLE = 30
Z95 = 1.959963984540054
CONFLUENCE_EDGES = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def _confluence_bucket() -> tuple[str, str]:
    """SQL (label, sort key) of the confluence bucket: [0, 0.5), [0.5, 0.6) ... [0.9, 1.0]."""
    e = CONFLUENCE_EDGES
    label = ["CASE WHEN confluence_score IS NULL THEN '(missing)'",
             f"WHEN confluence_score < {e[0]} OR confluence_score > {e[-1]} THEN '(out of range)'"]
    key = ["CASE WHEN confluence_score IS NULL THEN 99",
           f"WHEN confluence_score < {e[0]} OR confluence_score > {e[-1]} THEN 98"]
    for i, (a, b) in enumerate(zip(e, e[1:], strict=False)):
        op, close = ("<=", "]") if i == len(e) - 2 else ("<", ")")
        label.append(f"WHEN confluence_score {op} {b} THEN '[{a:.1f}, {b:.1f}{close}'")
        key.append(f"WHEN confluence_score {op} {b} THEN {i}")
    return " ".join(label) + " END", " ".join(key) + " END"


_WEEK = "strftime(CAST(entry_ts AS DATE) - CAST(dayofweek(entry_ts) AS INTEGER), '%Y-%m-%d')"
_MONTH = "strftime(entry_ts, '%Y-%m')"
# by -> (caption, SQL label, SQL sort key or None for "most trades first")
GROUPINGS: dict[str, tuple[str, str, str | None]] = {
    "overall": ("all trades", "'all'", "0"),
    "pattern": ("pattern", "coalesce(pattern, '(none)')", None),
    "confluence": ("confluence score", *_confluence_bucket()),
    "regime": ("market regime", "coalesce(market_regime, '(none)')", None),
    "weekly": ("week (Sun..Sat, from)", _WEEK, _WEEK),
    "monthly": ("month", _MONTH, _MONTH),
    "symbol": ("symbol", "coalesce(symbol, '(none)')", None),
    "signal_type": ("signal type", "coalesce(signal_type, '(none)')", None),
}

_VIEWS = """
CREATE OR REPLACE VIEW perf_entries AS
SELECT trade_id, symbol, action, price AS entry_price, ts AS entry_ts,
       "battle_navale".pattern AS pattern, "battle_navale".signal_type AS signal_type,
       "battle_navale".confluence_score AS confluence_score, "battle_navale".market_regime AS market_regime,
       risk_management.stop_loss AS stop_loss
FROM trades WHERE trade_id IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY trade_id ORDER BY ts, event_id) = 1;
CREATE OR REPLACE VIEW perf_exits AS
SELECT trade_id, exit_price, pnl, reason, ts AS exit_ts FROM {exits} WHERE trade_id IS NOT NULL AND pnl IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY trade_id ORDER BY ts, event_id) = 1;
CREATE OR REPLACE VIEW perf_trades AS
SELECT n.*, x.exit_price, x.pnl, x.reason, x.exit_ts, x.trade_id IS NOT NULL AS closed,
       CASE n.action WHEN 'BUY' THEN 1 WHEN 'SELL' THEN -1 END AS side,
       (x.exit_price - n.entry_price) * side / nullif(abs(n.entry_price - n.stop_loss), 0) AS r_multiple
FROM perf_entries n LEFT JOIN perf_exits x ON x.trade_id = n.trade_id;
"""
_NO_EXITS = ("(SELECT NULL::VARCHAR AS trade_id, NULL::DOUBLE AS exit_price, NULL::DOUBLE AS pnl, "
             "NULL::VARCHAR AS reason, NULL::TIMESTAMPTZ AS ts, NULL::VARCHAR AS event_id WHERE false)")


def prepare_views(con) -> None:
    """Create ``perf_entries``, ``perf_exits`` and ``perf_trades`` (one row per entered trade, its exit
    if any, ``closed``, ``side``, ``r_multiple``) over the period's ``trades`` / ``trade_exits`` views."""
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    if "trades" not in views:
        raise ValueError("no `trades` view: open the period with open_period() and check it holds trades")
    con.execute(_VIEWS.format(exits="trade_exits" if "trade_exits" in views else _NO_EXITS))


def performance_table(con, by: str) -> pd.DataFrame:
    """One row per group of ``by`` (a key of :data:`GROUPINGS`) with the module's metrics; creates the
    ``perf_*`` views when missing. Columns: group, trades, closed, open, wins, losses, success_rate,
    success_ci_low/high, total_pnl, expectancy, expectancy_ci_low/high, profit_factor, mean_r,
    max_drawdown, small_sample."""
    if by not in GROUPINGS:
        raise ReportError(f"unknown grouping {by!r}; use one of {', '.join(GROUPINGS)}")
    if not con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'perf_trades'").fetchall()[0][0]:
        prepare_views(con)
    _, label, key = GROUPINGS[by]
    order = "sort_key, grp" if key else "closed DESC, trades DESC, grp"
    df = con.execute(f"""
    WITH g AS (SELECT {label} AS grp, {key or 'NULL'} AS sort_key, * FROM perf_trades),
    c AS (SELECT grp, exit_ts, trade_id, sum(pnl) OVER w AS cum FROM g WHERE closed
          WINDOW w AS (PARTITION BY grp ORDER BY exit_ts, trade_id ROWS UNBOUNDED PRECEDING)),
    d AS (SELECT grp, max(greatest(peak, 0) - cum) AS max_drawdown FROM (
            SELECT grp, cum, max(cum) OVER (PARTITION BY grp ORDER BY exit_ts, trade_id
                                            ROWS UNBOUNDED PRECEDING) AS peak FROM c) GROUP BY grp),
    s AS (SELECT grp, min(sort_key) AS sort_key, count(*) AS trades, count(*) FILTER (closed) AS closed,
                 count(*) FILTER (NOT closed) AS open, count(*) FILTER (pnl > 0) AS wins,
                 count(*) FILTER (pnl < 0) AS losses, sum(pnl) AS total_pnl, avg(pnl) AS expectancy,
                 stddev_samp(pnl) AS pnl_sd, coalesce(sum(pnl) FILTER (pnl > 0), 0) AS gross_win,
                 coalesce(-sum(pnl) FILTER (pnl < 0), 0) AS gross_loss, avg(r_multiple) AS mean_r
          FROM g GROUP BY grp)
    SELECT s.*, d.max_drawdown FROM s LEFT JOIN d USING (grp) ORDER BY {order}""").df()
    return _finish(df)


def _finish(df: pd.DataFrame) -> pd.DataFrame:
    """Intervals, profit factor and the small-sample flag, vectorised over the groups."""
    from scipy.stats import t as student_t

    n = df["closed"].to_numpy(float)
    wins = df["wins"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = wins / n
        denom = 1 + Z95**2 / n
        centre = (p + Z95**2 / (2 * n)) / denom
        half = Z95 * np.sqrt(p * (1 - p) / n + Z95**2 / (4 * n**2)) / denom
        mean, sd = df["expectancy"].to_numpy(float), df["pnl_sd"].to_numpy(float)
        tq = np.where(n >= 2, student_t.ppf(0.975, np.maximum(n - 1, 1)), np.nan)
        t_half = tq * sd / np.sqrt(n)
        gw, gl = df["gross_win"].to_numpy(float), df["gross_loss"].to_numpy(float)
        pf = np.where(gl > 0, gw / gl, np.where(gw > 0, np.inf, np.nan))
    out = pd.DataFrame({
        "group": df["grp"].astype(str), "trades": df["trades"].astype(int), "closed": df["closed"].astype(int),
        "open": df["open"].astype(int), "wins": df["wins"].astype(int), "losses": df["losses"].astype(int),
        "success_rate": p, "success_ci_low": np.clip(centre - half, 0, 1), "success_ci_high": np.clip(centre + half, 0, 1),
        "total_pnl": df["total_pnl"].to_numpy(float), "expectancy": mean,
        "expectancy_ci_low": mean - t_half, "expectancy_ci_high": mean + t_half, "profit_factor": pf,
        "mean_r": df["mean_r"].to_numpy(float), "max_drawdown": df["max_drawdown"].to_numpy(float),
        "small_sample": n < SMALL_SAMPLE,
    })
    return out


def equity_curve(con) -> pd.DataFrame:
    """Closed trades in exit order: exit_ts (naive UTC), pnl, equity (cumulative pnl), drawdown (equity minus
    the running peak, which starts at 0; <= 0). Needs the ``perf_*`` views (:func:`prepare_views`)."""
    return con.execute("""
    SELECT CAST(exit_ts AS TIMESTAMP) AS exit_ts, pnl, equity, equity - greatest(max(equity) OVER w, 0) AS drawdown FROM (
        SELECT exit_ts, trade_id, pnl, sum(pnl) OVER (ORDER BY exit_ts, trade_id ROWS UNBOUNDED PRECEDING) AS equity
        FROM perf_trades WHERE closed)
    WINDOW w AS (ORDER BY exit_ts, trade_id ROWS UNBOUNDED PRECEDING) ORDER BY exit_ts, trade_id""").df()


# -- the page -----------------------------------------------------------------------------------------------

def _num(v):
    """A JSON-able figure: NaN / inf -> None, numpy scalars -> Python."""
    if v is None:
        return None
    v = v.item() if hasattr(v, "item") else v
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _pct(rate, lo, hi) -> str:
    if rate is None or not math.isfinite(rate):
        return "-"
    ci = f" [{lo * 100:.1f}, {hi * 100:.1f}]" if math.isfinite(lo) and math.isfinite(hi) else ""
    return f"{rate * 100:.1f} %{ci}"


def _usd(v, lo=math.nan, hi=math.nan) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    ci = f" [{lo:,.2f}, {hi:,.2f}]" if math.isfinite(lo) and math.isfinite(hi) else ""
    return f"{v:,.2f}{ci}"


def _ci(lo, hi, digits: int) -> str:
    return f"[{lo:,.{digits}f}, {hi:,.{digits}f}]" if math.isfinite(lo) and math.isfinite(hi) else "-"


def _display(df: pd.DataFrame, by: str) -> pd.DataFrame:
    """The table as shown: rounded numbers, plain headers, intervals as text."""
    return pd.DataFrame({
        GROUPINGS[by][0]: df["group"], "trades": df["trades"], "closed": df["closed"], "open": df["open"],
        "wins": df["wins"], "success %": (df["success_rate"] * 100).round(1),
        "success 95 % CI": [_ci(a * 100, b * 100, 1) for a, b in zip(df["success_ci_low"], df["success_ci_high"], strict=True)],
        "total pnl": df["total_pnl"].round(2), "expectancy": df["expectancy"].round(2),
        "expectancy 95 % CI": [_ci(a, b, 2) for a, b in zip(df["expectancy_ci_low"], df["expectancy_ci_high"], strict=True)],
        "profit factor": df["profit_factor"].round(2), "mean R": df["mean_r"].round(2),
        "max drawdown": df["max_drawdown"].round(2),
        "sample": np.where(df["small_sample"], "small sample", ""),
    })


def _table(page: Page, df: pd.DataFrame, by: str, caption: str) -> None:
    page.table(_display(df, by), caption=caption, digits=12)


def _plot_equity(page: Page, curve: pd.DataFrame) -> None:
    fig, (ax1, ax2) = new_figure(9.0, 5.0, nrows=2, sharex=True)
    ax1.step(curve["exit_ts"], curve["equity"], where="post", color="#1b5fbf")
    ax1.axhline(0, color="#888", lw=0.8)
    ax1.set_ylabel("cumulative pnl (USD)")
    ax2.fill_between(curve["exit_ts"], curve["drawdown"], 0, step="post", color="#b3261e", alpha=0.4)
    ax2.set_ylabel("drawdown (USD)")
    fig.autofmt_xdate()
    page.figure(fig, "Equity curve (cumulative net pnl at each exit) and drawdown from the running peak")


def _plot_intervals(page: Page, df: pd.DataFrame, value: str, lo: str, hi: str, ylabel: str, caption: str,
                    scale: float = 1.0) -> None:
    v, a, b = (df[c].to_numpy(float) * scale for c in (value, lo, hi))
    err = np.nan_to_num(np.vstack([v - a, b - v]), nan=0.0).clip(min=0)
    fig, ax = new_figure(9.0, 3.6)
    x = np.arange(len(df))
    ax.bar(x, np.nan_to_num(v), color="#7fa7dd")
    ax.errorbar(x, np.nan_to_num(v), yerr=err, fmt="none", ecolor="#1c2330", capsize=4)
    ax.set_xticks(x, df["group"], rotation=30, ha="right")
    ax.axhline(0, color="#888", lw=0.8)
    ax.set_ylabel(ylabel)
    page.figure(fig, caption)


def _no_data(period: Period, page: Page, why: str, figures: dict) -> Report:
    page.notice("warn", f"No data: {why}")
    figures.update(closed=0)
    return Report(KIND, TITLE, period, page, status="no data", summary=f"**{TITLE}**: no data — {why}",
                  figures=figures)


def build_performance_report(store, period: Period, *, timeframe: str = "weekly",
                             comprehensive: bool = False) -> Report:
    """The performance page of ``period`` (see the module docstring). Status "no data" when the period
    holds no trade entered and closed; "ok" otherwise (performance findings never block)."""
    if timeframe not in TIMEFRAMES:
        raise ReportError(f"unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAMES)}")
    page = Page(TITLE, f"{period} (UTC) — trades entered in the period")
    con, rows, damage = open_checked(store, period, datasets=("trades", "trade_exits"))
    if damage:  # figures over damaged or missing partitions would be untrue: say so, show nothing
        con.close()
        return unverified_report(KIND, TITLE, period, [f"damaged: {d}" for d in damage] + [DAMAGE_ADVICE], page)
    try:
        return _build(con, rows, period, page, timeframe, comprehensive)
    finally:
        con.close()


def _build(con, rows, period, page, timeframe, comprehensive) -> Report:
    figures: dict = {"trades": 0, "open": 0, "timeframe": timeframe}
    if "trades" not in rows:
        exits = rows.get("trade_exits", 0)
        return _no_data(period, page, "no trade entry is stored in the period" + (
            f" ({exits} exit(s) stored, whose entries are not in the period)" if exits else "")
            + ": the strategy took no trade, or nothing was collected.", figures)
    prepare_views(con)
    orphans = con.execute("SELECT count(*) FROM perf_exits x ANTI JOIN perf_entries n USING (trade_id)").fetchall()[0][0]
    overall = performance_table(con, "overall")
    o = overall.iloc[0]
    figures.update(trades=int(o["trades"]), open=int(o["open"]), orphan_exits=int(orphans))
    membership = ("A trade counts when its entry is stored in the period; it is scored when its exit is stored "
                  "in the period too (open otherwise). Success = net pnl > 0; intervals are 95 % "
                  "(Wilson for rates, Student t for expectancy).")
    if orphans:
        membership += f" {orphans} exit(s) in the period whose entry is not (entered before the start) are excluded."
    if o["closed"] == 0:
        page.notice("info", membership)
        return _no_data(period, page, f"{int(o['trades'])} trade(s) entered, none closed in the period: "
                        "nothing to score.", figures)

    by_pattern = performance_table(con, "pattern")
    scored = by_pattern[by_pattern["closed"] > 0].sort_values(["expectancy", "group"], ascending=[False, True])
    pf = float(o["profit_factor"])
    figures.update(
        closed=int(o["closed"]), wins=int(o["wins"]), success_rate=_num(o["success_rate"]),
        success_ci_low=_num(o["success_ci_low"]), success_ci_high=_num(o["success_ci_high"]),
        total_pnl=_num(o["total_pnl"]), expectancy=_num(o["expectancy"]),
        expectancy_ci_low=_num(o["expectancy_ci_low"]), expectancy_ci_high=_num(o["expectancy_ci_high"]),
        profit_factor=_num(pf), profit_factor_inf=bool(math.isinf(pf)), max_drawdown=_num(o["max_drawdown"]),
        mean_r=_num(o["mean_r"]), best_pattern=scored["group"].iloc[0], worst_pattern=scored["group"].iloc[-1],
        patterns=int(len(by_pattern)))

    page.cards({"trades": o["trades"], "closed": o["closed"], "open": o["open"],
                "success rate": _pct(o["success_rate"], o["success_ci_low"], o["success_ci_high"]),
                "expectancy (USD)": _usd(o["expectancy"], o["expectancy_ci_low"], o["expectancy_ci_high"]),
                "total pnl (USD)": _usd(o["total_pnl"]), "profit factor": "inf" if math.isinf(pf) else _usd(pf),
                "max drawdown (USD)": _usd(o["max_drawdown"]), "mean R": _usd(o["mean_r"])})
    page.notice("info", membership)
    if o["closed"] < SMALL_SAMPLE:
        page.notice("warn", f"Only {int(o['closed'])} closed trade(s): a small sample; read the intervals.")

    page.h2("Equity curve")
    _plot_equity(page, equity_curve(con))

    page.h2("Success rate by pattern")
    _table(page, by_pattern, "pattern", "By pattern (most closed trades first)")
    shown = by_pattern[by_pattern["closed"] > 0]
    _plot_intervals(page, shown, "success_rate", "success_ci_low", "success_ci_high", "success rate (%)",
                    "Success rate by pattern, 95 % Wilson interval", scale=100.0)

    page.h2("Performance by confluence score")
    by_conf = performance_table(con, "confluence")
    _table(page, by_conf, "confluence", "By confluence-score bucket")
    shown = by_conf[by_conf["closed"] > 0]
    _plot_intervals(page, shown, "expectancy", "expectancy_ci_low", "expectancy_ci_high", "expectancy (USD)",
                    "Expectancy (mean net pnl per trade) by confluence bucket, 95 % t interval")

    page.h2("Efficiency by market regime")
    _table(page, performance_table(con, "regime"), "regime", "By market regime")

    page.h2(f"Performance over time ({timeframe})")
    unit = "week (Sunday..Saturday UTC, labelled by its Sunday)" if timeframe == "weekly" else "month (UTC)"
    _table(page, performance_table(con, timeframe), timeframe, f"By {unit} of entry")

    if comprehensive:
        for by in ("symbol", "signal_type"):
            page.h2(f"By {GROUPINGS[by][0]}")
            _table(page, performance_table(con, by), by, f"By {GROUPINGS[by][0]}")
        page.h2("Every trade")
        page.table(con.execute("""
            SELECT trade_id, strftime(entry_ts, '%Y-%m-%d %H:%M:%S') AS entry, symbol, action, pattern,
                   round(confluence_score, 3) AS confluence, market_regime AS regime, entry_price, exit_price,
                   strftime(exit_ts, '%Y-%m-%d %H:%M:%S') AS exit, reason, round(pnl, 2) AS pnl,
                   round(r_multiple, 2) AS R
            FROM perf_trades ORDER BY entry_ts, trade_id""").df(), caption="All trades entered in the period",
            digits=10)

    top = by_pattern.head(5)[["group", "closed", "success_rate", "expectancy", "total_pnl"]].round(3)
    summary = (f"**{TITLE}** {period}: {figures['closed']} closed trade(s) of {figures['trades']}, success "
               f"{_pct(o['success_rate'], o['success_ci_low'], o['success_ci_high'])}, expectancy "
               f"{_usd(o['expectancy'])} USD, total {_usd(o['total_pnl'])} USD, max drawdown "
               f"{_usd(o['max_drawdown'])} USD.\n\n" + md_table(top.rename(columns={"group": "pattern"})))
    return Report(KIND, TITLE, period, page, status="ok", summary=summary, figures=figures)

"""Anomaly rules of the data quality report (:mod:`mia_pipeline.reports.quality`): each rule's name and
parameters are written once here and shown on the page beside what it found.

**Anomalies** (warnings: they never block; each row names the rule that found it). DuckDB window
functions over the period's views, one query per rule; only candidate rows reach Python:

- ``price_spike``: robust z of a bar's 1-bar close log return > :data:`PRICE_SPIKE_Z` MAD-sigmas, per
  (source, symbol, timeframe); median and MAD over a centred window of ``2 x`` :data:`PRICE_SPIKE_WINDOW`
  + 1 returns (intraday volatility varies ~8x, a period-wide scale alone would flag every US open), the
  sigma floored at the series' period-wide MAD-sigma (a market pinned at one level has a tiny local MAD:
  a 2-tick move there is not a spike); at least :data:`PRICE_SPIKE_MIN_RETURNS` returns in the window;
  MAD = 0 (quantised prices, most returns equal) falls back to the mean absolute deviation; returns
  across more than :data:`TIME_GAP_BARS` timeframes (a gap, the overnight close) are not compared. A bad
  bar usually shows twice (jump in, jump out).
- ``time_gap``: inside one UTC day's recorded series, consecutive bars of one (source, symbol, timeframe)
  missing more than :data:`TIME_GAP_BARS` x the timeframe of CME *open* time, or consecutive ticks of one
  (source, symbol) more than :data:`TICK_GAP_S` s of open time apart (the daily halt, weekends and
  holidays are not gaps; a wholly missing day is a completeness gap instead).
- ``stale_quote``: ticks of one (source, symbol) with bid and ask unchanged over >= :data:`STALE_MIN_TICKS`
  consecutive ticks spanning >= :data:`STALE_MIN_S` s of CME open time (from the run's first tick to the
  next quote change, or to the day's last tick).
- ``trade_price_outlier``: a trade price outside ``[bid - k x spread, ask + k x spread]`` of its own
  ``market_context`` (k = :data:`TRADE_OUTLIER_SPREADS`, spread = ask - bid > 0).
- ``volume_outlier``: a bar volume z-score (mean / standard deviation per (source, symbol, timeframe) over
  the period, >= 30 bars) > :data:`VOLUME_Z`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# -- anomaly rules (names and parameters: written once, shown on the page) --------------------------------------
PRICE_SPIKE, TIME_GAP, STALE_QUOTE = "price_spike", "time_gap", "stale_quote"
TRADE_PRICE_OUTLIER, VOLUME_OUTLIER = "trade_price_outlier", "volume_outlier"
PRICE_SPIKE_Z = 8.0
PRICE_SPIKE_WINDOW = 60
PRICE_SPIKE_MIN_RETURNS = 20
MAD_TO_SIGMA = 1.4826
MEAN_AD_TO_SIGMA = 1.2533       # when over half the returns equal the median (MAD = 0)
TIME_GAP_BARS = 5
TICK_GAP_S = 300
STALE_MIN_TICKS = 100
STALE_MIN_S = 120
TRADE_OUTLIER_SPREADS = 10
VOLUME_Z = 6.0
VOLUME_MIN_BARS = 30
ANOMALY_RULES = {
    PRICE_SPIKE: ("market_bars", f"|robust z| of the 1-bar close log return > {PRICE_SPIKE_Z:g} MAD-sigmas per "
                  f"(source, symbol, timeframe), rolling window of +/-{PRICE_SPIKE_WINDOW} returns "
                  f"(>= {PRICE_SPIKE_MIN_RETURNS}), sigma >= the series' period-wide MAD-sigma, bars <= {TIME_GAP_BARS} "
                  "timeframes apart"),
    TIME_GAP: ("market_bars, market_ticks", f"> {TIME_GAP_BARS} x timeframe (bars) or > {TICK_GAP_S} s (ticks) of "
               "CME open time without a row, inside one day's recorded series"),
    STALE_QUOTE: ("market_ticks", f"bid and ask unchanged over >= {STALE_MIN_TICKS} consecutive ticks spanning "
                  f">= {STALE_MIN_S} s of CME open time"),
    TRADE_PRICE_OUTLIER: ("trades", f"price outside [bid - {TRADE_OUTLIER_SPREADS} spreads, ask + "
                          f"{TRADE_OUTLIER_SPREADS} spreads] of its market_context (spread = ask - bid > 0)"),
    VOLUME_OUTLIER: ("market_bars", f"volume z-score > {VOLUME_Z:g} per (source, symbol, timeframe) over the period "
                     f"(>= {VOLUME_MIN_BARS} bars)"),
}

def _df(con, sql: str) -> pd.DataFrame:
    return con.sql(sql).to_arrow_table().to_pandas()


def _views(con) -> set[str]:
    return {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}


def _timeframe_ms_sql(column: str = "timeframe") -> str:
    from mia_pipeline.schemas.contract import TIMEFRAMES

    unit = {"s": 1_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
    cases = []
    for tf in TIMEFRAMES:
        n = int("".join(ch for ch in tf if ch.isdigit()))
        cases.append(f"WHEN '{tf}' THEN {n * unit[tf.lstrip('0123456789')]}")
    return f"(CASE {column} {' '.join(cases)} END)"


def open_ms_between(a_ms, b_ms) -> np.ndarray:
    """CME Globex open milliseconds inside ``[a, b)`` for each pair (vectorised over a cumulative open-time
    function of the calendar's open intervals)."""
    from mia_pipeline.synthetic.schedule import open_intervals

    a, b = np.asarray(a_ms, dtype=np.int64), np.asarray(b_ms, dtype=np.int64)
    if a.size == 0:
        return np.zeros(0, dtype=np.int64)
    ivs = open_intervals(int(min(a.min(), b.min())), int(max(a.max(), b.max())) + 1)
    if not ivs:
        return np.zeros(a.shape, dtype=np.int64)
    opens = np.array([i.open_ms for i in ivs], dtype=np.int64)
    closes = np.array([i.close_ms for i in ivs], dtype=np.int64)
    cum = np.concatenate([[0], np.cumsum(closes - opens)])

    def before(t):  # open ms in (-inf, t)
        k = np.searchsorted(opens, t, side="right") - 1
        kk = np.clip(k, 0, None)
        inside = np.clip(t - opens[kk], 0, closes[kk] - opens[kk])
        return np.where(k >= 0, cum[kk] + inside, 0)

    return np.maximum(before(b) - before(a), 0)


# -- anomalies --------------------------------------------------------------------------------------------------

ANOMALY_COLUMNS = ["rule", "dataset", "source", "symbol", "timeframe", "day", "ts", "value", "detail"]


def _price_spikes(con) -> pd.DataFrame:
    tf = _timeframe_ms_sql()
    w = (f"PARTITION BY source, symbol, timeframe ORDER BY ts ROWS BETWEEN {PRICE_SPIKE_WINDOW} PRECEDING "
         f"AND {PRICE_SPIKE_WINDOW} FOLLOWING")
    g = "PARTITION BY source, symbol, timeframe"
    df = _df(con, f"""
        WITH b AS (SELECT source, symbol, timeframe, day, ts, close, {tf} AS tf_ms,
                          lag(ts) OVER s AS prev_ts, lag(close) OVER s AS prev_close
                   FROM market_bars WHERE close > 0
                   WINDOW s AS (PARTITION BY source, symbol, timeframe ORDER BY ts)),
        a AS (SELECT *, ln(close / prev_close) AS r FROM b
              WHERE prev_ts IS NOT NULL AND epoch_ms(ts) - epoch_ms(prev_ts) <= {TIME_GAP_BARS} * tf_ms),
        m AS (SELECT *, median(r) OVER w AS med, count(r) OVER w AS n, median(r) OVER g AS gmed
              FROM a WINDOW w AS ({w}), g AS ({g})),
        d AS (SELECT *, median(abs(r - med)) OVER w AS mad, avg(abs(r - med)) OVER w AS mean_ad,
                     median(abs(r - gmed)) OVER g AS gmad, avg(abs(r - gmed)) OVER g AS gmean_ad
              FROM m WINDOW w AS ({w}), g AS ({g})),
        s AS (SELECT *, greatest(CASE WHEN mad > 0 THEN {MAD_TO_SIGMA} * mad ELSE {MEAN_AD_TO_SIGMA} * mean_ad END,
                                 CASE WHEN gmad > 0 THEN {MAD_TO_SIGMA} * gmad
                                      ELSE {MEAN_AD_TO_SIGMA} * gmean_ad END) AS sigma
              FROM d WHERE n >= {PRICE_SPIKE_MIN_RETURNS}),
        z AS (SELECT *, (r - med) / sigma AS z FROM s WHERE sigma > 0)
        SELECT source, symbol, timeframe, day, ts, z AS value, prev_close, close FROM z
        WHERE abs(z) > {PRICE_SPIKE_Z} ORDER BY abs(z) DESC""")
    df["detail"] = [f"close {p:g} -> {c:g} ({v:+.1f} sigma)" for p, c, v in
                    zip(df["prev_close"], df["close"], df["value"], strict=True)]
    return df.assign(rule=PRICE_SPIKE, dataset="market_bars")


def _time_gaps(con, views: set[str]) -> pd.DataFrame:
    parts = []
    if "market_bars" in views:
        g = _df(con, f"""
            SELECT source, symbol, timeframe, day, ts, tf_ms, epoch_ms(prev_ts) AS a, epoch_ms(ts) AS b FROM (
              SELECT source, symbol, timeframe, day, ts, {_timeframe_ms_sql()} AS tf_ms,
                     lag(ts) OVER (PARTITION BY source, symbol, timeframe, day ORDER BY ts) AS prev_ts
              FROM market_bars)
            WHERE prev_ts IS NOT NULL AND epoch_ms(ts) - epoch_ms(prev_ts) - tf_ms > {TIME_GAP_BARS} * tf_ms""")
        g["missing"] = open_ms_between(g["a"] + g["tf_ms"], g["b"])
        parts.append(g[g["missing"] > TIME_GAP_BARS * g["tf_ms"]].assign(dataset="market_bars"))
    if "market_ticks" in views:
        g = _df(con, f"""
            SELECT source, symbol, NULL::VARCHAR AS timeframe, day, ts, epoch_ms(prev_ts) AS a, epoch_ms(ts) AS b
            FROM (SELECT source, symbol, day, ts,
                         lag(ts) OVER (PARTITION BY source, symbol, day ORDER BY ts, seq) AS prev_ts FROM market_ticks)
            WHERE prev_ts IS NOT NULL AND epoch_ms(ts) - epoch_ms(prev_ts) > {TICK_GAP_S * 1000}""")
        g["missing"] = open_ms_between(g["a"], g["b"])
        parts.append(g[g["missing"] > TICK_GAP_S * 1000].assign(dataset="market_ticks"))
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["missing", "a", "dataset"])
    df["value"] = df["missing"] / 60_000.0
    df["detail"] = [f"no row for {v:.1f} open minutes after {pd.Timestamp(a, unit='ms', tz='UTC'):%H:%M:%S}"
                    for v, a in zip(df["value"], df["a"], strict=True)]
    return df.sort_values("value", ascending=False).assign(rule=TIME_GAP)


def _stale_quotes(con) -> pd.DataFrame:
    # one sorted pass marks the ticks where the quote changes; a second pass over those change points only
    # measures each run (ticks up to the next change, time up to the next change or the day's last tick)
    df = _df(con, f"""
        WITH t AS (SELECT source, symbol, day, ts, bid, ask, row_number() OVER w AS rn,
                          (bid IS DISTINCT FROM lag(bid) OVER w OR ask IS DISTINCT FROM lag(ask) OVER w) AS chg,
                          count(*) OVER p AS n_day, max(ts) OVER p AS last_ts
                   FROM market_ticks WHERE bid IS NOT NULL AND ask IS NOT NULL
                   WINDOW w AS (PARTITION BY source, symbol, day ORDER BY ts, seq),
                          p AS (PARTITION BY source, symbol, day)),
        c AS (SELECT source, symbol, day, ts, bid, ask,
                     coalesce(lead(rn) OVER v, n_day + 1) - rn AS n, coalesce(lead(ts) OVER v, last_ts) AS end_ts
              FROM t WHERE chg WINDOW v AS (PARTITION BY source, symbol, day ORDER BY rn))
        SELECT source, symbol, NULL::VARCHAR AS timeframe, day, ts, n, epoch_ms(ts) AS a, epoch_ms(end_ts) AS b,
               bid, ask
        FROM c WHERE n >= {STALE_MIN_TICKS} AND epoch_ms(end_ts) - epoch_ms(ts) >= {STALE_MIN_S * 1000}""")
    df["open_s"] = open_ms_between(df["a"], df["b"]) / 1000.0
    df = df[df["open_s"] >= STALE_MIN_S].copy()
    df["value"] = df["open_s"]
    df["detail"] = [f"bid/ask {b:g}/{a:g} unchanged over {n} ticks, {s:.0f} s open"
                    for b, a, n, s in zip(df["bid"], df["ask"], df["n"], df["open_s"], strict=True)]
    return df.sort_values("value", ascending=False).assign(rule=STALE_QUOTE, dataset="market_ticks")


def _trade_outliers(con) -> pd.DataFrame:
    k = TRADE_OUTLIER_SPREADS
    df = _df(con, f"""
        SELECT source, symbol, NULL::VARCHAR AS timeframe, day, ts, trade_id, price,
               market_context.bid AS bid, market_context.ask AS ask,
               CASE WHEN price < market_context.bid THEN (market_context.bid - price)
                    ELSE (price - market_context.ask) END / (market_context.ask - market_context.bid) AS value
        FROM trades WHERE market_context.ask > market_context.bid
          AND (price < market_context.bid - {k} * (market_context.ask - market_context.bid)
               OR price > market_context.ask + {k} * (market_context.ask - market_context.bid))
        ORDER BY value DESC""")
    df["detail"] = [f"{t}: price {p:g} vs bid/ask {b:g}/{a:g} ({v:.0f} spreads away)"
                    for t, p, b, a, v in zip(df["trade_id"], df["price"], df["bid"], df["ask"], df["value"], strict=True)]
    return df.assign(rule=TRADE_PRICE_OUTLIER, dataset="trades")


def _volume_outliers(con) -> pd.DataFrame:
    df = _df(con, f"""
        SELECT source, symbol, timeframe, day, ts, volume, (volume - mu) / sd AS value, mu FROM (
          SELECT *, avg(volume) OVER p AS mu, stddev_samp(volume) OVER p AS sd, count(volume) OVER p AS n
          FROM market_bars WINDOW p AS (PARTITION BY source, symbol, timeframe))
        WHERE sd > 0 AND n >= {VOLUME_MIN_BARS} AND (volume - mu) / sd > {VOLUME_Z} ORDER BY value DESC""")
    df["detail"] = [f"volume {v:g} (mean {m:.1f}, z {z:.1f})"
                    for v, m, z in zip(df["volume"], df["mu"], df["value"], strict=True)]
    return df.assign(rule=VOLUME_OUTLIER, dataset="market_bars")


def find_anomalies(con) -> pd.DataFrame:
    """Every anomaly of the period's views (see the module docstring), one row each:
    ``rule, dataset, source, symbol, timeframe, day, ts, value, detail`` (most severe first per rule)."""
    views = _views(con)
    parts = []
    if "market_bars" in views:
        parts += [_price_spikes(con), _volume_outliers(con)]
    if views & {"market_bars", "market_ticks"}:
        parts.append(_time_gaps(con, views))
    if "market_ticks" in views:
        parts.append(_stale_quotes(con))
    if "trades" in views:
        parts.append(_trade_outliers(con))
    parts = [p.reindex(columns=ANOMALY_COLUMNS) for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=ANOMALY_COLUMNS)
    out = pd.concat(parts, ignore_index=True)
    out["day"] = pd.to_datetime(out["day"]).dt.strftime("%Y-%m-%d")
    return out


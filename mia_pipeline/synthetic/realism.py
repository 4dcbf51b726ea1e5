"""Stylized-facts battery (``realism.md``): measure ES/NQ sessions, compare with targets, report.

``measure(sessions)`` reduces each session (a dict of tables; only ``l1`` is read) to 1-minute and
1-second series and pools them; ``evaluate`` turns the measurements into ``FactResult`` rows;
``report`` formats them. Sessions should be full Globex days (18:00 -> 17:00 ET) for the intraday,
overnight and daily-volume facts: ``battery_sessions`` makes such days, ``gaussian_walk_sessions``
the same days from a Gaussian random walk (the negative control, which must fail).

Returns are log L1 mid-price returns (the tail facts are also measured on 1-min trade-price returns,
``*_trade``); "deseasonalised" divides each 1-min return by the pooled mean |return| of its 5-minute
ET time-of-day bucket. ``max_abs_move_sigma`` is the largest deseasonalised 1-min move (ES or NQ) in
units of the pooled deseasonalised SD: beyond 15 is a news scenario's signature, not a quiet day's.
Lead-lag (1-s mid returns, winsorised, cross-correlation over lags -5..5 s): ``lead_lag_lag0_share``
is lag 0's share of the |cross-correlation| mass (index futures move mostly within the same second:
>= 0.5), ``lead_lag_nq_minus_es_share`` the NQ-ahead minus the ES-ahead share of it (the leader
detected: > 0 for NQ, < 0 for ES, ~0 balanced); realism.md's "peaks at a positive lag for the
leader" holds among the non-zero lags, the peak itself is at lag 0. ``deseasonalised_moves``
returns the 1-min moves minute by minute (with their ET time), for asking where the largest ones
fall; ``summarise`` reduces sessions once for both.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import NamedTuple

import numpy as np

from mia_pipeline.synthetic.columns import Table, col, rows_by_value
from mia_pipeline.synthetic.config import GenConfig
from mia_pipeline.synthetic.generator import MIA_IA_DataGenerator
from mia_pipeline.synthetic.model import DEFAULT_MODEL, GAUSSIAN_WALK, MarketModel
from mia_pipeline.synthetic.schedule import ET, et_hour, globex_status
from mia_pipeline.synthetic.seeding import session_seed

MAX_LAG = 30
LAG0_SHARE_MIN = 0.5  # lag 0's share of the |cross-correlation| mass of 1-s returns over lags -5..5 s
LEAD_SHARE_MARGIN = 0.02  # leader's ahead share minus the follower's (of the same mass)


class FactResult(NamedTuple):
    fact: str
    value: float
    target: str
    passed: bool


def _last_of(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return starts, np.r_[starts[1:], len(keys)] - 1


def _returns(mid: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Log returns between consecutive keys (NaN across gaps such as the daily halt)."""
    r = np.diff(np.log(mid), prepend=np.nan)
    r[np.r_[True, np.diff(keys) != 1]] = np.nan
    return r


def _session_series(l1: Table, es: str, nq: str) -> dict:
    rows = rows_by_value(l1)
    ts = col(l1, "ts", np.int64)
    bid, ask = col(l1, "bid", np.float64), col(l1, "ask", np.float64)
    last_size, last_price = col(l1, "last_size", np.int64), col(l1, "last_price", np.float64)
    bid_size = col(l1, "bid_size", np.int64)
    out: dict = {"tick_spread": {}, "top_size": {}}
    for name, sym in (("es", es), ("nq", nq)):
        i = rows[sym]
        t, mid, size = ts[i], (bid[i] + ask[i]) / 2.0, last_size[i]
        minute = t // 60_000
        starts, last = _last_of(minute)
        out[f"r_{name}"] = _returns(mid[last], minute[starts])
        out["minute"] = minute[starts]
        # trade price: ``last_price`` repeats the last print, so the minute's last row holds its last trade
        out[f"rt_{name}"] = _returns(last_price[i][last], minute[starts])
        out[f"dp_{name}"] = np.diff(mid[last], prepend=np.nan)
        out[f"dp_{name}"][np.isnan(out[f"r_{name}"])] = np.nan
        out[f"v_{name}"] = np.add.reduceat(size, starts).astype(np.float64)
        out["hour"] = et_hour(minute[starts] * 60_000)
        sec = t // 1000
        s_starts, s_last = _last_of(sec)
        out[f"r1s_{name}"] = _returns(mid[s_last], sec[s_starts])
        traded = size > 0
        if traded.any():
            tsec = sec[traded]
            t_starts, t_last = _last_of(tsec)
            out[f"trade_r1s_{name}"] = _returns(last_price[i][traded][t_last], tsec[t_starts])
        out["tick_spread"][name] = np.rint((ask[i] - bid[i]) / 0.25)
        out["top_size"][name] = bid_size[i]
        out[f"volume_{name}"] = float(size.sum())
        out["open_minutes"] = len(starts)
    return out


def _acf(series: list[np.ndarray], lags: range, mean: float, var: float) -> np.ndarray:
    out = []
    for k in lags:
        num, cnt = 0.0, 0
        for x in series:
            if len(x) > k:
                p = (x[:-k] - mean) * (x[k:] - mean)
                num += np.nansum(p)
                cnt += np.count_nonzero(~np.isnan(p))
        out.append(num / cnt / var if cnt else np.nan)
    return np.array(out)


def _kurtosis(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    if len(x) < 10:
        return float("nan")
    z = x - x.mean()
    return float(np.mean(z**4) / np.mean(z**2) ** 2 - 3.0)


def _hill(x: np.ndarray, top: float = 0.01) -> float:
    a = np.sort(np.abs(x[~np.isnan(x)]))[::-1]
    k = max(int(len(a) * top), 10)
    if len(a) <= k or a[k] <= 0:
        return float("nan")
    return float(1.0 / np.mean(np.log(a[:k] / a[k])))


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    ok = ~(np.isnan(x) | np.isnan(y))
    return float(np.corrcoef(x[ok], y[ok])[0, 1]) if ok.sum() > 2 else float("nan")


def _winsorise(x: np.ndarray, k: float = 6.0) -> np.ndarray:
    """Clip at k robust sigmas (1.4826 MAD, or the RMS when most 1-s returns are zero) so a few
    jumps do not decide a correlation."""
    ok = x[~np.isnan(x)]
    if len(ok) == 0:
        return x
    scale = 1.4826 * np.median(np.abs(ok - np.median(ok))) or np.sqrt(np.mean(ok**2))
    return np.clip(x, -k * scale, k * scale)


def _window_mean(values: np.ndarray, hour: np.ndarray, lo: float, hi: float) -> float:
    sel = (hour >= lo) & (hour < hi) if lo < hi else (hour >= lo) | (hour < hi)
    return float(np.nanmean(values[sel])) if sel.any() else float("nan")


def summarise(sessions: Iterable[dict[str, Table]], *, es: str = "ES", nq: str = "NQ") -> list[dict]:
    """Each session (a dict with an ``l1`` table) reduced to the 1-min and 1-s series the battery
    reads: ``measure`` and ``deseasonalised_moves`` accept these as ``summaries=`` so one pass over
    generated sessions serves both (a 23-h session's L1 is ~60 MB, its summary ~13 MB)."""
    return [_session_series(s["l1"], es, nq) for s in sessions]


def _summaries(sessions, summaries, es: str, nq: str, who: str) -> list[dict]:
    per = list(summaries) if summaries is not None else summarise(sessions or (), es=es, nq=nq)
    if not per:
        raise ValueError(f"{who} needs at least one session")
    return per


_SERIES = {"es": "r_es", "nq": "r_nq", "trade_es": "rt_es", "trade_nq": "rt_nq"}


def _concat(per: list[dict]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in per])
            for k in ("r_es", "r_nq", "rt_es", "rt_nq", "dp_es", "v_es", "v_nq", "hour", "minute")}


def _bucket(hour: np.ndarray) -> np.ndarray:
    return np.floor(np.nan_to_num(hour) * 12).astype(int)  # 5-minute ET time-of-day buckets


def _seasonal_profile(series: np.ndarray, bucket: np.ndarray) -> np.ndarray:
    """Mean |return| per 5-minute bucket (288 values)."""
    absr = np.abs(series)
    return np.bincount(bucket, np.nan_to_num(absr), 288) / np.maximum(np.bincount(bucket, ~np.isnan(absr), 288), 1)


def _deseasonalise(series: np.ndarray, bucket: np.ndarray, prof: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return series / np.where(prof[bucket] > 0, prof[bucket], np.nan)


def _pooled(per: list[dict]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Concatenate the sessions' 1-min series and deseasonalise the returns: each 1-min return divided
    by the pooled mean |return| of its 5-minute ET time-of-day bucket (mid ``es``/``nq``, trade prices
    ``trade_es``/``trade_nq``)."""
    cat = _concat(per)
    bucket = _bucket(cat["hour"])
    ds = {name: _deseasonalise(cat[key], bucket, _seasonal_profile(cat[key], bucket)) for name, key in _SERIES.items()}
    return cat, ds


def deseasonalised_moves(sessions: Iterable[dict[str, Table]] | None = None, *,
                         reference: Iterable[dict[str, Table]] | None = None, summaries: list[dict] | None = None,
                         reference_summaries: list[dict] | None = None, es: str = "ES", nq: str = "NQ"
                         ) -> dict[str, np.ndarray]:
    """The deseasonalised 1-min mid moves that ``measure`` judges, in sigmas: ``es`` and ``nq`` (each
    divided by its pooled SD, so ``max_abs_move_sigma`` is the largest ``|es|`` or ``|nq|``), with the
    minute's ``ts`` (epoch ms of the minute's start), ``et_hour`` and ``session`` index. NaN where a
    minute has no previous minute (session start, after the daily halt).

    With ``reference`` sessions (e.g. `normal` days), the time-of-day profile and the SD are those of
    the reference: ``sessions`` are then measured in the units of the reference days. ``summaries`` /
    ``reference_summaries`` (from ``summarise``) may replace the sessions."""
    per = _summaries(sessions, summaries, es, nq, "deseasonalised_moves()")
    cat, ds = _pooled(per)
    if reference is not None or reference_summaries is not None:
        ref_per = _summaries(reference, reference_summaries, es, nq, "deseasonalised_moves() reference")
        ref_cat, ref_ds = _pooled(ref_per)
        ref_bucket, bucket = _bucket(ref_cat["hour"]), _bucket(cat["hour"])
        ds = {k: _deseasonalise(cat[_SERIES[k]], bucket, _seasonal_profile(ref_cat[_SERIES[k]], ref_bucket)) for k in ("es", "nq")}
        sd = {k: np.nanstd(ref_ds[k]) for k in ("es", "nq")}
    else:
        sd = {k: np.nanstd(ds[k]) for k in ("es", "nq")}
    return {"ts": cat["minute"] * 60_000, "et_hour": cat["hour"],
            "session": np.repeat(np.arange(len(per)), [len(p["r_es"]) for p in per]),
            **{k: ds[k] / sd[k] for k in ("es", "nq")}}


def measure(sessions: Iterable[dict[str, Table]] | None = None, *, summaries: list[dict] | None = None,
            es: str = "ES", nq: str = "NQ") -> dict[str, float]:
    """Measure the stylized facts over sessions (dicts with at least an ``l1`` DataFrame/Arrow table),
    or over their ``summaries`` (from ``summarise``)."""
    per = _summaries(sessions, summaries, es, nq, "measure()")
    cat, ds = _pooled(per)
    hour = cat["hour"]
    # per-session deseasonalised series (for ACFs that must not pair minutes across sessions)
    bounds = np.cumsum([0] + [len(p["r_es"]) for p in per])
    parts = [ds["es"][a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    x = ds["es"]
    mu, var = np.nanmean(x), np.nanvar(x)
    acf_r = _acf(parts, range(1, 11), mu, var)
    abs_parts = [np.abs(p) for p in parts]
    amu, avar = np.nanmean(np.abs(x)), np.nanvar(np.abs(x))
    acf_abs = _acf(abs_parts, range(1, MAX_LAG + 1), amu, avar)
    lags = np.arange(1, MAX_LAG + 1)
    good = acf_abs > 0
    slope = np.polyfit(np.log(lags[good]), np.log(acf_abs[good]), 1)[0] if good.sum() > 5 else np.nan
    hourly = []
    for p in parts:  # 60-min sums of deseasonalised 1-min returns, complete hours only
        n = len(p) // 60 * 60
        blocks = p[:n].reshape(-1, 60)
        hourly.append(blocks[~np.isnan(blocks).any(axis=1)].sum(axis=1))
    kurt1, kurt60 = _kurtosis(x), _kurtosis(np.concatenate(hourly) if hourly else np.zeros(0))
    absr_es = np.abs(cat["r_es"])
    day_rms = np.sqrt(np.nanmean(cat["r_es"] ** 2))
    rms = lambda lo, hi: np.sqrt(_window_mean(cat["r_es"] ** 2, hour, lo, hi))  # noqa: E731
    u_vol = (_window_mean(absr_es, hour, 9.5, 10.0) + _window_mean(absr_es, hour, 15.5, 16.0)) / 2 / \
        _window_mean(absr_es, hour, 11.5, 14.0)
    u_volume = (_window_mean(cat["v_es"], hour, 9.5, 10.0) + _window_mean(cat["v_es"], hour, 15.5, 16.0)) / 2 / \
        _window_mean(cat["v_es"], hour, 11.5, 14.0)
    r1 = {k: np.concatenate([_winsorise(p[f"r1s_{k}"]) for p in per]) for k in ("es", "nq")}
    xcorr = {k: _corr(r1["nq"][: len(r1["nq"]) - k] if k >= 0 else r1["nq"][-k:],
                      r1["es"][k:] if k >= 0 else r1["es"][: len(r1["es"]) + k]) for k in range(-5, 6)}
    spread = {k: np.concatenate([p["tick_spread"][k] for p in per]) for k in ("es", "nq")}
    days = np.array([p["open_minutes"] for p in per]) / (23 * 60)
    trade_r = [p["trade_r1s_es"] for p in per if "trade_r1s_es" in p]
    tr = np.concatenate(trade_r) if trade_r else np.zeros(0)
    sd = {k: float(np.nanstd(v)) for k, v in ds.items()}
    return {
        "sessions": len(per),
        "excess_kurtosis_1m": kurt1,
        "excess_kurtosis_1m_nq": _kurtosis(ds["nq"]),
        "excess_kurtosis_1m_trade": _kurtosis(ds["trade_es"]),
        "excess_kurtosis_1m_trade_nq": _kurtosis(ds["trade_nq"]),
        "max_abs_move_sigma": float(max(np.nanmax(np.abs(ds[k])) / sd[k] for k in ("es", "nq"))),
        "hill_tail_index": _hill(x),
        "acf_r_lag1_abs": abs(float(acf_r[0])),
        "acf_r_lag2_10_max_abs": float(np.nanmax(np.abs(acf_r[1:]))),
        "acf_absr_lag1": float(acf_abs[0]),
        "acf_absr_lag30": float(acf_abs[29]),
        "acf_absr_power_exponent": float(-slope),
        "kurtosis_60m_over_1m": kurt60 / kurt1 if kurt1 > 0 else float("inf"),
        "u_shape_volatility": u_vol,
        "u_shape_volume": u_volume,
        "us_open_vol_ratio": rms(9.5, 10.0) / day_rms,
        "overnight_vol_ratio": rms(19.0, 2.0) / day_rms,
        "volume_volatility_corr": _corr(cat["v_es"], absr_es),
        "es_nq_corr_1m": _corr(ds["es"], ds["nq"]),
        "nq_es_vol_ratio": float(np.nanstd(cat["r_nq"]) / np.nanstd(cat["r_es"])),
        "lead_lag_peak_s": float(max(xcorr, key=lambda k: xcorr[k])),
        **_lead_lag_shares(xcorr),
        "trade_price_acf1_1s": _corr(tr[:-1], tr[1:]) if len(tr) > 2 else float("nan"),
        "es_spread_1tick_share": float(np.mean(spread["es"] == 1)),
        "nq_spread_mean_ticks": float(np.mean(spread["nq"])),
        "nq_spread_1_3_share": float(np.mean((spread["nq"] >= 1) & (spread["nq"] <= 3))),
        "min_spread_ticks": float(min(spread["es"].min(), spread["nq"].min())),
        "es_top_size_median": float(np.median(np.concatenate([p["top_size"]["es"] for p in per]))),
        "nq_top_size_median": float(np.median(np.concatenate([p["top_size"]["nq"] for p in per]))),
        "es_daily_volume": float(np.sum([p["volume_es"] for p in per]) / days.sum()),
        "nq_daily_volume": float(np.sum([p["volume_nq"] for p in per]) / days.sum()),
        "es_sigma_1min_points": float(np.nanstd(cat["dp_es"])),
    }


def _lead_lag_shares(xcorr: dict[int, float]) -> dict[str, float]:
    """Shares of the |cross-correlation| mass of 1-s mid returns over lags -5..5 s (``xcorr[k]`` =
    corr(NQ(t), ES(t + k)): k > 0 is NQ ahead): at lag 0, and NQ-ahead minus ES-ahead."""
    mass = sum(abs(v) for v in xcorr.values())
    if not mass > 0:
        return {"lead_lag_lag0_share": float("nan"), "lead_lag_nq_minus_es_share": float("nan")}
    ahead = sum(abs(v) for k, v in xcorr.items() if k > 0) - sum(abs(v) for k, v in xcorr.items() if k < 0)
    return {"lead_lag_lag0_share": abs(xcorr[0]) / mass, "lead_lag_nq_minus_es_share": ahead / mass}


# fact -> (target text, predicate); leadership-dependent targets are filled in by ``evaluate``.
TARGETS: dict[str, tuple[str, object]] = {
    "excess_kurtosis_1m": ("3..100", lambda v: 3 <= v <= 100),
    "excess_kurtosis_1m_nq": ("3..100", lambda v: 3 <= v <= 100),
    "excess_kurtosis_1m_trade": ("3..100", lambda v: 3 <= v <= 100),
    "max_abs_move_sigma": ("<= 15 (normal)", lambda v: v <= 15),
    "hill_tail_index": ("2..5", lambda v: 2 <= v <= 5),
    "acf_r_lag1_abs": ("<= 0.10", lambda v: v <= 0.10),
    "acf_r_lag2_10_max_abs": ("<= 0.05", lambda v: v <= 0.05),
    "acf_absr_lag1": (">= 0.10", lambda v: v >= 0.10),
    "acf_absr_lag30": ("> 0.02", lambda v: v > 0.02),
    "acf_absr_power_exponent": ("0.1..0.6", lambda v: 0.1 <= v <= 0.6),
    "kurtosis_60m_over_1m": ("<= 0.5", lambda v: v <= 0.5),
    "u_shape_volatility": (">= 1.5", lambda v: v >= 1.5),
    "u_shape_volume": (">= 1.5", lambda v: v >= 1.5),
    "us_open_vol_ratio": (">= 2.0", lambda v: v >= 2.0),
    "overnight_vol_ratio": ("0.25..0.6", lambda v: 0.25 <= v <= 0.6),
    "volume_volatility_corr": (">= 0.3", lambda v: v >= 0.3),
    "es_nq_corr_1m": ("0.80..0.97", lambda v: 0.80 <= v <= 0.97),
    "nq_es_vol_ratio": ("1.1..1.7", lambda v: 1.1 <= v <= 1.7),
    "trade_price_acf1_1s": ("< 0", lambda v: v < 0),
    "es_spread_1tick_share": (">= 0.90", lambda v: v >= 0.90),
    "nq_spread_mean_ticks": ("1..2.5", lambda v: 1 <= v <= 2.5),
    "nq_spread_1_3_share": (">= 0.99", lambda v: v >= 0.99),
    "min_spread_ticks": (">= 1", lambda v: v >= 1),
    "es_top_size_median": ("100..999", lambda v: 100 <= v < 1000),
    "nq_top_size_median": ("10..99", lambda v: 10 <= v < 100),
    "es_daily_volume": ("1.5M..2.0M", lambda v: 1.5e6 <= v <= 2.0e6),
    "nq_daily_volume": ("0.6M..0.7M", lambda v: 0.6e6 <= v <= 0.7e6),
    "es_sigma_1min_points": ("1.1..1.8 (~1.4)", lambda v: 1.1 <= v <= 1.8),
    # Index futures move mostly within the same second: lag 0 holds most of the |cross-corr| mass.
    "lead_lag_lag0_share": (f">= {LAG0_SHARE_MIN}", lambda v: v >= LAG0_SHARE_MIN),
}
# The leader is detected: its share of the lagged |cross-corr| mass exceeds the follower's by a margin
# (NQ-ahead share minus ES-ahead share; balanced: no side ahead).
LEAD_TARGETS = {
    "NQ_leads": (f">= {LEAD_SHARE_MARGIN} (NQ leads)", lambda v: v >= LEAD_SHARE_MARGIN),
    "ES_leads": (f"<= -{LEAD_SHARE_MARGIN} (ES leads)", lambda v: v <= -LEAD_SHARE_MARGIN),
    "balanced": (f"|v| < {LEAD_SHARE_MARGIN}", lambda v: abs(v) < LEAD_SHARE_MARGIN),
}


def evaluate(measurements: dict[str, float], *, leadership: str = "NQ_leads") -> list[FactResult]:
    """One ``FactResult(fact, value, target, passed)`` per fact; NaN values fail."""
    out = []
    targets = dict(TARGETS, lead_lag_nq_minus_es_share=LEAD_TARGETS[leadership])
    for fact, (target, ok) in targets.items():
        value = float(measurements[fact])
        out.append(FactResult(fact, value, target, bool(np.isfinite(value) and ok(value))))
    return out


def report(results: list[FactResult], title: str = "realism battery") -> str:
    """A fixed-width text table, one line per fact, and a summary line."""
    lines = [title, f"{'fact':<26} {'value':>12}  {'target':<18} result"]
    for r in results:
        lines.append(f"{r.fact:<26} {r.value:>12.4g}  {r.target:<18} {'pass' if r.passed else 'FAIL'}")
    failed = [r.fact for r in results if not r.passed]
    lines.append(f"{len(results) - len(failed)}/{len(results)} facts pass" + (f"; failing: {', '.join(failed)}" if failed else ""))
    return "\n".join(lines)


# Facts whose value per seed set ``mia report realism`` repeats side by side after the sets.
SUMMARY_FACTS = ("acf_absr_power_exponent", "lead_lag_lag0_share", "lead_lag_nq_minus_es_share")


def per_set_summary(per_set: dict[str, list[FactResult]]) -> str:
    """One line per fact: its value in each seed set next to its target, and the sets failing it."""
    lines = ["per seed set:"]
    for fact, results in per_set.items():
        if not results:
            continue
        values = ", ".join(f"{r.value:.3f}" for r in results)
        bad = [str(i + 1) for i, r in enumerate(results) if not r.passed]
        verdict = f"FAIL in set {', '.join(bad)}" if bad else "pass"
        lines.append(f"  {fact:<26} {values}  (target {results[0].target}) {verdict}")
    return "\n".join(lines)


def globex_day_starts(n: int, first: datetime | None = None) -> list[datetime]:
    """Start (18:00 ET, Sunday..Thursday) of ``n`` consecutive Globex trading days (CME full-day
    holidays skipped: the session must open at 18:00 ET)."""
    day = (first or datetime(2025, 1, 5, 18, 0, tzinfo=ET)).astimezone(ET)
    out = []
    while len(out) < n:
        start = day.replace(hour=18, minute=0, second=0, microsecond=0)
        if day.weekday() in (6, 0, 1, 2, 3) and globex_status(start)[0]:
            out.append(start)
        day += timedelta(days=1)
    return out


SET_SIZE = 20
FIRST_DAY = datetime(2025, 6, 1, 18, 0, tzinfo=ET)  # seed sets are consecutive Globex days from here


def seed_set_sessions(k: int, seed: int = 0, *, n: int = SET_SIZE, leadership: str = "NQ_leads",
                      minutes: int = 24 * 60, model: MarketModel = DEFAULT_MODEL,
                      scenario: str = "normal") -> Iterator[dict[str, Table]]:
    """Seed set ``k`` (0-based): the ``n`` Globex days after the first ``k * n`` days from ``FIRST_DAY``
    (CME holidays skipped), each seeded with ``session_seed(seed, day, scenario)``; L1 only."""
    starts = globex_day_starts((k + 1) * n, FIRST_DAY)[k * n:]
    for start in starts:
        gen = MIA_IA_DataGenerator(seed=session_seed(seed, start, scenario), model=model)
        t = gen.generate_tables(GenConfig(start=start, minutes=minutes), scenario, leadership, tables=("l1",))
        yield {"l1": t["l1"]}


def battery_sessions(n: int = 20, seed: int = 0, *, model: MarketModel = DEFAULT_MODEL,
                     leadership: str = "NQ_leads", scenario: str = "normal") -> Iterator[dict[str, Table]]:
    """``n`` full Globex days from 2025-01-05 (seeds ``session_seed(seed, day, scenario)``), L1 only (Arrow), lazily."""
    for start in globex_day_starts(n):
        gen = MIA_IA_DataGenerator(seed=session_seed(seed, start, scenario), model=model)
        t = gen.generate_tables(GenConfig(start=start, minutes=24 * 60), scenario, leadership, tables=("l1",))
        yield {"l1": t["l1"]}


def gaussian_walk_sessions(n: int = 20, seed: int = 0) -> Iterator[dict[str, Table]]:
    """The same days from a Gaussian random walk: constant volatility and volume, no leadership."""
    return battery_sessions(n, seed, model=GAUSSIAN_WALK, leadership="balanced")

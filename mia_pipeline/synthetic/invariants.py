"""Invariants of a generated session, one named result per property (each maps to an asset check).

All checks are vectorised and accept the DataFrames returned by the generator or read back from
Parquet with pandas. A failing check says what is wrong and how many rows are affected.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from mia_pipeline.synthetic.bars import Trades, bars_of, trading_day
from mia_pipeline.synthetic.config import LABEL_SIDE
from mia_pipeline.synthetic.schedule import is_open

ASK_ABOVE_BID = "ask_above_bid"
PRICES_ON_TICK_GRID = "prices_on_tick_grid"
BARS_RECOMPUTED_FROM_L1 = "bars_recomputed_from_l1"
BARS_OHLC_CONSISTENT = "bars_ohlc_consistent"
FOOTPRINT_SUMS_TO_BARS = "footprint_sums_to_bars"
L2_BEST_EQUALS_L1 = "l2_best_equals_l1"
L2_LEVELS_STRICTLY_ORDERED = "l2_levels_strictly_ordered"
TIMESTAMPS_SORTED = "timestamps_sorted"
LABELS_CONSISTENT_WITH_SIDE = "labels_consistent_with_side"
ROWS_WITHIN_GLOBEX_HOURS = "rows_within_globex_hours"


@dataclass(frozen=True)
class InvariantResult:
    name: str
    passed: bool
    detail: str
    failing_rows: int

    def to_dict(self) -> dict:
        return asdict(self)


class InvariantViolation(AssertionError):
    """Raised by ``assert_invariants``; ``results`` holds every failing check."""

    def __init__(self, results: list[InvariantResult]):
        self.results = results
        lines = "; ".join(f"{r.name}: {r.detail}" for r in results)
        super().__init__(f"synthetic session violates {len(results)} invariant(s): {lines}")


def _result(name: str, failing: int, ok_detail: str, bad_detail: str) -> InvariantResult:
    failing = int(failing)
    return InvariantResult(name, failing == 0, ok_detail if failing == 0 else bad_detail, failing)


def list_matrix(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(values as a (rows, width) array padded with NaN, lengths) for a column of lists."""
    arr = pa.array(col.array) if isinstance(col.dtype, pd.ArrowDtype) else pa.array(list(col))
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    offsets = arr.offsets.to_numpy()
    lengths = np.diff(offsets)
    values = arr.values.to_numpy(zero_copy_only=False)[offsets[0]:offsets[-1]]
    width = int(lengths.max(initial=0))
    if len(lengths) and np.all(lengths == width):
        return values.reshape(len(lengths), width), lengths
    values = values.astype(np.float64)
    out = np.full((len(lengths), width), np.nan)
    rows = np.repeat(np.arange(len(lengths)), lengths)
    cols = np.arange(len(values)) - np.repeat(offsets[:-1] - offsets[0], lengths)
    out[rows, cols] = values
    return out, lengths


def _off_grid(values: np.ndarray, tick: float) -> np.ndarray:
    q = values / tick
    return np.abs(q - np.rint(q)) > 1e-6


def symbol_rows(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Row positions of each symbol, in order of first appearance (fast on Arrow-backed strings)."""
    codes, uniques = pd.factorize(df["symbol"])
    return {str(sym): np.flatnonzero(codes == k) for k, sym in enumerate(uniques)}


def _ts_columns(data: dict[str, pd.DataFrame]):
    for name, df in data.items():
        if len(df):
            yield name, df["bar_start_ts" if name == "footprint" else "ts"].to_numpy(np.int64)


class _Session:
    """Shared, lazily computed views of the tables (L2 matrices, bars recomputed from L1)."""

    def __init__(self, data: dict[str, pd.DataFrame], tick: float, tf_ms: int):
        self.data, self.tick, self.tf_ms = data, tick, tf_ms
        self.l1, self.l2, self.bars, self.fp, self.gt = (
            data[k] for k in ("l1", "l2", "bars", "footprint", "ground_truth"))
        self.l1_rows = symbol_rows(self.l1)
        self._rec: pd.DataFrame | None = None
        self._book: dict[str, int] | None = None

    @property
    def book_counts(self) -> dict[str, int]:
        """One chunked pass over the L2 lists: snapshots off the tick grid, whose best level differs
        from the as-of L1 quote, and whose levels are unordered / mis-sized (chunks keep the
        temporaries in cache: a 24 h session has 2 x 33M list values)."""
        if self._book is None:
            self._book = dict.fromkeys(("off_grid", "best", "order"), 0)
            if len(self.l2):
                self._scan_book()
        return self._book

    def _scan_book(self) -> None:
        (bp, lengths), (ap, _), (bs, _), (asz, _) = (
            list_matrix(self.l2[c]) for c in ("bid_px", "ask_px", "bid_sz", "ask_sz"))
        n = len(self.l2)
        ref = {k: np.zeros(n) for k in ("bid", "ask", "bid_size", "ask_size")}
        missing = np.zeros(n, dtype=bool)
        for symbol, rows in symbol_rows(self.l2).items():
            s1 = self.l1.iloc[self.l1_rows.get(symbol, [])]
            idx = np.searchsorted(s1["ts"].to_numpy(), self.l2["ts"].to_numpy()[rows], side="right") - 1
            missing[rows] = idx < 0
            for k in ref:
                ref[k][rows] = s1[k].to_numpy(np.float64)[np.maximum(idx, 0)]
        width_ok = lengths == self.l2["levels"].to_numpy()
        step = self.tick * (1 - 1e-9)
        for lo in range(0, n, 65_536):
            sl = slice(lo, lo + 65_536)
            b, a = bp[sl], ap[sl]
            self._book["off_grid"] += int((_off_grid(b, self.tick).any(axis=1) | _off_grid(a, self.tick).any(axis=1)).sum())
            best_ok = ~missing[sl] & (b[:, 0] == ref["bid"][sl]) & (a[:, 0] == ref["ask"][sl])
            best_ok &= (bs[sl, 0] == ref["bid_size"][sl]) & (asz[sl, 0] == ref["ask_size"][sl])
            self._book["best"] += int((~best_ok).sum())
            ok = width_ok[sl] & (b[:, 0] < a[:, 0]) & np.all(np.diff(b, axis=1) <= -step, axis=1)
            ok &= np.all(np.diff(a, axis=1) >= step, axis=1) & np.all(bs[sl] > 0, axis=1) & np.all(asz[sl] > 0, axis=1)
            self._book["order"] += int((~ok).sum())

    def trades(self, symbol: str) -> Trades:
        rows = self.l1.iloc[self.l1_rows[symbol]]
        rows = rows[rows["last_size"].to_numpy() > 0]
        price = rows["last_price"].to_numpy(np.float64)
        side = np.where(price == rows["ask"].to_numpy(), 1, np.where(price == rows["bid"].to_numpy(), -1, 0))
        return Trades(rows["ts"].to_numpy(np.int64), price, rows["last_size"].to_numpy(np.int64), side)

    @property
    def recomputed_bars(self) -> pd.DataFrame:
        """Bars (with ``delta`` and ``unsided``: trades at neither bid nor ask) recomputed from L1."""
        if self._rec is None:
            parts = []
            for symbol in self.l1_rows:
                t = self.trades(symbol)
                b = bars_of(t, self.tf_ms, trading_day(t.ts))
                if len(t.ts):
                    bar = t.ts - t.ts % self.tf_ms
                    starts = np.flatnonzero(np.r_[True, bar[1:] != bar[:-1]])
                    b["unsided"] = np.add.reduceat((t.side == 0).astype(np.int64), starts)
                else:
                    b["unsided"] = np.zeros(0, dtype=np.int64)
                parts.append(pd.DataFrame(b).assign(symbol=symbol))
            cols = ["ts", "symbol", "open", "high", "low", "close", "volume", "vwap", "vwap_sd1", "vwap_sd2",
                    "delta", "unsided"]
            self._rec = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
        return self._rec


def _ask_above_bid(s: _Session) -> InvariantResult:
    bad = int((s.l1["ask"] <= s.l1["bid"]).sum())
    return _result(ASK_ABOVE_BID, bad, "ask > bid on every L1 row", f"{bad} L1 rows with ask <= bid")


def _tick_grid(s: _Session) -> InvariantResult:
    cols = [(s.l1, ("bid", "ask", "last_price")), (s.bars, ("open", "high", "low", "close")), (s.fp, ("price_level",))]
    off = sum(int(_off_grid(df[c].to_numpy(np.float64), s.tick).sum()) for df, names in cols for c in names)
    off += s.book_counts["off_grid"]
    return _result(PRICES_ON_TICK_GRID, off, f"all prices are multiples of {s.tick}",
                   f"{off} values/snapshots off the {s.tick} tick grid")


def _bars_recomputed(s: _Session) -> InvariantResult:
    cols = ["open", "high", "low", "close", "volume", "vwap", "vwap_sd1", "vwap_sd2"]
    bad = 0
    if len(s.recomputed_bars) or len(s.bars):
        m = s.bars.merge(s.recomputed_bars, on=["symbol", "ts"], how="outer", suffixes=("", "_l1"), indicator=True)
        wrong = np.array(m["_merge"] != "both", dtype=bool)
        for c in cols:
            wrong |= ~np.isclose(m[c].to_numpy(np.float64), m[f"{c}_l1"].to_numpy(np.float64), rtol=1e-9, atol=1e-6)
        bad = int(wrong.sum())
    return _result(BARS_RECOMPUTED_FROM_L1, bad, f"{len(s.bars)} bars equal OHLCV/VWAP/bands recomputed from L1 trades",
                   f"{bad} bars differ from (or are missing in) the bars recomputed from L1 trades")


def _ohlc(s: _Session) -> InvariantResult:
    o, h, lo, c = (s.bars[k].to_numpy(np.float64) for k in ("open", "high", "low", "close"))
    bad = int(((h < np.maximum(o, c)) | (lo > np.minimum(o, c)) | (s.bars["volume"].to_numpy() <= 0)).sum())
    return _result(BARS_OHLC_CONSISTENT, bad, "high >= max(open, close), low <= min(open, close), volume > 0",
                   f"{bad} bars with inconsistent OHLC or non-positive volume")


def _footprint(s: _Session) -> InvariantResult:
    fp = s.fp
    agg = fp.groupby(["symbol", "bar_start_ts"], sort=False).agg(
        bid=("bid_volume", "sum"), ask=("ask_volume", "sum"), fp_delta=("delta", "sum")).reset_index()
    rec = s.recomputed_bars.rename(columns={"ts": "bar_start_ts"})[["symbol", "bar_start_ts", "volume", "delta", "unsided"]]
    j = rec.merge(agg, on=["symbol", "bar_start_ts"], how="outer", indicator=True)
    wrong = (j["_merge"] != "both") | (j["volume"] != j["bid"] + j["ask"]) | (j["delta"] != j["fp_delta"]) \
        | (j["unsided"].fillna(0) > 0)
    bad = int(wrong.sum()) + int((fp["delta"] != fp["ask_volume"] - fp["bid_volume"]).sum())
    return _result(FOOTPRINT_SUMS_TO_BARS, bad, "footprint bid+ask volume and delta per bar equal the bar's L1 trades",
                   f"{bad} footprint bars/rows whose volume or delta disagree with the L1 trades")


def _l2_best(s: _Session) -> InvariantResult:
    bad = s.book_counts["best"]
    return _result(L2_BEST_EQUALS_L1, bad, "L2 best levels equal the as-of L1 quote (price and size)",
                   f"{bad} L2 snapshots whose best level differs from the as-of L1 quote")


def _l2_ordered(s: _Session) -> InvariantResult:
    bad = s.book_counts["order"]
    return _result(L2_LEVELS_STRICTLY_ORDERED, bad, "bids strictly descending, asks strictly ascending, >= 1 tick apart",
                   f"{bad} L2 snapshots with unordered levels, crossed book, empty level or a level count != levels")


def _sorted(s: _Session) -> InvariantResult:
    unsorted = {name: int((np.diff(ts) < 0).sum()) for name, ts in _ts_columns(s.data)}
    bad = sum(unsorted.values())
    return _result(TIMESTAMPS_SORTED, bad, "timestamps non-decreasing in every table",
                   f"out-of-order timestamps per table: {({k: v for k, v in unsorted.items() if v})}")


def _labels(s: _Session) -> InvariantResult:
    codes, labels = pd.factorize(s.gt["label"])
    expected = np.array([LABEL_SIDE.get(label, 99) for label in labels] + [99])[codes]  # code -1 (missing) -> 99
    bad = int((expected != s.gt["side"].to_numpy()).sum())
    return _result(LABELS_CONSISTENT_WITH_SIDE, bad, f"every label carries its side {LABEL_SIDE}",
                   f"{bad} ground-truth rows with an unknown label or a side that contradicts it")


def _globex(s: _Session) -> InvariantResult:
    closed = {name: int((~is_open(ts)).sum()) for name, ts in _ts_columns(s.data)}
    bad = sum(closed.values())
    return _result(ROWS_WITHIN_GLOBEX_HOURS, bad, "no rows during the daily halt or the weekend",
                   f"rows while Globex is closed, per table: {({k: v for k, v in closed.items() if v})}")


CHECKS = (_ask_above_bid, _tick_grid, _bars_recomputed, _ohlc, _footprint, _l2_best, _l2_ordered, _sorted,
          _labels, _globex)
CHECK_NAMES = (ASK_ABOVE_BID, PRICES_ON_TICK_GRID, BARS_RECOMPUTED_FROM_L1, BARS_OHLC_CONSISTENT,
               FOOTPRINT_SUMS_TO_BARS, L2_BEST_EQUALS_L1, L2_LEVELS_STRICTLY_ORDERED, TIMESTAMPS_SORTED,
               LABELS_CONSISTENT_WITH_SIDE, ROWS_WITHIN_GLOBEX_HOURS)


def check_invariants(data: dict[str, pd.DataFrame], *, tick_size: float = 0.25, bar_tf_s: int = 1) -> list[InvariantResult]:
    """Check a session's seven tables; one ``InvariantResult`` per name in ``CHECK_NAMES``, in order.

    ``tick_size`` and ``bar_tf_s`` must be the session's ``GenConfig`` values.
    """
    session = _Session(data, tick_size, bar_tf_s * 1000)
    return [check(session) for check in CHECKS]


def assert_invariants(data: dict[str, pd.DataFrame], **kwargs) -> list[InvariantResult]:
    """Run ``check_invariants``; raise ``InvariantViolation`` listing the failures, else return results."""
    results = check_invariants(data, **kwargs)
    failed = [r for r in results if not r.passed]
    if failed:
        raise InvariantViolation(failed)
    return results

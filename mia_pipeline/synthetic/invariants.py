"""Invariants of a generated session, one named result per property (each maps to an asset check).

All checks are vectorised and accept the DataFrames returned by the generator, frames read back
from Parquet, or the Arrow tables of ``generate_tables``. A failing check says what is wrong and how
many rows are affected.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from mia_pipeline.synthetic.bars import Trades, bars_of, trading_day
from mia_pipeline.synthetic.columns import Table, batches, codes, col, list_matrix, nrows, rows_by_value
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


def _off_grid(values: np.ndarray, tick: float) -> np.ndarray:
    q = values / tick
    return np.abs(q - np.rint(q)) > 1e-6


def _ts_columns(data: dict[str, Table]):
    for name, t in data.items():
        if nrows(t):
            yield name, col(t, "bar_start_ts" if name == "footprint" else "ts", np.int64)


def _match(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Positions of the common keys in two sorted unique key arrays, and the count of unmatched."""
    common, ia, ib = np.intersect1d(a, b, assume_unique=True, return_indices=True)
    return ia, ib, len(a) + len(b) - 2 * len(common)


BAR_COLUMNS = ("open", "high", "low", "close", "volume", "vwap", "vwap_sd1", "vwap_sd2")


class _Session:
    """Shared, lazily computed views of the tables (per-symbol rows, bars recomputed from L1)."""

    def __init__(self, data: dict[str, Table], tick: float, tf_ms: int):
        self.data, self.tick, self.tf_ms = data, tick, tf_ms
        self.l1, self.l2, self.bars, self.fp, self.gt = (
            data[k] for k in ("l1", "l2", "bars", "footprint", "ground_truth"))
        self.l1_rows = rows_by_value(self.l1) if nrows(self.l1) else {}
        self._rec: dict[str, dict[str, np.ndarray]] | None = None
        self._book: dict[str, int] | None = None

    def trades(self, rows: np.ndarray) -> Trades:
        size = col(self.l1, "last_size", np.int64)[rows]
        rows = rows[size > 0]
        price = col(self.l1, "last_price", np.float64)[rows]
        ask, bid = col(self.l1, "ask", np.float64)[rows], col(self.l1, "bid", np.float64)[rows]
        side = np.where(price == ask, 1, np.where(price == bid, -1, 0))
        return Trades(col(self.l1, "ts", np.int64)[rows], price, size[size > 0], side)

    @property
    def recomputed_bars(self) -> dict[str, dict[str, np.ndarray]]:
        """Per symbol: bars recomputed from the L1 trades, with ``delta`` and ``unsided`` (trades at
        neither bid nor ask) per bar."""
        if self._rec is None:
            self._rec = {}
            for symbol, rows in self.l1_rows.items():
                t = self.trades(rows)
                b = bars_of(t, self.tf_ms, trading_day(t.ts))
                bar = t.ts - t.ts % self.tf_ms
                starts = np.flatnonzero(np.r_[True, bar[1:] != bar[:-1]]) if len(bar) else np.zeros(0, int)
                b["unsided"] = np.add.reduceat((t.side == 0).astype(np.int64), starts) if len(bar) else starts
                self._rec[symbol] = b
        return self._rec

    @property
    def book_counts(self) -> dict[str, int]:
        """One chunked pass over the L2 lists: snapshots off the tick grid, whose best level differs
        from the as-of L1 quote, and whose levels are unordered / mis-sized (chunks keep the
        temporaries in cache: a 24 h session has 2 x 33M list values)."""
        if self._book is None:
            self._book = dict.fromkeys(("off_grid", "best", "order"), 0)
            if nrows(self.l2):
                self._scan_book()
        return self._book

    def _scan_book(self) -> None:
        n = nrows(self.l2)
        ref = {k: np.zeros(n) for k in ("bid", "ask", "bid_size", "ask_size")}
        missing = np.zeros(n, dtype=bool)
        l1_ts, l2_ts = col(self.l1, "ts", np.int64), col(self.l2, "ts", np.int64)
        for symbol, rows in rows_by_value(self.l2).items():
            r1 = self.l1_rows.get(symbol, np.zeros(0, dtype=np.int64))
            idx = np.searchsorted(l1_ts[r1], l2_ts[rows], side="right") - 1
            missing[rows] = idx < 0
            for k in ref:
                ref[k][rows] = col(self.l1, k, np.float64)[r1][np.maximum(idx, 0)] if len(r1) else np.nan
        levels = col(self.l2, "levels")
        row = 0
        for batch in batches(self.l2, ["bid_px", "ask_px", "bid_sz", "ask_sz"]):
            mats = [list_matrix(batch.column(i)) for i in range(4)]
            for lo in range(0, batch.num_rows, 65_536):  # sub-chunks keep temporaries in cache
                hi = min(lo + 65_536, batch.num_rows)
                (bp, lengths), (ap, _), (bs, _), (asz, _) = ((m[lo:hi], ln[lo:hi]) for m, ln in mats)
                self._count_book(bp, ap, bs, asz, lengths, levels[row + lo:row + hi],
                                 {k: v[row + lo:row + hi] for k, v in ref.items()}, missing[row + lo:row + hi])
            row += batch.num_rows

    def _count_book(self, b, a, bs, asz, lengths, levels, ref, missing) -> None:
        step = self.tick * (1 - 1e-9)
        best_ok = ~missing & (b[:, 0] == ref["bid"]) & (a[:, 0] == ref["ask"])
        best_ok &= (bs[:, 0] == ref["bid_size"]) & (asz[:, 0] == ref["ask_size"])
        self._book["best"] += int((~best_ok).sum())
        # Fast path: a contiguous book (levels exactly one tick apart from an on-grid best) is on the
        # grid and strictly ordered; only the other rows need the element-wise checks.
        offsets = np.arange(b.shape[1]) * self.tick
        grid_best = ~(_off_grid(b[:, 0], self.tick) | _off_grid(a[:, 0], self.tick))
        fast = np.all(b == b[:, :1] - offsets, axis=1) & np.all(a == a[:, :1] + offsets, axis=1) & grid_best
        ok = (lengths == levels) & (b[:, 0] < a[:, 0])
        ok &= (bs.min(axis=1, initial=1) > 0) & (asz.min(axis=1, initial=1) > 0)
        off_grid = ~grid_best
        slow = np.flatnonzero(~fast)
        if len(slow):
            bb, aa = b[slow], a[slow]
            off_grid[slow] = _off_grid(bb, self.tick).any(axis=1) | _off_grid(aa, self.tick).any(axis=1)
            ok[slow] &= np.all(np.diff(bb, axis=1) <= -step, axis=1) & np.all(np.diff(aa, axis=1) >= step, axis=1)
        self._book["off_grid"] += int(off_grid.sum())
        self._book["order"] += int((~ok).sum())


def _ask_above_bid(s: _Session) -> InvariantResult:
    bad = int((col(s.l1, "ask") <= col(s.l1, "bid")).sum())
    return _result(ASK_ABOVE_BID, bad, "ask > bid on every L1 row", f"{bad} L1 rows with ask <= bid")


def _tick_grid(s: _Session) -> InvariantResult:
    cols = [(s.l1, ("bid", "ask", "last_price")), (s.bars, ("open", "high", "low", "close")), (s.fp, ("price_level",))]
    off = sum(int(_off_grid(col(t, c, np.float64), s.tick).sum()) for t, names in cols for c in names)
    off += s.book_counts["off_grid"]
    return _result(PRICES_ON_TICK_GRID, off, f"all prices are multiples of {s.tick}",
                   f"{off} values/snapshots off the {s.tick} tick grid")


def _bars_recomputed(s: _Session) -> InvariantResult:
    bad = 0
    bar_rows = rows_by_value(s.bars) if nrows(s.bars) else {}
    for symbol in set(bar_rows) | set(s.recomputed_bars):
        rows = bar_rows.get(symbol, np.zeros(0, dtype=np.int64))
        rec = s.recomputed_bars.get(symbol)
        rec_ts = rec["ts"] if rec is not None else np.zeros(0, dtype=np.int64)
        ia, ib, unmatched = _match(col(s.bars, "ts", np.int64)[rows], rec_ts)
        wrong = np.zeros(len(ia), dtype=bool)
        for c in BAR_COLUMNS:
            wrong |= ~np.isclose(col(s.bars, c, np.float64)[rows][ia], rec[c][ib].astype(np.float64), rtol=1e-9, atol=1e-6)
        bad += unmatched + int(wrong.sum())
    return _result(BARS_RECOMPUTED_FROM_L1, bad, f"{nrows(s.bars)} bars equal OHLCV/VWAP/bands recomputed from L1 trades",
                   f"{bad} bars differ from (or are missing in) the bars recomputed from L1 trades")


def _ohlc(s: _Session) -> InvariantResult:
    o, h, lo, c = (col(s.bars, k, np.float64) for k in ("open", "high", "low", "close"))
    bad = int(((h < np.maximum(o, c)) | (lo > np.minimum(o, c)) | (col(s.bars, "volume") <= 0)).sum())
    return _result(BARS_OHLC_CONSISTENT, bad, "high >= max(open, close), low <= min(open, close), volume > 0",
                   f"{bad} bars with inconsistent OHLC or non-positive volume")


def _footprint(s: _Session) -> InvariantResult:
    bid, ask, delta = (col(s.fp, k, np.int64) for k in ("bid_volume", "ask_volume", "delta"))
    bad = int((delta != ask - bid).sum())
    fp_rows = rows_by_value(s.fp) if nrows(s.fp) else {}
    bar_ts = col(s.fp, "bar_start_ts", np.int64)
    for symbol in set(fp_rows) | set(s.recomputed_bars):
        rows = fp_rows.get(symbol, np.zeros(0, dtype=np.int64))
        keys, inv = np.unique(bar_ts[rows], return_inverse=True)
        volume = np.bincount(inv, (bid + ask)[rows].astype(np.float64), len(keys))
        fp_delta = np.bincount(inv, delta[rows].astype(np.float64), len(keys))
        rec = s.recomputed_bars.get(symbol, {"ts": np.zeros(0, np.int64)})
        ia, ib, unmatched = _match(keys, rec["ts"])
        wrong = (volume[ia] != rec["volume"][ib]) | (fp_delta[ia] != rec["delta"][ib]) | (rec["unsided"][ib] > 0)
        bad += unmatched + int(wrong.sum())
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
    bad = 0
    if nrows(s.gt):
        label_codes, labels = codes(s.gt, "label")
        expected = np.array([LABEL_SIDE.get(label, 99) for label in labels] + [99])[label_codes]  # -1 -> 99
        bad = int((expected != col(s.gt, "side", np.int64)).sum())
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
CHECK_DESCRIPTIONS = {
    ASK_ABOVE_BID: "Every L1 quote has ask > bid (a crossed or locked quote is a generator bug).",
    PRICES_ON_TICK_GRID: "Every L1, bar, footprint and L2 price is a multiple of the tick size (0.25 for ES/NQ).",
    BARS_RECOMPUTED_FROM_L1: "Each bar's OHLCV, VWAP and bands equal the values recomputed from the L1 trades it covers.",
    BARS_OHLC_CONSISTENT: "Bars have high >= max(open, close), low <= min(open, close) and volume > 0.",
    FOOTPRINT_SUMS_TO_BARS: "Per bar, footprint bid+ask volume and delta equal the bar's L1 trades; delta = ask - bid.",
    L2_BEST_EQUALS_L1: "The best L2 level of each snapshot equals the as-of L1 quote (price and size).",
    L2_LEVELS_STRICTLY_ORDERED: "L2 bids strictly descend and asks strictly ascend, at least one tick apart, never crossed.",
    TIMESTAMPS_SORTED: "Timestamps are non-decreasing in every one of the seven tables.",
    LABELS_CONSISTENT_WITH_SIDE: "Every ground-truth label is a known one and carries the trade side that label implies.",
    ROWS_WITHIN_GLOBEX_HOURS: "No row falls in the CME Globex daily halt (17:00-18:00 ET) or the weekend closure.",
}


def check_invariants(data: dict[str, Table], *, tick_size: float = 0.25, bar_tf_s: int = 1) -> list[InvariantResult]:
    """Check a session's seven tables; one ``InvariantResult`` per name in ``CHECK_NAMES``, in order.

    ``data`` maps table names to DataFrames or Arrow tables; ``tick_size`` and ``bar_tf_s`` must be
    the session's ``GenConfig`` values.
    """
    session = _Session(data, tick_size, bar_tf_s * 1000)
    return [check(session) for check in CHECKS]


def assert_invariants(data: dict[str, Table], **kwargs) -> list[InvariantResult]:
    """Run ``check_invariants``; raise ``InvariantViolation`` listing the failures, else return results."""
    results = check_invariants(data, **kwargs)
    failed = [r for r in results if not r.passed]
    if failed:
        raise InvariantViolation(failed)
    return results

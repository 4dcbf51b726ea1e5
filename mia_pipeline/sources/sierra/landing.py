"""Sierra tables -> landing-zone rows -> validated, deduplicated, committed daily partitions.

Thin adapter over :mod:`mia_pipeline.collection.typed_landing` (same ``finalize`` rules, per-day
``Ingestor._land_day`` under the ingest lock, quarantine). The one difference: each row's raw line is
filed under ``file = origin`` and ``offset = its position in the source`` (record index in the
``.scid``/``.depth`` file, bar time for bars), not its timestamp — several Sierra records share a
millisecond and must not collapse into one raw line — and the raw lines are built column-wise
(:mod:`~mia_pipeline.collection.typed_lines`), not one ``json.dumps`` per row.

Row mapping (``source`` = ``"sierra"``):

- trades (:func:`scid_ticks`) -> ``market_tick``: ``last`` = price, ``last_size`` = size, ``bid``/``ask``;
  ``seq`` = rank among the file's records of the same millisecond (0, 1, ...), so re-landing the same
  records gives the same keys; microseconds are kept in that order;
- order-flow bars -> ``market_bar`` (``bid_volume``, ``ask_volume``, ``vwap``, ``trade_count``);
- depth records -> ``market_depth`` (command name, price, quantity, num_orders, end_of_batch; ``seq`` as ticks);
- ``.dly`` rows -> ``market_bar`` timeframe ``1d`` (``open_interest`` kept in ``extra``);
- study exports -> ``market_bar`` of the export's timeframe, a ``VWAP`` study column as ``vwap``, every
  other study value kept in ``extra`` as ``{"studies": {name: value}}``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mia_pipeline.collection.ingest import IngestReport
from mia_pipeline.collection.typed_landing import land_rows, parse_table
from mia_pipeline.layout import Layout
from mia_pipeline.schemas.contract import DEPTH_COMMANDS, TIMEFRAMES
from mia_pipeline.storage import PartitionStore

SOURCE = "sierra"
MINUTE_FRAMES = {1: "1min", 2: "2min", 3: "3min", 5: "5min", 10: "10min", 15: "15min", 30: "30min", 60: "1h",
                 120: "2h", 240: "4h", 1440: "1d"}


def _ms(ts: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return pc.cast(ts, pa.int64()).to_numpy() // 1000


def seq_within_ms(ts_us: np.ndarray) -> np.ndarray:
    """0, 1, 2... among consecutive records of the same millisecond (file order)."""
    ms = ts_us // 1000
    idx = np.arange(len(ms), dtype=np.int64)
    starts = np.ones(len(ms), dtype=bool)
    starts[1:] = ms[1:] != ms[:-1]
    return idx - np.maximum.accumulate(np.where(starts, idx, 0))


def _ids(prefix: str, ts_ms: np.ndarray, tail: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(pa.repeat(pa.scalar(prefix), len(ts_ms)), pa.array(ts_ms).cast(pa.string()),
                                       pa.array(tail).cast(pa.string()), "-")


def tick_rows(ticks: pa.Table, symbol: str, seq: np.ndarray | None = None) -> tuple[pa.Table, np.ndarray]:
    """``market_tick`` parse rows of trades and their epoch ms; ``seq`` defaults to :func:`seq_within_ms`."""
    us = pc.cast(ticks.column("ts"), pa.int64()).to_numpy()
    seq = seq_within_ms(us) if seq is None else seq
    ts_ms = us // 1000
    return parse_table("market_tick", {
        "event_id": _ids(f"sierra-{symbol}-t", ts_ms, seq), "source": pa.repeat(pa.scalar(SOURCE), len(us)),
        "symbol": pa.repeat(pa.scalar(symbol), len(us)), "seq": pa.array(seq),
        "bid": ticks.column("bid"), "ask": ticks.column("ask"), "last": ticks.column("price"),
        "last_size": ticks.column("size"),
    }, ts_ms), ts_ms


def bar_rows(bars: pa.Table, symbol: str, timeframe: str, extra_volume: bool = True) -> tuple[pa.Table, np.ndarray]:
    """``market_bar`` parse rows of :func:`order_flow_bars` / :func:`read_dly`-like tables."""
    if timeframe not in TIMEFRAMES:
        raise ValueError(f"timeframe {timeframe!r} is not one of {', '.join(TIMEFRAMES)}")
    ts_ms = _ms(bars.column("ts"))
    n = len(ts_ms)
    cols = {"event_id": _ids(f"sierra-{symbol}-{timeframe}", ts_ms, np.zeros(n, dtype=np.int64)),
            "source": pa.repeat(pa.scalar(SOURCE), n), "symbol": pa.repeat(pa.scalar(symbol), n),
            "timeframe": pa.repeat(pa.scalar(timeframe), n)}
    for name in ("open", "high", "low", "close", "volume", "vwap", "bid_volume", "ask_volume", "trade_count"):
        if name in bars.column_names:
            cols[name] = bars.column(name)
    return parse_table("market_bar", cols, ts_ms), ts_ms


def depth_rows(depth: pa.Table, symbol: str, seq: np.ndarray | None = None) -> tuple[pa.Table, np.ndarray]:
    """``market_depth`` parse rows of :func:`read_depth` records."""
    us = pc.cast(depth.column("ts"), pa.int64()).to_numpy()
    seq = seq_within_ms(us) if seq is None else seq
    ts_ms = us // 1000
    commands = pa.DictionaryArray.from_arrays(pc.cast(depth.column("command"), pa.int32()).combine_chunks(),
                                              pa.array(DEPTH_COMMANDS)).cast(pa.string())
    return parse_table("market_depth", {
        "event_id": _ids(f"sierra-{symbol}-d", ts_ms, seq), "source": pa.repeat(pa.scalar(SOURCE), len(us)),
        "symbol": pa.repeat(pa.scalar(symbol), len(us)), "seq": pa.array(seq), "command": commands,
        "price": depth.column("price"), "quantity": depth.column("quantity"),
        "num_orders": depth.column("num_orders"), "end_of_batch": depth.column("end_of_batch"),
    }, ts_ms), ts_ms


def land(layout: Layout, store: PartitionStore, kind: str, rows: pa.Table, *, origin: str, offsets: np.ndarray,
         residuals: dict[int, dict] | None = None, known_symbols: frozenset[str] | None = None,
         now_ms: int | None = None) -> IngestReport:
    """:func:`~mia_pipeline.collection.typed_landing.land_rows` with the raw-line key of each row its
    record position in ``origin`` (several records share a millisecond: a timestamp is no key)."""
    return land_rows(layout, store, kind, rows, origin=origin, offsets=offsets, residuals=residuals,
                     known_symbols=known_symbols, now_ms=now_ms)


def merge_reports(reports: list[IngestReport]) -> IngestReport:
    out = IngestReport()
    for r in reports:
        out.absorb(r)
        out.lines += r.lines
        out.quarantined.update(r.quarantined)
        for name, days in r.days.items():  # quarantine days are recorded apart from absorb()
            out.days[name] |= days
    return out

"""``OfflineFeed``: replay exported sessions as one time-ordered stream across tables and symbols.

A session is any directory under ``data_dir`` holding ``l1.parquet`` (and the other tables written
by ``export_to_parquet`` / ``generate_session_to_dir``), e.g. ``data/backtest/2025-08-21/normal/``.

Replay time of a row is its ``ts``, except bars and footprint rows, which are released when the bar
closes (``bar start + bar_tf_s``) so a consumer never sees a bar before it is complete. Rows with the
same replay time come in table order ``context, l1, l2, bars, footprint, leadership_features,
ground_truth`` and then in file order. ``start_date``/``end_date`` (``YYYY-MM-DD``, inclusive) filter on
the UTC date of the replay time; ``symbols`` filters per-symbol tables (``context`` is market-wide and
always kept). Sessions that overlap in time are refused (pass ``scenario=`` to pick one).

>>> feed = OfflineFeed("./data/backtest/", ["ES", "NQ"], "2025-08-21", "2025-08-21")  # doctest: +SKIP
>>> for event in feed:  # doctest: +SKIP
...     event.ts, event.table, event.symbol, event.row["bid"]
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from mia_pipeline.synthetic import frames

REPLAY_ORDER: tuple[str, ...] = ("context", "l1", "l2", "bars", "footprint", "leadership_features", "ground_truth")
CHUNK_EVENTS = 50_000


class FeedEvent(NamedTuple):
    ts: int  # replay time, epoch ms UTC
    table: str
    symbol: str | None  # None for the market-wide context
    row: dict


def _day(value: str | date | None) -> date | None:
    if value is None or isinstance(value, date):
        return value.date() if isinstance(value, datetime) else value
    return date.fromisoformat(str(value))


def _ms(d: date) -> int:
    return int(datetime.combine(d, time(0), UTC).timestamp() * 1000)


class OfflineFeed:
    def __init__(self, data_dir: str | Path, symbols: Iterable[str] | None = None,
                 start_date: str | date | None = None, end_date: str | date | None = None, *,
                 scenario: str | None = None, tables: Iterable[str] = REPLAY_ORDER) -> None:
        self.data_dir = Path(data_dir)
        self.symbols = None if symbols is None else [str(s) for s in symbols]
        self.start_date, self.end_date = _day(start_date), _day(end_date)
        self.tables = tuple(t for t in REPLAY_ORDER if t in set(tables))
        unknown = set(tables) - set(REPLAY_ORDER)
        if unknown:
            raise ValueError(f"unknown tables {sorted(unknown)}; valid: {', '.join(REPLAY_ORDER)}")
        self.lo_ms = _ms(self.start_date) if self.start_date else None
        self.hi_ms = _ms(self.end_date + timedelta(days=1)) if self.end_date else None
        self.sessions = self._discover(scenario)
        self._frames: dict[str, pd.DataFrame] = {}

    def _discover(self, scenario: str | None) -> list[Path]:
        if not self.data_dir.is_dir():
            raise FileNotFoundError(f"OfflineFeed: no such directory {self.data_dir}")
        found = []
        for l1 in sorted(self.data_dir.rglob("l1.parquet")):
            session = l1.parent
            if any(part.startswith(".") for part in session.relative_to(self.data_dir).parts):
                continue  # temporary / old directories of an interrupted atomic write
            meta = self._meta(session)
            if scenario is not None and meta.get("scenario", session.name) != scenario:
                continue
            lo, hi = self._span(session, meta)
            if lo is None or (self.hi_ms is not None and lo >= self.hi_ms) or (self.lo_ms is not None and hi < self.lo_ms):
                continue
            found.append((lo, hi, session))
        found.sort()
        for (_, hi_a, a), (lo_b, _, b) in zip(found, found[1:], strict=False):
            if lo_b <= hi_a:
                raise ValueError(f"OfflineFeed: sessions {a} and {b} overlap in time; pass scenario=... "
                                 "or point data_dir at one of them")
        return [s for _, _, s in found]

    @staticmethod
    def _meta(session: Path) -> dict:
        path = session / "meta.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    @staticmethod
    def _span(session: Path, meta: dict) -> tuple[int | None, int | None]:
        if "start_ms" in meta:
            return int(meta["start_ms"]), int(meta["end_ms"])
        ts = pq.read_table(session / "l1.parquet", columns=["ts"]).column("ts").to_numpy()
        return (int(ts.min()), int(ts.max())) if len(ts) else (None, None)

    def _bar_ms(self, session: Path) -> int:
        return int(self._meta(session).get("config", {}).get("bar_tf_s", 1)) * 1000

    def table(self, name: str) -> pd.DataFrame:
        """All selected sessions' rows of one table, filtered and sorted by replay time."""
        if name not in self._frames:
            parts = []
            for session in self.sessions:
                path = session / f"{name}.parquet"
                if not path.is_file():
                    continue
                df = frames.to_pandas(pq.read_table(path))
                ts_col = "bar_start_ts" if name == "footprint" else "ts"
                shift = self._bar_ms(session) if name in ("bars", "footprint") else 0
                replay = df[ts_col].to_numpy(np.int64) + shift
                keep = np.ones(len(df), dtype=bool)
                if self.lo_ms is not None:
                    keep &= replay >= self.lo_ms
                if self.hi_ms is not None:
                    keep &= replay < self.hi_ms
                if self.symbols is not None and "symbol" in df.columns:
                    keep &= df["symbol"].isin(self.symbols).to_numpy()
                parts.append(df[keep].assign(_replay_ts=replay[keep]))
            df = pd.concat(parts, ignore_index=True) if parts else frames.to_pandas(frames.empty(name)).assign(
                _replay_ts=np.zeros(0, dtype=np.int64))
            order = np.argsort(df["_replay_ts"].to_numpy(), kind="stable")
            self._frames[name] = df.iloc[order].reset_index(drop=True)
        return self._frames[name].drop(columns="_replay_ts")

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.table(name)

    def __len__(self) -> int:
        return sum(len(self.table(t)) for t in self.tables)

    def __iter__(self) -> Iterator[FeedEvent]:
        return self.events()

    def events(self, tables: Iterable[str] | None = None) -> Iterator[FeedEvent]:
        """Yield ``FeedEvent(ts, table, symbol, row)`` in replay order (rows converted chunk by chunk)."""
        names = [t for t in self.tables if tables is None or t in set(tables)]
        for name in names:
            self.table(name)
        dfs = {name: self._frames[name] for name in names}
        ts = np.concatenate([dfs[n]["_replay_ts"].to_numpy(np.int64) for n in names]) if names else np.zeros(0, int)
        which = np.concatenate([np.full(len(dfs[n]), k) for k, n in enumerate(names)]) if names else np.zeros(0, int)
        pos = np.concatenate([np.arange(len(dfs[n])) for n in names]) if names else np.zeros(0, int)
        order = np.lexsort((pos, which, ts))
        for lo in range(0, len(order), CHUNK_EVENTS):
            chunk = order[lo:lo + CHUNK_EVENTS]
            rows = {}
            for k, name in enumerate(names):
                sel = pos[chunk[which[chunk] == k]]
                if len(sel):
                    part = dfs[name].iloc[sel].drop(columns="_replay_ts")
                    rows[k] = iter(part.to_dict("records"))
            for i in chunk:
                k = int(which[i])
                row = next(rows[k])
                yield FeedEvent(int(ts[i]), names[k], row.get("symbol"), row)

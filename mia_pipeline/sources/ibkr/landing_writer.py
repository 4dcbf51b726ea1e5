"""The recorder's landing-zone files: ``data/live/streaming/ibkr_<YYYY-MM-DD>.jsonl``, one per UTC day.

Events are buffered and appended by :meth:`EventFile.flush` (one ``write`` + ``fsync`` per file,
through the paper-trading :class:`~mia_pipeline.sources.paper_trading.writer.Appender`, so a reader
never sees half a line as an event). Memory is bounded: the buffer is flushed when it holds
``max_buffered`` lines even between periodic flushes, and only the current day's file stays open.
Values are written as IB sent them, a NaN or infinite price included (``NaN``/``Infinity`` tokens): the
ingestion quarantines such a line (``non_finite_number``) instead of the recorder losing it.
"""

from __future__ import annotations

import json
from pathlib import Path

from mia_pipeline.layout import parse_day
from mia_pipeline.sources.paper_trading.writer import Appender

FILE_PREFIX = "ibkr_"


def encode_as_sent(event: dict) -> bytes:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=True).encode() + b"\n"


def day_file(out_dir: Path, day: str) -> Path:
    return Path(out_dir) / f"{FILE_PREFIX}{parse_day(day).isoformat()}.jsonl"


class EventFile:
    def __init__(self, out_dir: Path, max_buffered: int = 10_000):
        self.out_dir = Path(out_dir)
        self.max_buffered = max_buffered
        self._buffer: dict[str, list[bytes]] = {}
        self._appender = Appender()
        self._open_day: str | None = None
        self.lines_written = 0
        self.buffered = 0

    def add(self, event: dict) -> None:
        self._buffer.setdefault(event["timestamp"][:10], []).append(encode_as_sent(event))
        self.buffered += 1
        if self.buffered >= self.max_buffered:
            self.flush()

    def flush(self) -> int:
        """Append every buffered line to its day's file; returns lines written."""
        n = 0
        for day in sorted(self._buffer):
            lines = self._buffer[day]
            if day != self._open_day:  # a new day: the previous day's descriptor is closed
                self._appender.close()
                self._open_day = day
            self._appender.append(day_file(self.out_dir, day), lines)
            n += len(lines)
        self._buffer.clear()
        self.buffered = 0
        self.lines_written += n
        return n

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._appender.close()

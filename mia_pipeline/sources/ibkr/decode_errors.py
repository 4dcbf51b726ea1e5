"""IB messages ib_async could not decode: counted and kept in one line each, never printed as tracebacks.

ib_async logs every message its decoder cannot turn into a call (``ib_async.Decoder``: "Error handling
fields: [...]" or "Error for historicalData(...)") with a full traceback, and drops the message: a
request waiting for it then waits until its timeout. :data:`DECODE_ERRORS` takes those records instead:
each is one line (the message id and its first fields), the count goes up, and waiters are woken, so a
historical request fails at once, with the reason, instead of after its timeouts and retries.
"""

from __future__ import annotations

import asyncio
import logging
import re

HISTORICAL_IDS = {17, 90, 108}  # historicalData, historicalDataUpdate, historicalDataEnd
_FIELDS = re.compile(r"^Error handling fields: \[\s*'?(\d+)")
_METHOD = re.compile(r"^Error for (\w+)\(")


class DecodeErrors(logging.Handler):
    """The decoder's error records, one line each (installed once on the ``ib_async.Decoder`` logger)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.count = 0
        self.historical = 0
        self.last = ""
        self._waiters: set[asyncio.Event] = set()

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        msg_id = int(m.group(1)) if (m := _FIELDS.match(text)) else None
        method = m.group(1) if (m := _METHOD.match(text)) else ""
        why = f": {record.exc_info[1]!r}" if record.exc_info and record.exc_info[1] else ""
        self.count += 1
        self.last = (text[:160] + ("…" if len(text) > 160 else "")) + why[:160]
        if msg_id in HISTORICAL_IDS or method.startswith("historical"):
            self.historical += 1
            for event in self._waiters:
                event.set()

    def waiter(self) -> asyncio.Event:
        """An event set at the next undecodable historical-data message (:meth:`forget` it after use)."""
        event = asyncio.Event()
        self._waiters.add(event)
        return event

    def forget(self, event: asyncio.Event) -> None:
        self._waiters.discard(event)


DECODE_ERRORS = DecodeErrors()


def install() -> DecodeErrors:
    """Route ib_async's decoder errors to :data:`DECODE_ERRORS` (no traceback on the terminal). Idempotent."""
    logger = logging.getLogger("ib_async.Decoder")
    if DECODE_ERRORS not in logger.handlers:
        logger.addHandler(DECODE_ERRORS)
        logger.propagate = False
    logger.setLevel(logging.ERROR)  # its own level: a quieted "ib_async" (CRITICAL) must not hide them from us
    return DECODE_ERRORS

"""Small text inputs named by users (settings, configs, trade-id lists), read with a bound.

A path may name a device (``/dev/zero``), a pipe or a folder: reading one whole would never end or take
all the memory. :func:`read_small_text` opens without blocking, refuses anything but a regular file, and
reads at most ``limit`` bytes (a file that grows while it is read is refused too).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class NotASmallFile(ValueError):
    """The path is not a regular file, or is larger than the limit (the message says which)."""


def read_small_text(path: str | Path, limit: int, what: str) -> str:
    """The UTF-8 text of ``path``. Raises NotASmallFile (``what`` says what the file should be),
    OSError (cannot be opened) or UnicodeDecodeError."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a pipe without a writer would block a plain open
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotASmallFile(f"{path} is not a regular file (a device, a pipe or a folder); {what}")
        data = fh.read(limit + 1)
    if len(data) > limit:
        size = f"{limit >> 20} MB" if limit >= 1 << 20 else f"{limit >> 10} KB"
        raise NotASmallFile(f"{path} is larger than {size}; {what}")
    return data.decode("utf-8")


def strict_json(text: str):
    """``json.loads`` of a config: a key given twice in one object, or nesting deeper than Python can follow,
    is a ``ValueError`` saying so (``json`` keeps the last duplicate silently, and recursion is a crash)."""
    import json

    def unique(pairs):
        out = {}
        for key, value in pairs:
            if key in out:
                raise ValueError(f"the key {key!r} is given twice in one object (keep one)")
            out[key] = value
        return out

    try:
        return json.loads(text, object_pairs_hook=unique)
    except RecursionError:
        raise ValueError("nested too deeply to be a config file") from None

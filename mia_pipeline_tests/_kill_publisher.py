"""Subprocess for the publish kill test: republishes one folder forever with versions v, v+1, ...

Version v holds ``files(v)`` files, each holding ``v`` (and filler), so a reader can tell a complete
version from a torn one: every file says the same version and their number is ``files(v)``.
"""

import sys
from pathlib import Path

from mia_pipeline.storage.publish import publish_folder


def files(v: int) -> int:
    return 3 + (v * 7) % 11


def fill(folder: Path, v: int) -> None:
    for i in range(files(v)):
        (folder / f"part_{i:02d}.txt").write_text(f"{v}\n" + "x" * 20_000)


if __name__ == "__main__":
    target, v = Path(sys.argv[1]), int(sys.argv[2])
    print("ready", flush=True)
    while True:
        with publish_folder(target) as tmp:
            fill(tmp, v)
        v += 1

#!/usr/bin/env bash
# Print the path of a restic binary (exit 0), installing Debian's `restic` package when none is on
# PATH (root + apt-get). When it cannot be installed, print a one-line reason on stderr and exit 3.
# Used by benchmarks/bench_backup.py (restic is a baseline there, never a dependency of the project).
set -u
if command -v restic >/dev/null 2>&1; then command -v restic; exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then echo "no restic on PATH and no apt-get to install it" >&2; exit 3; fi
if [ "$(id -u)" -ne 0 ]; then echo "no restic on PATH and not root: cannot apt-get install restic" >&2; exit 3; fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq restic; } >"$log" 2>&1; then
    echo "apt-get install restic failed: $(grep -E '^(E|W):' "$log" | tail -n 1 | tr -d '\n')" >&2
    exit 3
fi
if command -v restic >/dev/null 2>&1; then command -v restic; exit 0; fi
echo "restic was installed but is not on PATH" >&2
exit 3

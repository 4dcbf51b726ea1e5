#!/usr/bin/env bash
# Print the path of a usable headless Chromium binary (exit 0).
# When none is on PATH (chromium, chromium-browser, google-chrome), install Debian's `chromium`
# package (root + apt-get; fonts come as dependencies) and print its path.
# When it cannot be installed, print a one-line reason on stderr and exit 3.
set -u

find_browser() {
    local name
    for name in chromium chromium-browser google-chrome; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
    done
    return 1
}

usable() {  # a wrapper that cannot even print its version (e.g. a snap stub) is not usable
    timeout 30 "$1" --headless=new --no-sandbox --version >/dev/null 2>&1
}

if path=$(find_browser) && usable "$path"; then
    echo "$path"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "no chromium on PATH and no apt-get to install it" >&2
    exit 3
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "no chromium on PATH and not root: cannot apt-get install chromium" >&2
    exit 3
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >"$log" 2>&1; then
    echo "apt-get install chromium failed: $(grep -E '^(E|W):' "$log" | tail -n 1 | tr -d '\n')" >&2
    exit 3
fi

if path=$(find_browser) && usable "$path"; then
    echo "$path"
    exit 0
fi
echo "chromium was installed but no usable chromium binary is on PATH" >&2
exit 3

#!/usr/bin/env bash
# Print the path of redis-server, installing Debian's redis-server first if it is missing. Exit 1 with the
# reason on stderr when it cannot be installed (no apt-get, no root, no network): the tests that need it
# are then skipped naming that reason.
set -euo pipefail
if command -v redis-server >/dev/null; then command -v redis-server; exit 0; fi
if ! command -v apt-get >/dev/null; then
  echo "redis-server is not installed and there is no apt-get to install it" >&2; exit 1
fi
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    echo "redis-server is not installed and installing it needs root (apt-get install redis-server)" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends redis-server; } >/dev/null 2>&1; then
  echo "apt-get install redis-server failed (no network to the Debian mirror?)" >&2; exit 1
fi
command -v redis-server || { echo "redis-server was installed but is not on PATH" >&2; exit 1; }

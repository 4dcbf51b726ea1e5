#!/usr/bin/env bash
# Print the path of redis-server, installing Debian's redis-server first if it is missing. Exit 1 with the
# reason on stderr when it cannot be installed (no apt-get, no root, no network): the tests that need it
# are then skipped naming that reason.
set -euo pipefail
if command -v redis-server >/dev/null; then command -v redis-server; exit 0; fi
bash "$(dirname "$0")/apt_install.sh" redis-server redis-server
command -v redis-server || { echo "redis-server was installed but is not on PATH" >&2; exit 1; }

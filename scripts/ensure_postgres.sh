#!/usr/bin/env bash
# Print the folder of PostgreSQL's server programs (initdb, pg_ctl, postgres), installing Debian's
# PostgreSQL first if none is there. Exit 1 with the reason on stderr when it cannot be installed
# (no apt-get, no root, no network): the tests that need it are then skipped naming that reason.
set -euo pipefail
find_bin() {
  for d in /usr/lib/postgresql/*/bin; do
    if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then echo "$d"; return 0; fi
  done
  return 1
}
if find_bin; then exit 0; fi
if ! command -v apt-get >/dev/null; then
  echo "PostgreSQL is not installed and there is no apt-get to install it" >&2; exit 1
fi
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    echo "PostgreSQL is not installed and installing it needs root (apt-get install postgresql)" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends postgresql; } >/dev/null 2>&1; then
  echo "apt-get install postgresql failed (no network to the Debian mirror?)" >&2; exit 1
fi
find_bin || { echo "postgresql was installed but its initdb/pg_ctl were not found under /usr/lib/postgresql" >&2; exit 1; }

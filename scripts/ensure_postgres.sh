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
bash "$(dirname "$0")/apt_install.sh" postgresql PostgreSQL
find_bin || { echo "postgresql was installed but its initdb/pg_ctl were not found under /usr/lib/postgresql" >&2; exit 1; }

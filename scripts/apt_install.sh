#!/usr/bin/env bash
# apt_install.sh PACKAGE WHAT: install Debian's PACKAGE (as root, or through passwordless sudo). Exit 1 with
# the reason on stderr when it cannot be installed (no apt-get, no root, no network); WHAT names the
# missing program in that reason. Used by ensure_postgres.sh and ensure_redis.sh.
set -euo pipefail
package=$1 what=$2
if ! command -v apt-get >/dev/null; then
  echo "$what is not installed and there is no apt-get to install it" >&2; exit 1
fi
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    echo "$what is not installed and installing it needs root (apt-get install $package)" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "$package"; } >/dev/null 2>&1; then
  echo "apt-get install $package failed (no network to the Debian mirror?)" >&2; exit 1
fi

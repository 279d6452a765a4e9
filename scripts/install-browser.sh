#!/usr/bin/env bash
# Installs Debian's chromium for the browser tests (tests/browser/) when it is missing.
# playwright-core drives /usr/bin/chromium; no browser is ever downloaded from elsewhere.
set -euo pipefail

if dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed" \
    && [ -x /usr/bin/chromium ]; then
  exit 0
fi

echo "installing: chromium"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
[ -x /usr/bin/chromium ] || { echo "chromium is installed but /usr/bin/chromium is missing" >&2; exit 1; }

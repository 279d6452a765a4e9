#!/usr/bin/env bash
# Installs what is missing and builds build/atrium (Debian 12).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[ -f build/build.ninja ] || meson setup build --wrap-mode=nofallback
ninja -C build

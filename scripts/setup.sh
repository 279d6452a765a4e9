#!/usr/bin/env bash
# Installs what is missing and builds build/atrium and the browser client bundle that
# the demo pages load (web/atrium-client.mjs and .js) (Debian 12).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[ -f build/build.ninja ] || meson setup build --wrap-mode=nofallback
ninja -C build
(cd clients/js && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)

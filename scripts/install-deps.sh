#!/usr/bin/env bash
# Installs the Debian 12 packages Atrium needs that are missing (run as root).
#   scripts/install-deps.sh          build and serve: compiler, meson, libraries, and
#                                    Node.js + npm (they build the browser client bundle)
#   scripts/install-deps.sh --test   the same, plus clang and libFuzzer for the fuzz targets
#                                    (tests/fuzz/); the browser for the page tests is
#                                    scripts/install-browser.sh
set -euo pipefail

packages=(g++ meson ninja-build pkg-config cmake ca-certificates openssl libssl-dev libsqlite3-dev libcurl4-openssl-dev
          libwebsockets-dev zlib1g-dev libuv1-dev libluajit-5.1-dev rapidjson-dev doctest-dev libmsgpack-cxx-dev)
# Any Node.js >= 18 will do; Debian 12's own is 18.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
# The fuzz targets (tests/fuzz/README.md): clang 14 and its libFuzzer runtime.
[ "${1:-}" = "--test" ] && packages+=(clang libclang-rt-14-dev)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

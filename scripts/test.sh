#!/usr/bin/env bash
# Builds everything and runs every test (Debian 12; installs what is missing):
#   1. unit tests (doctest) in build/, and the embedding hygiene checks (tests/embed/)
#   2. end-to-end tests (node:test + ws) against the real build/atrium
#   3. the JS client's tests against the real server, and the pages in headless Chromium
#      (Debian's chromium, driven by playwright-core); the Pusher protocol against the real
#      pusher-js, laravel-echo and pusher SDK (tests/pusher/)
#   4. the unit and end-to-end tests again under ASan/UBSan (build-asan/)
#   5. each libFuzzer target for a few seconds (build-fuzz/, clang; scripts/fuzz.sh)
# Ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bash scripts/install-deps.sh --test || exit 1

passed=0
failed=0
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# Adds the counts a doctest or node:test run printed to the totals.
sum() { grep -oE '[0-9]+' | awk '{ s += $1 } END { print s + 0 }'; }
count() {
  local log=$1
  # doctest: "[doctest] test cases: 12 | 12 passed | 0 failed | 0 skipped"
  passed=$((passed + $(grep -hoE 'test cases: *[0-9]+ \| *[0-9]+ passed' "$log" | grep -oE '[0-9]+ passed' | sum)))
  failed=$((failed + $(grep -hE 'test cases:' "$log" | grep -oE '[0-9]+ failed' | sum)))
  # node:test: "# pass 40" / "# fail 0"
  passed=$((passed + $(grep -hoE '^# pass [0-9]+' "$log" | sum)))
  failed=$((failed + $(grep -hoE '^# fail [0-9]+' "$log" | sum)))
}

# Runs a step; a step that fails without counted failures still fails the run.
step() {
  local name=$1; shift
  echo "== $name"
  local log="$logs/$name.log"
  "$@" >"$log" 2>&1
  local rc=$?
  local before=$failed
  count "$log"
  if [ $rc -ne 0 ]; then
    cat "$log"
    [ $failed -eq $before ] && failed=$((failed + 1))
    echo "!! $name failed (exit $rc)"
  else
    tail -n 3 "$log"
  fi
}

unit() {  # build dir
  local dir=$1 t rc=0
  for t in "$dir"/tests/unit/unit_*; do
    [ -f "$t" ] && [ -x "$t" ] || continue
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$t" --no-intro=true || rc=1
  done
  return $rc
}

e2e() {  # binary
  # TAP output: its "# pass N" / "# fail N" lines are what count() reads (Node 18+).
  (cd tests/e2e && ATRIUM_BIN="$root/$1" node --test --test-reporter=tap)
}

step configure bash -c '[ -f build/build.ninja ] || meson setup build --wrap-mode=nofallback -Dwerror=true'
step build ninja -C build
step unit unit build
step embed bash tests/embed/hygiene.sh build
step npm bash -c 'cd tests/e2e && { [ -f package-lock.json ] && npm ci --no-audit --no-fund || npm install --no-audit --no-fund; }'
# The client bundles are built first: the server serves them under /_atrium/, and the e2e
# tests fetch them from a clean clone, where they are not yet built (they are gitignored).
step client-npm bash -c 'cd clients/js && npm ci --no-audit --no-fund && npm run build'
step e2e e2e build/atrium
step client bash -c "cd clients/js && ATRIUM_BIN=$root/build/atrium npm test"
step browser-deps bash -c 'bash scripts/install-browser.sh && cd tests/browser && npm ci --no-audit --no-fund'
step browser bash -c "cd tests/browser && ATRIUM_BIN=$root/build/atrium npm test"
# Pusher compatibility (docs/pusher.md): the real pusher-js, laravel-echo and pusher SDK, in
# Node and (pusher-js' browser bundle) in the same Chromium.
step pusher-npm bash -c 'cd tests/pusher && npm ci --no-audit --no-fund'
pusher() {  # binary
  (cd tests/pusher && ATRIUM_BIN="$root/$1" node --test --test-reporter=tap)
}
step pusher pusher build/atrium
step configure-asan bash -c '[ -f build-asan/build.ninja ] || meson setup build-asan --wrap-mode=nofallback -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug'
step build-asan ninja -C build-asan
step unit-asan unit build-asan
ASAN_OPTIONS=detect_leaks=1 step e2e-asan e2e build-asan/atrium
ASAN_OPTIONS=detect_leaks=1 step pusher-asan pusher build-asan/atrium

# Every libFuzzer target briefly (tests/fuzz/README.md): clang build in build-fuzz/, the
# seed corpora plus 5 s of mutation each; a crash fails the step ("# pass/fail N" per target).
step fuzz bash scripts/fuzz.sh --seconds 5

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

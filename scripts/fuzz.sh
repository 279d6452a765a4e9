#!/usr/bin/env bash
# Builds and runs the libFuzzer targets (tests/fuzz/README.md), one after another:
#   bash scripts/fuzz.sh [--seconds N | --runs N] [--keep] [target ...] [-- libFuzzer flags]
#     --seconds N   run each target for N seconds (default 30)
#     --runs N      run each target for N inputs instead
#     --keep        keep the scratch dir (the grown corpora) and print where it is
#     target        request json lua_json diff http jwt pusher msgpack inflate (default: all)
# Configures build-fuzz/ with clang if it is not there, builds only the targets, copies each
# seed corpus (tests/fuzz/corpus/<target>/) to a scratch dir (the repo never grows), and
# prints one line per target: executions, exec/s, coverage (libFuzzer's cov: and ft: from
# its last status line) and crashes. Then "# pass N" / "# fail N" (targets), as
# scripts/test.sh counts them. Exits non-zero when a target crashed, with the reproducer.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

all_targets=(request json lua_json diff http jwt pusher msgpack inflate)
mode=seconds
amount=30
keep=0
targets=()
extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) mode=seconds; amount=${2:?--seconds needs a number}; shift 2 ;;
    --runs) mode=runs; amount=${2:?--runs needs a number}; shift 2 ;;
    --keep) keep=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [ -d "tests/fuzz/corpus/$t" ] || { echo "fuzz.sh: no target '$t' (${all_targets[*]})" >&2; exit 2; }
done
[[ $amount =~ ^[0-9]+$ ]] || { echo "fuzz.sh: not a number: $amount" >&2; exit 2; }

dir=build-fuzz
if ! command -v clang++ >/dev/null 2>&1; then
  echo "fuzz.sh: clang++ is missing (scripts/install-deps.sh --test installs clang and libclang-rt-14-dev)" >&2
  exit 1
fi
if [ ! -f "$dir/build.ninja" ]; then
  echo "configuring $dir (clang, libFuzzer, ASan/UBSan)"
  # -O1 with line tables, as OSS-Fuzz builds: a fifth less to compile than -O2 -g, and
  # stack traces still name file:line. Only the fuzz targets and what they link are built.
  CC=clang CXX=clang++ meson setup "$dir" --wrap-mode=nofallback -Dfuzz=true -Dtests=disabled \
    -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=plain -Doptimization=1 \
    -Dcpp_args=-gline-tables-only >"$dir.log" 2>&1 ||
    { cat "$dir.log"; rm -f "$dir.log"; exit 1; }
  rm -f "$dir.log"
fi
build_targets=()
for t in "${targets[@]}"; do build_targets+=("tests/fuzz/fuzz_$t"); done
echo "building ${build_targets[*]}"
build_log=$(mktemp)
if ! ninja -C "$dir" "${build_targets[@]}" >"$build_log" 2>&1; then
  cat "$build_log"; rm -f "$build_log"
  echo "fuzz.sh: build failed" >&2
  exit 1
fi
rm -f "$build_log"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/atrium-fuzz.XXXXXX")
crashed=0
# rapidjson 1.1.0 (Debian's) adds an offset to a null pointer in its own stack: not ours.
export UBSAN_OPTIONS="suppressions=$root/tests/fuzz/ubsan.supp:halt_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"

dict_of() {
  case $1 in
    json|lua_json|diff) echo tests/fuzz/json.dict ;;
    *) [ -f "tests/fuzz/$1.dict" ] && echo "tests/fuzz/$1.dict" ;;
  esac
}

passed=0
failed=0
total_execs=0
started=$SECONDS
summary=()
for t in "${targets[@]}"; do
  work="$scratch/$t"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp tests/fuzz/corpus/"$t"/* "$work/corpus/"
  args=(-print_final_stats=1 -artifact_prefix="$work/artifacts/" -timeout=30 -rss_limit_mb=2048
        -max_len=4096)
  dict=$(dict_of "$t")
  [ -n "$dict" ] && args+=(-dict="$dict")
  if [ $mode = seconds ]; then
    args+=(-max_total_time="$amount")
    limit=$((amount + 120))           # start-up included; a hung target cannot stall the run
  else
    args+=(-runs="$amount")
    limit=0
  fi
  log="$work/log"
  if [ $limit -gt 0 ]; then
    timeout -k 10 "$limit" "$dir/tests/fuzz/fuzz_$t" "${args[@]}" "${extra[@]}" "$work/corpus" >"$log" 2>&1
  else
    "$dir/tests/fuzz/fuzz_$t" "${args[@]}" "${extra[@]}" "$work/corpus" >"$log" 2>&1
  fi
  rc=$?
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$')
  rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$')
  status=$(grep -E '^#[0-9]+' "$log" | grep 'cov: ' | tail -1)
  [ -z "$execs" ] && execs=$(echo "$status" | grep -oE '^#[0-9]+' | tr -d '#')
  cov=$(echo "$status" | grep -oE 'cov: [0-9]+' | grep -oE '[0-9]+')
  ft=$(echo "$status" | grep -oE 'ft: [0-9]+' | grep -oE '[0-9]+')
  crashes=$(find "$work/artifacts" -type f | wc -l)
  [ $rc -ne 0 ] && [ "$crashes" -eq 0 ] && crashes=1   # died without an artifact (timeout, init)
  total_execs=$((total_execs + ${execs:-0}))
  line=$(printf 'fuzz %-9s execs %10s  exec/s %7s  cov %6s  ft %6s  crashes %s' \
         "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$crashes")
  echo "$line"
  summary+=("$line")
  if [ "$crashes" -gt 0 ]; then
    failed=$((failed + 1))
    crashed=1
    keep=1
    echo "!! fuzz_$t failed (exit $rc); the end of its log ($log):"
    grep -vE '^#[0-9]+ |^INFO:|^MS: ' "$log" | tail -n 40 | sed 's/^/   /'
    for a in "$work"/artifacts/*; do
      [ -f "$a" ] || continue
      echo "   reproducer: $a"
      echo "   rerun:      UBSAN_OPTIONS=suppressions=$root/tests/fuzz/ubsan.supp:halt_on_error=1 $dir/tests/fuzz/fuzz_$t $a"
      echo "   keep it:    cp $a tests/fuzz/crashes/$t-$(basename "$a")   (and a line in tests/fuzz/crashes/README.md)"
    done
  else
    passed=$((passed + 1))
  fi
done

echo "# pass $passed"
echo "# fail $failed"
if [ $keep -eq 1 ]; then
  echo "scratch (corpora, logs, artifacts): $scratch"
else
  rm -rf "$scratch"
fi
echo "fuzz: ${#targets[@]} targets, $total_execs executions in $((SECONDS - started)) s, $failed crashed"
[ $crashed -eq 0 ]

#!/usr/bin/env bash
# The fan-out benchmarks of bench/README.md: Atrium under the project's own load generator
# (bench/load/, usage at the top of main.c), server pinned to one core, generator to the other.
#
#   bash bench/run.sh                  every scenario (about 14 minutes)
#   bash bench/run.sh fanout state     some of them
#
# Scenarios: fanout (untyped emit at ~200k and ~1M deliveries/s, and the coalescing-window
# curve), typed (the same through an action of bench/rooms/fan.lua), max (shorter intervals
# until delivery falls behind), idle (2,000 joined clients: RSS per connection), state
# (bench/rooms/field.lua, 1,000 members moving 20 times/s), rooms (10,000 rooms x 5
# members, on both event loops), micro (hook and diff microbenchmarks), tls (wss:// beside
# ws:// at ~200k and ~1M deliveries/s, and TLS handshakes per second), pusher (the same
# fan-out through the Pusher endpoint beside Atrium's own). bench/peers.sh runs
# the peers side by side.
#
# Everything stays on 127.0.0.1 and every run is bounded by `timeout`. Results:
# bench/results/<stamp>/<scenario>.jsonl and a Markdown summary on stdout.
# Knobs (environment): BUILD (build-bench), OUTDIR, SERVER_CPU (0), LOAD_CPU (1), WARMUP (3),
# DURATION (10), WINDOWS_US ("0 500 1000 2000 3000 4000"), MAX_INTERVALS_US,
# ATRIUM_BIN (a server to measure instead of $BUILD/atrium), EXTRA_SERVER_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
. bench/common.sh

BUILD=${BUILD:-build-bench}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
WARMUP=${WARMUP:-3}
DURATION=${DURATION:-10}
WINDOWS_US=${WINDOWS_US:-"0 500 1000 2000 3000 4000"}
MAX_INTERVALS_US=${MAX_INTERVALS_US:-"5000 2500 1500 1000 750 500"}
OUTDIR=${OUTDIR:-bench/results/$(date +%Y%m%d-%H%M%S)}
EXTRA_SERVER_ARGS=${EXTRA_SERVER_ARGS:-}
mkdir -p "$OUTDIR"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# A release build of its own, so the figures are not those of the test build (-O2, asserts).
if [ ! -d "$BUILD" ]; then
  meson setup "$BUILD" --buildtype=release -Dtests=disabled --wrap-mode=nofallback >/dev/null
fi
ninja -C "$BUILD" atrium bench/atrium-load bench/hook_bench bench/diff_bench >/dev/null
SERVER_BIN=${ATRIUM_BIN:-$root/$BUILD/atrium}
LOAD="$root/$BUILD/bench/atrium-load"

SERVER_PID=""
port=9600
stop_server() {
  stop_pid "$SERVER_PID"
  SERVER_PID=""
}
trap stop_server EXIT

# start_server [extra serve flags...]: a fresh server on a new port, pinned to SERVER_CPU.
start_server() {
  port=$((port + 1))
  local log="$OUTDIR/server-$port.log"
  # shellcheck disable=SC2086
  taskset -c "$SERVER_CPU" "$SERVER_BIN" serve --rooms bench/rooms --port "$port" \
    --host 127.0.0.1 --public "" --log-level warn $EXTRA_SERVER_ARGS "$@" >"$log" 2>&1 &
  SERVER_PID=$!
  wait_listening "$log" "$SERVER_PID" "listening on 127.0.0.1:$port"
}

# load SCENARIO LABEL [atrium-load flags...]: one generator run against the running server;
# appends its JSON line, tagged, to $OUTDIR/SCENARIO.jsonl and prints it.
load() {
  local scenario=$1 label=$2
  shift 2
  local out
  out=$(timeout 300 taskset -c "$LOAD_CPU" "$LOAD" --port "$port" --server-pid "$SERVER_PID" \
        "$@" 2>>"$OUTDIR/load.log") || true
  [ -n "$out" ] || out='{"error":"no result (see load.log)"}'
  out="{\"scenario\":\"$scenario\",\"label\":\"$label\",${out#\{}"
  echo "$out" >>"$OUTDIR/$scenario.jsonl"
  echo "$out"
}

fanout() {
  for iv in 50000 10000; do
    for w in $WINDOWS_US; do
      start_server --coalesce-us "$w"
      load fanout "emit-${iv}us-window-${w}us" --mode emit --clients 100 --interval-us "$iv" \
        --warmup "$WARMUP" --duration "$DURATION"
      stop_server
    done
    # The same on the epoll loop, default window (--event-loop, net/event_loop.hpp).
    start_server --event-loop libuv
    load fanout "emit-${iv}us-libuv" --mode emit --clients 100 --interval-us "$iv" \
      --warmup "$WARMUP" --duration "$DURATION"
    stop_server
  done
}

typed() {
  for iv in 50000 10000; do
    start_server
    load typed "call-${iv}us" --mode call --room fan:1 --clients 100 --interval-us "$iv" \
      --warmup "$WARMUP" --duration "$DURATION"
    stop_server
  done
}

max() {
  for iv in $MAX_INTERVALS_US; do
    start_server
    r=$(load max "emit-${iv}us" --mode emit --clients 100 --interval-us "$iv" \
          --warmup 2 --duration 5)
    stop_server
    sustainable "$r" || break
  done
}

idle() {
  start_server
  sleep 1
  load idle idle-2000 --mode idle --clients 2000 --hold 10
  stop_server
}

state() {
  for loop in poll libuv; do
    start_server --event-loop "$loop"
    load state "field-1000-$loop" --mode state --room field:1 --clients 1000 \
      --interval-us 50000 --warmup "$WARMUP" --duration "$DURATION"
    stop_server
  done
  # The same room written by direct mutation: each move scans the whole players map.
  start_server
  load state field-scan-100 --mode state --room field_scan:1 --clients 100 \
    --interval-us 50000 --warmup "$WARMUP" --duration "$DURATION"
  stop_server
}

rooms() {
  for loop in poll libuv; do
    start_server --event-loop "$loop"
    load rooms "rooms-10000x5-$loop" --mode rooms --clients 2000 --rooms-per-client 25 \
      --group 5 --interval-us 1000000 --warmup "$WARMUP" --duration "$DURATION"
    stop_server
  done
}

# A self-signed certificate for 127.0.0.1 in $OUTDIR/tls/KIND.{crt,key}: KIND ec (P-256) or rsa.
make_cert() {
  local kind=$1 dir="$OUTDIR/tls" newkey
  mkdir -p "$dir"
  if [ "$kind" = ec ]; then newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256); else newkey=(-newkey rsa:2048); fi
  openssl req -x509 "${newkey[@]}" -nodes -keyout "$dir/$kind.key" -out "$dir/$kind.crt" -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
}

# Server CPU time so far, in clock ticks (utime + stime of /proc/PID/stat).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# handshakes KIND: full TLS handshakes (openssl s_time -new: no resumption, one at a time,
# on LOAD_CPU) for DURATION s against the running server; one line of tls-handshakes.txt.
handshakes() {
  local kind=$1 t0 t1 c0 c1 out n
  c0=$(cpu_ticks "$SERVER_PID")
  t0=$(date +%s.%N)
  out=$(timeout $((DURATION + 20)) taskset -c "$LOAD_CPU" openssl s_time -connect "127.0.0.1:$port" \
        -new -time "$DURATION" -CAfile "$OUTDIR/tls/$kind.crt" -verify 1 2>&1) || true
  t1=$(date +%s.%N)
  c1=$(cpu_ticks "$SERVER_PID")
  n=$(sed -n 's/^\([0-9]*\) connections in [0-9.]*s;.*/\1/p' <<<"$out")
  awk -v k="$kind" -v n="${n:-0}" -v t0="$t0" -v t1="$t1" -v c="$((c1 - c0))" \
      -v hz="$(getconf CLK_TCK)" 'BEGIN {
        t = t1 - t0; cpu = c / hz; printf "handshake-%s handshakes=%d seconds=%.2f per_s=%.0f server_cpu_pct=%.1f server_us_per_handshake=%.0f\n",
        k, n, t, n / t, 100 * cpu / t, n ? 1e6 * cpu / n : 0 }' | tee -a "$OUTDIR/tls-handshakes.txt"
}

# TLS (issue 18): the fan-out of `fanout` (default window) over wss:// and over ws://, runs
# interleaved, each pair twice; then handshakes per second with a P-256 and an RSA-2048
# certificate. The server CPU ratios are printed at the end (and in tls.md).
tls() {
  make_cert ec
  make_cert rsa
  for iv in 50000 10000; do
    for rep in 1 2; do
      start_server
      load tls "ws-${iv}us-$rep" --mode emit --clients 100 --interval-us "$iv" \
        --warmup "$WARMUP" --duration "$DURATION"
      stop_server
      start_server --tls-cert "$OUTDIR/tls/ec.crt" --tls-key "$OUTDIR/tls/ec.key"
      load tls "wss-${iv}us-$rep" --mode emit --clients 100 --interval-us "$iv" \
        --warmup "$WARMUP" --duration "$DURATION" --tls "$OUTDIR/tls/ec.crt"
      stop_server
    done
  done
  for kind in ec rsa; do
    start_server --tls-cert "$OUTDIR/tls/$kind.crt" --tls-key "$OUTDIR/tls/$kind.key"
    handshakes "$kind"
    stop_server
  done
  compare tls ws wss | tee "$OUTDIR/tls.md"
}

# compare SCENARIO A B: server CPU of the runs labelled B-<interval>us-* against those labelled
# A-<interval>us-* in $OUTDIR/SCENARIO.jsonl, at each interval: the mean CPU, CPU s per million
# deliveries (comparable even where one side delivered less), delivered %, worst p99.
compare() {
  node -e '
    const [file, a, b] = process.argv.slice(1);
    const rows = require("fs").readFileSync(file, "utf8").trim().split("\n").map(JSON.parse)
      .filter((r) => !r.error);
    const of = (p) => rows.filter((r) => r.label.startsWith(p));
    const mean = (xs, f) => xs.reduce((s, r) => s + f(r), 0) / xs.length;
    for (const iv of [50000, 10000]) {
      const xa = of(`${a}-${iv}us`), xb = of(`${b}-${iv}us`);
      if (!xa.length || !xb.length) continue;
      const cpu = (xs) => mean(xs, (r) => r.server_cpu_pct);
      const perM = (xs) => mean(xs, (r) => (r.server_cpu_pct / 100) / (r.delivered_per_s / 1e6));
      const line = (xs) => `CPU ${cpu(xs).toFixed(1)} %, ${perM(xs).toFixed(3)} s/M deliveries, ` +
        `delivered ${mean(xs, (r) => r.delivered_pct).toFixed(1)} %, p99 ${Math.max(...xs.map((r) => r.p99_us / 1000)).toFixed(1)} ms`;
      console.log(`every ${iv} us: ${a} ${line(xa)} | ${b} ${line(xb)} | ${b}/${a}: CPU ` +
        `${(cpu(xb) / cpu(xa)).toFixed(2)}, per delivery ${(perM(xb) / perM(xa)).toFixed(2)}`);
    }' "$OUTDIR/$1.jsonl" "$2" "$3"
}

# Pusher (issue 20): the fan-out of `fanout` (default window) through the Pusher endpoint (client
# events on private-bench, bench/load/pusher.h) beside Atrium's own emit, runs interleaved,
# each pair twice; the server CPU ratios at the end (and in pusher.md).
pusher() {
  local app=(--pusher-app bench:benchkey:benchsecret --pusher-limit bench:client-events-per-s=100000)
  for iv in 50000 10000; do
    for rep in 1 2; do
      start_server "${app[@]}"
      load pusher "atrium-${iv}us-$rep" --mode emit --clients 100 --interval-us "$iv" \
        --warmup "$WARMUP" --duration "$DURATION"
      stop_server
      start_server "${app[@]}"
      load pusher "pusher-${iv}us-$rep" --mode pusher --clients 100 --interval-us "$iv" \
        --pusher-key benchkey --pusher-secret benchsecret --warmup "$WARMUP" --duration "$DURATION"
      stop_server
    done
  done
  compare pusher atrium pusher | tee "$OUTDIR/pusher.md"
  # The same Pusher load on a channel that is a room (bench/rooms/relay.lua): every client
  # event through the room's onEvent, then relayed by the engine; against the plain channel.
  for iv in 50000 10000; do
    for rep in 1 2; do
      start_server "${app[@]}"
      load pusher "plain-${iv}us-$rep" --mode pusher --clients 100 --interval-us "$iv" \
        --pusher-key benchkey --pusher-secret benchsecret --warmup "$WARMUP" --duration "$DURATION"
      stop_server
      start_server "${app[@]}"
      load pusher "room-${iv}us-$rep" --mode pusher --room relay.bench --clients 100 --interval-us "$iv" \
        --pusher-key benchkey --pusher-secret benchsecret --warmup "$WARMUP" --duration "$DURATION"
      stop_server
    done
  done
  compare pusher plain room | tee -a "$OUTDIR/pusher.md"
  # Presence churn: 1,000 members, each leaving and joining again every 10 s, then every 2 s
  # (100 and 500 churns/s: 200 and 1,000 joins and leaves per second, each told to 999 others).
  for iv in 10000000 2000000; do
    start_server "${app[@]}" --pusher-limit bench:presence-members=1000
    load pusher "churn-${iv}us" --mode churn --clients 1000 --interval-us "$iv" \
      --pusher-key benchkey --pusher-secret benchsecret --warmup "$WARMUP" --duration "$DURATION"
    stop_server
  done
  node -e '
    const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse)
      .filter((r) => !r.error && r.label.startsWith("churn-"));
    for (const r of rows)
      console.log(`presence churn, 1,000 members: ${(2 * r.sent_per_s).toFixed(0)} joins and leaves/s, ` +
        `${r.delivered_per_s.toFixed(0)} member events/s (${r.delivered_pct.toFixed(1)} %), server CPU ${r.server_cpu_pct.toFixed(1)} %`);
  ' "$OUTDIR/pusher.jsonl" | tee -a "$OUTDIR/pusher.md"
}

micro() {
  taskset -c "$SERVER_CPU" "$BUILD/bench/hook_bench" | tee "$OUTDIR/hook_bench.md"
  taskset -c "$SERVER_CPU" "$BUILD/bench/diff_bench" | tee "$OUTDIR/diff_bench.md"
}

scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(fanout typed max idle state rooms micro tls pusher)
{
  conditions
  echo "server: $SERVER_BIN (cpu $SERVER_CPU) $EXTRA_SERVER_ARGS; generator: $LOAD (cpu $LOAD_CPU)"
} | tee "$OUTDIR/conditions.txt"
for s in "${scenarios[@]}"; do
  case $s in
    fanout|typed|max|idle|state|rooms|micro|tls|pusher) echo "=== $s"; "$s" ;;
    *) echo "unknown scenario: $s (fanout typed max idle state rooms micro tls pusher)" >&2; exit 2 ;;
  esac
done
node bench/summarize.mjs "$OUTDIR"

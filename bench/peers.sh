#!/usr/bin/env bash
# Atrium side by side with its peers, in one run, on loopback (bench/README.md "Peers"):
#   - the Node stand-in that speaks the Atrium protocol (atrium-lite.mjs of the team's peer
#     harness), driven by the same generator as Atrium: ~200k and ~1M deliveries/s (Atrium
#     also through a typed room's action), the highest sustainable rate, and idle memory;
#   - the harness's own generator (wsload) against both servers, as a cross-check of ours;
#   - the state room: Atrium's bench/rooms/field.lua under our generator against the
#     harness's Colyseus 0.16 state room under wsload --state, 1,000 clients each;
#   - encodings: that state room with each of JSON, JSON + permessage-deflate, MessagePack,
#     MessagePack + permessage-deflate, then Colyseus, twice; and fan-out at ~1M
#     deliveries/s with each (the server CPU each costs against plain JSON).
#
#   PEER_BENCH=DIR bash bench/peers.sh   (about 13 minutes; DIR: the team's peer harness)
#   bash bench/peers.sh state      some of the parts: fanout max idle state encodings
#
# The harness is copied to a temporary folder and its npm packages installed there (pinned
# versions, its package.json); nothing of it enters this repository. Knobs: PEER_BENCH
# (required), BUILD (build-bench), OUTDIR, SERVER_CPU (0), LOAD_CPU (1),
# MAX_INTERVALS_US, STATE_CLIENTS (1000).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
. bench/common.sh
all_parts=(fanout max idle state encodings)   # each a function below, run in this order by default
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=("${all_parts[@]}")
for part in "${parts[@]}"; do
  [[ " ${all_parts[*]} " == *" $part "* ]] ||
    { echo "unknown part: $part (${all_parts[*]})" >&2; exit 2; }
done

PEER_BENCH=${PEER_BENCH:-}
[ -n "$PEER_BENCH" ] && [ -d "$PEER_BENCH" ] ||
  { echo "set PEER_BENCH to the peer harness folder (atrium-lite.mjs, wsload, the Colyseus room)" >&2; exit 2; }
BUILD=${BUILD:-build-bench}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
MAX_INTERVALS_US=${MAX_INTERVALS_US:-"5000 2500 1500 1000 750 500"}
STATE_CLIENTS=${STATE_CLIENTS:-1000}
OUTDIR=$(realpath -m "${OUTDIR:-bench/results/peers-$(date +%Y%m%d-%H%M%S)}")
mkdir -p "$OUTDIR"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

[ -d "$PEER_BENCH" ] || { echo "no peer harness at $PEER_BENCH (set PEER_BENCH)" >&2; exit 2; }
if [ ! -d "$BUILD" ]; then
  meson setup "$BUILD" --buildtype=release -Dtests=disabled --wrap-mode=nofallback >/dev/null
fi
ninja -C "$BUILD" atrium bench/atrium-load >/dev/null
ATRIUM="$root/$BUILD/atrium"
LOAD="$root/$BUILD/bench/atrium-load"

harness=$(mktemp -d "${TMPDIR:-/tmp}/atrium-peers.XXXXXX")
SERVER_PID=""
stop_server() {
  stop_pid "$SERVER_PID"
  SERVER_PID=""
}
cleanup() { stop_server; rm -rf -- "$harness"; }
trap cleanup EXIT

cp -r "$PEER_BENCH"/. "$harness"/
rm -rf "$harness/node_modules" "$harness/results"
(cd "$harness" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
gcc -O2 -Wall -o "$harness/wsload" "$harness/wsload.c"

port=9700
# start SERVER [flags...]: atrium, atrium-lite or colyseus on a new port, pinned.
start() {
  local server=$1
  shift
  port=$((port + 1))
  local log="$OUTDIR/$server-$port.log" ready="listening"
  case $server in
    atrium)
      taskset -c "$SERVER_CPU" "$ATRIUM" serve --rooms bench/rooms --port "$port" \
        --host 127.0.0.1 --public "" --log-level warn "$@" >"$log" 2>&1 &
      ready="listening on 127.0.0.1:$port" ;;
    atrium-lite)
      (cd "$harness" && exec taskset -c "$SERVER_CPU" node --expose-gc servers/atrium-lite.mjs \
        "$port") >"$log" 2>&1 & ;;
    colyseus)
      (cd "$harness" && NODE_ENV=production exec taskset -c "$SERVER_CPU" node --expose-gc \
        servers/colyseus-server.mjs "$port") >"$log" 2>&1 & ;;
  esac
  SERVER_PID=$!
  wait_listening "$log" "$SERVER_PID" "$ready"
}

# record FILE SERVER LABEL JSON: tags one result line and keeps it.
record() {
  local out=${4:-'{"error":"no result"}'}
  out="{\"peer\":\"$2\",\"label\":\"$3\",${out#\{}"
  echo "$out" >>"$OUTDIR/$1.jsonl"
  echo "$out"
}
ours() { # FILE SERVER LABEL flags...: our generator against the running server
  local file=$1 server=$2 label=$3
  shift 3
  record "$file" "$server" "$label" "$(timeout 300 taskset -c "$LOAD_CPU" "$LOAD" --port "$port" \
    --server-pid "$SERVER_PID" "$@" 2>>"$OUTDIR/load.log" || true)"
}
theirs() { # FILE SERVER LABEL flags...: the harness's wsload against the running server
  local file=$1 server=$2 label=$3
  shift 3
  record "$file" "$server" "$label" "$(timeout 300 taskset -c "$LOAD_CPU" "$harness/wsload" \
    --port "$port" --server-pid "$SERVER_PID" "$@" 2>>"$OUTDIR/wsload.log" || true)"
}

{
  conditions
  echo "node: $(node --version); server cpu $SERVER_CPU, generator cpu $LOAD_CPU"
} | tee "$OUTDIR/conditions.txt"

fanout() {
  echo "=== fan-out: 100 clients, one room, ~200k and ~1M deliveries/s"
  for iv in 50000 10000; do
    for server in atrium atrium-lite; do
      start "$server"
      ours fanout "$server" "emit-${iv}us" --mode emit --room bench --clients 100 \
        --interval-us "$iv" --warmup 3 --duration 10
      theirs fanout-wsload "$server" "wsload-${iv}us" --proto atrium --room bench --clients 100 \
        --interval-us "$iv" --size 100 --warmup 2 --duration 5
      stop_server
    done
    # The typed room (bench/rooms/fan.lua: an action that emits to the others) at the same
    # rate, in the same run; the stand-in has no scripts, so its emit row is the comparison.
    start atrium
    ours fanout atrium "call-${iv}us" --mode call --room fan:1 --clients 100 \
      --interval-us "$iv" --warmup 3 --duration 10
    stop_server
  done
}

max() {
  echo "=== max sustainable (>= 98 % delivered, p99 <= 100 ms)"
  for server in atrium atrium-lite; do
    for iv in $MAX_INTERVALS_US; do
      start "$server"
      r=$(ours max "$server" "emit-${iv}us" --mode emit --room bench --clients 100 \
            --interval-us "$iv" --warmup 2 --duration 5)
      echo "$r"
      stop_server
      sustainable "$r" || break
    done
  done
}

idle() {
  echo "=== idle: 2,000 clients joined to one room"
  for server in atrium atrium-lite; do
    start "$server"
    sleep 1
    theirs idle "$server" idle-2000 --proto atrium --room bench --clients 2000 --idle --hold 10 \
      --gc-signal
    stop_server
  done
}

state() {
  echo "=== state room: $STATE_CLIENTS members, 20 moves/s each, patches every 50 ms"
  for loop in poll libuv; do
    start atrium --event-loop "$loop"
    ours state atrium "field-$STATE_CLIENTS-$loop" --mode state --room field:1 \
      --clients "$STATE_CLIENTS" --interval-us 50000 --warmup 3 --duration 10
    stop_server
  done
  start colyseus
  theirs state colyseus "state-$STATE_CLIENTS" --proto colyseus --room state --state \
    --clients "$STATE_CLIENTS" --interval-us 50000 --warmup 3 --duration 10
  stop_server
}

encodings() {
  echo "=== encodings: the state room ($STATE_CLIENTS members) and fan-out at ~1M deliveries/s"
  local enc deflate
  for round in 1 2; do
    for enc in json msgpack; do
      for deflate in off on; do
        start atrium --event-loop libuv
        ours encodings atrium "state-$enc-deflate-$deflate-$round" --mode state --room field:1 \
          --clients "$STATE_CLIENTS" --interval-us 50000 --warmup 3 --duration 10 \
          --encoding "$enc" --deflate "$deflate"
        stop_server
      done
    done
    start colyseus
    theirs encodings colyseus "state-$STATE_CLIENTS-$round" --proto colyseus --room state --state \
      --clients "$STATE_CLIENTS" --interval-us 50000 --warmup 3 --duration 10
    stop_server
  done
  # Fan-out events are 166 bytes: under --deflate-min-bytes (256), so deflate leaves them
  # alone; the last row compresses every one of them, to show what that would cost.
  for round in 1 2; do
    for run in "json off" "json on" "msgpack off" "msgpack on" "json on 64"; do
      set -- $run
      start atrium ${3:+--deflate-min-bytes $3}
      ours encodings-fanout atrium "emit-$1-deflate-$2${3:+-min$3}-$round" --mode emit --room bench \
        --clients 100 --interval-us 10000 --warmup 3 --duration 10 --encoding "$1" --deflate "$2"
      stop_server
    done
  done
}

for part in "${parts[@]}"; do "$part"; done

node bench/summarize.mjs "$OUTDIR"

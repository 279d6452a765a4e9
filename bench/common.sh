# Shared by bench/run.sh and bench/peers.sh (sourced, not run).

# wait_listening LOG PID TEXT: waits up to 10 s for TEXT in the server's LOG; prints the log
# and fails when the server exits or never gets there.
wait_listening() {
  local log=$1 pid=$2 text=$3
  for _ in $(seq 1 100); do
    grep -q "$text" "$log" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "the server did not start:" >&2
  cat "$log" >&2
  return 1
}

# stop_pid PID: stops a server started in the background and waits for it.
stop_pid() {
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# field NAME JSON: one scalar field of a result line.
field() { sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" <<<"$2"; }

# sustainable JSON: >= 98 % delivered and p99 <= 100 ms (issue 6's "max sustainable").
sustainable() {
  awk -v d="$(field delivered_pct "$1")" -v p="$(field p99_us "$1")" \
    'BEGIN { exit !(d != "" && d >= 98 && p <= 100000) }'
}

# conditions: the machine and its load, for the results folder.
conditions() {
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "kernel: $(uname -r); load before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
}

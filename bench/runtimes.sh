#!/usr/bin/env bash
# Verdicts on real captures of the example services that are not written in Go: live `gate run`
# against real Node.js (`examples/node-service`, @datadog/pprof) and Rust
# (`examples/rust-service`, the pprof crate) processes, A/A and with `computeChecksum` /
# `compute_checksum` made 2x slower in the candidate, one and three pods a side, under the
# default policy. Prints one row per cell (fail / inconclusive / pass, and whether a fail names
# the planted function in the verdict's summary), with the machine's load beside it.
#
#   bash bench/runtimes.sh
#
# Environment:
#   GATE          the gate binary (default target/debug/gate)
#   RT_RUNS       runs per cell (default 4)
#   RT_OUT        where the runs' reports go (default /tmp/runtimes)
#
# Each run starts its own processes (the same calibrated rate on both sides) and stops them.
# The Node.js runs capture 9 s in 3 windows at 0.15 core a process, the Rust runs 15 s in 3
# windows at 0.35 core (its profiler samples at 100 Hz of CPU time), as tests/runtimes.rs does.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

GATE="${GATE:-target/debug/gate}"
RUNS="${RT_RUNS:-4}"
OUT="${RT_OUT:-/tmp/runtimes}"
[ -x "$GATE" ] || { echo "runtimes.sh: $GATE is not built (cargo build)" >&2; exit 2; }
command -v node >/dev/null || { echo "runtimes.sh: node is required" >&2; exit 2; }

(cd examples/node-service && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
rust_bin=$(bash examples/rust-service/build.sh)
mkdir -p "$OUT"

# shellcheck source=/dev/null
. bench/lib.sh

# Starts one process of RUNTIME with extra flags; appends its URL to the array named by $1.
start() {
  local -n urls_ref=$1
  local runtime=$2 rate=$3
  shift 3
  local log
  log=$(mktemp "$OUT/pod.XXXXXX")
  case $runtime in
    node) node examples/node-service/server.js --pprof-addr 127.0.0.1:0 --rate "$rate" "$@" >"$log" 2>/dev/null & ;;
    rust) "$rust_bin" --pprof-addr 127.0.0.1:0 --rate "$rate" "$@" >"$log" 2>/dev/null & ;;
  esac
  pids+=("$!")
  local _
  for _ in $(seq 1 100); do
    grep -q "pprof listening on" "$log" && break
    sleep 0.1
  done
  urls_ref+=("http://$(sed -n 's/^pprof listening on //p' "$log")")
  rm -f "$log"
}


printf '%-8s %4s %-8s %5s %6s %13s %5s %6s %7s  %s\n' runtime pods scenario runs fail inconclusive warn pass named "load (1 min, before -> after)"
for runtime in node rust; do
  case $runtime in
    node)
      rate=$(node examples/node-service/server.js --calibrate --load 0.15)
      fn=computeChecksum duration=9s ;;
    rust)
      rate=$("$rust_bin" --calibrate --load 0.35)
      fn=compute_checksum duration=15s ;;
  esac
  for pods in 1 3; do
    for scenario in aa 2x; do
      fail=0 inconclusive=0 warn=0 pass=0 named=0 before=$(load1)
      for run in $(seq 1 "$RUNS"); do
        baseline=() candidate=()
        for _ in $(seq 1 "$pods"); do start baseline "$runtime" "$rate"; done
        for _ in $(seq 1 "$pods"); do
          if [ "$scenario" = 2x ]; then
            start candidate "$runtime" "$rate" --cpu-regress "$fn=2"
          else
            start candidate "$runtime" "$rate"
          fi
        done
        args=(run --duration "$duration" --windows 3 --format json --no-github)
        for u in "${baseline[@]}"; do args+=(--baseline "$u"); done
        for u in "${candidate[@]}"; do args+=(--candidate "$u"); done
        dir="$OUT/$runtime-$pods-$scenario-$run"
        rm -rf "$dir"
        "$GATE" "${args[@]}" --out "$dir" >"$dir.json" 2>"$dir.log" || true
        cleanup
        outcome=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["verdict"]["outcome"])' "$dir.json" 2>/dev/null || echo error)
        case $outcome in
          fail) fail=$((fail + 1))
                if python3 -c 'import json,sys; sys.exit(0 if sys.argv[2] in json.load(open(sys.argv[1]))["verdict"]["summary"] else 1)' "$dir.json" "$fn"; then
                  named=$((named + 1))
                fi ;;
          inconclusive) inconclusive=$((inconclusive + 1)) ;;
          warn) warn=$((warn + 1)) ;;
          pass) pass=$((pass + 1)) ;;
          *) echo "runtimes.sh: $dir: outcome '$outcome' (see $dir.log)" >&2 ;;
        esac
      done
      printf '%-8s %4s %-8s %5s %6s %13s %5s %6s %7s  %s -> %s\n' "$runtime" "$pods" "$scenario" "$RUNS" "$fail" "$inconclusive" "$warn" "$pass" "$named" "$before" "$(load1)"
    done
  done
done

#!/usr/bin/env bash
# The heap leak rule on real captures of the example Go service, one pod a side: live
# `gate run --profiles heap` against a stable process and a candidate that is the same build
# (A/A) or retains KB of heap per second for ever in main.retainRecord (`-heap-leak KB`), under
# the default policy. Prints one row per leak rate and capture length: how often `heap-growth`
# broke, and how often it broke naming main.retainRecord, with the machine's load beside it.
#
#   bash bench/leaks.sh
#
# Environment:
#   GATE       the gate binary (default target/debug/gate)
#   LEAK_RUNS  runs per cell (default 3)
#   LEAK_KB    leak rates in KB per second, 0 for A/A (default "0 128 512 2048")
#   LEAK_OUT   where the runs' reports go (default /tmp/leaks)
#
# Two captures per rate: 30 s in 6 windows (the default's windows, half its length) and 9 s in
# 3 windows (the fewest a climb is fitted from). Each run starts its own two processes (one
# calibrated rate, 0.25 core each; -duration as a dead man's switch) on 127.0.0.1:0 and stops
# them, also on error or Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

GATE="${GATE:-target/debug/gate}"
RUNS="${LEAK_RUNS:-3}"
RATES="${LEAK_KB:-0 128 512 2048}"
OUT="${LEAK_OUT:-/tmp/leaks}"
[ -x "$GATE" ] || { echo "leaks.sh: $GATE is not built (cargo build)" >&2; exit 2; }
service=$(bash examples/go-service/build.sh)
mkdir -p "$OUT"

# shellcheck source=/dev/null
. bench/lib.sh

# Starts one process with extra flags, its output in LOG; fails if it never listens.
start() {
  local log=$1
  shift
  "$service" -pprof-addr 127.0.0.1:0 -rate "$rate" -duration 120s "$@" >"$log" 2>&1 &
  pids+=("$!")
  local _
  for _ in $(seq 1 100); do
    grep -q "pprof listening on" "$log" && return 0
    sleep 0.1
  done
  echo "leaks.sh: the service did not start (see $log)" >&2
  return 1
}
url() { echo "http://$(sed -n 's/^pprof listening on //p' "$1" | head -1)"; }

rate=$("$service" -calibrate -load 0.25 2>/dev/null | tail -1)
printf '%-10s %-8s %5s %7s %6s %6s %6s  %s\n' "leak KB/s" capture runs broken named held errors "load (1 min, before -> after)"
for kb in $RATES; do
  for capture in 30s:6 9s:3; do
    duration=${capture%%:*} windows=${capture##*:}
    broken=0 named=0 held=0 errors=0 before=$(load1)
    for run in $(seq 1 "$RUNS"); do
      dir="$OUT/leak-$kb-$duration-$run"
      rm -rf "$dir" "$dir".*
      extra=()
      [ "$kb" != 0 ] && extra=(-heap-leak "$kb")
      start "$dir.baseline.log"
      start "$dir.candidate.log" ${extra[@]+"${extra[@]}"}
      sleep 2
      "$GATE" run --baseline "$(url "$dir.baseline.log")" --candidate "$(url "$dir.candidate.log")" \
        --duration "$duration" --windows "$windows" --profiles heap --format json --no-github \
        --out "$dir" >"$dir.json" 2>"$dir.log" || true
      cleanup
      status=$(python3 -c '
import json, sys
rules = json.load(open(sys.argv[1]))["verdict"]["rules"]
rule = next(r for r in rules if r["rule"] == "heap-growth")
print(rule["status"], "named" if rule.get("culprit") == "main.retainRecord" else "")' "$dir.json" 2>/dev/null || echo error)
      case $status in
        broken*) broken=$((broken + 1)); [[ $status == *named ]] && named=$((named + 1)) ;;
        held*) held=$((held + 1)) ;;
        *) errors=$((errors + 1)); echo "leaks.sh: $dir: heap-growth '$status' (see $dir.log)" >&2 ;;
      esac
    done
    printf '%-10s %-8s %5s %7s %6s %6s %6s  %s -> %s\n' "$kb" "$duration/$windows" "$RUNS" "$broken" "$named" "$held" "$errors" "$before" "$(load1)"
  done
done

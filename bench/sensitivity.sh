#!/usr/bin/env bash
# Sensitivity of Profile Gate on REAL captures of the example Go service (issue 16).
#
#   bash bench/sensitivity.sh capture   # ~30 min: 24 batches of 6 processes, each captured once
#   bash bench/sensitivity.sh judge     # every run through `gate diff` (default policy), the table
#   bash bench/sensitivity.sh all       # capture, then judge
#
# Environment:
#   GATE           the gate binary (default target/debug/gate, relative to the repository root)
#   SENS_DATA      where batches and summary.json go (default /tmp/sens)
#   SENS_DURATION  profiled time per batch (default 60s; forms: 60s, 2m, 1m30s)
#   SENS_WINDOWS   matched windows per batch (default 6)
#   SENS_LOAD      CPU of each process, in cores (default 0.25)
#   SENS_JOBS      `gate diff` runs at a time in judge (default 2, at most 2)
#
# What a batch is: six processes of the example service start together, run 3 s, and ONE
# `gate capture` profiles all six in the same windows (default profile set: all six profiles).
# Runs are then formed inside a batch only, so both sides of every run share their windows,
# as `gate run` captures a stable and a canary side. Kinds of batch (every process 0.25 core at
# one common calibrated -rate):
#   aa   6 stable                                          10 batches
#   b15  3 stable + 3 with -cpu-regress computeChecksum=1.5  10 batches
#   b2   3 stable + 3 with -cpu-regress computeChecksum=2     4 batches
# interleaved (aa b15 b2 aa b15 b2 ...) so that changes of machine load spread over all kinds.
# main.computeChecksum is ~24% of the service's CPU (its time lands in crypto/sha256.block).
#
# Layout: $SENS_DATA/go-service, $SENS_DATA/rate (the calibrated -rate, reused on resume),
# $SENS_DATA/batch-NN-KIND/{batch.json, capture.log, pod-<pod>.out|.err, capture/manifest.json,
# capture/profiles/baseline/<pod>/<profile>-<window>.pb.gz}, pods named stable-1.., c15-4..,
# c2-4... batch.json is written last: a folder with it is complete and is skipped on a re-run;
# one without it is captured again (a failed attempt is kept as $SENS_DATA/failed/... for the
# record). judge writes $SENS_DATA/summary.json.
#
# Every process listens on 127.0.0.1 only and gets -duration as a dead man's switch (it exits by
# itself even if this script is killed with SIGKILL); every wait is bounded; the batch's
# processes are stopped on exit, error, Ctrl-C or TERM.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

GATE="${GATE:-target/debug/gate}"
DATA="${SENS_DATA:-/tmp/sens}"
DURATION="${SENS_DURATION:-60s}"
WINDOWS="${SENS_WINDOWS:-6}"
LOAD="${SENS_LOAD:-0.25}"
WARMUP_SECONDS=3

# The batch order: 4 x (aa b15 b2), then 6 x (aa b15): 10 aa, 10 b15, 4 b2.
BATCHES=()
for _ in 1 2 3 4; do BATCHES+=(aa b15 b2); done
for _ in 1 2 3 4 5 6; do BATCHES+=(aa b15); done

log() { printf '[%s] sensitivity: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "$*"; exit 2; }

# seconds DURATION: "60s", "2m", "1m30s", "1h" -> whole seconds (the forms gate and Go accept).
seconds() {
  local d=$1 total=0 n unit
  [[ $d =~ ^([0-9]+[hms])+$ ]] || die "cannot read the duration '$d' (use e.g. 60s, 2m, 1m30s)"
  while [[ $d =~ ^([0-9]+)([hms])(.*)$ ]]; do
    n=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2]} d=${BASH_REMATCH[3]}
    case $unit in h) total=$((total + 3600 * 10#$n)) ;; m) total=$((total + 60 * 10#$n)) ;; s) total=$((total + 10#$n)) ;; esac
  done
  echo "$total"
}

# --- process bookkeeping ------------------------------------------------------------------------
# The pids live in this shell (never set inside $(...), a subshell), so cleanup can reach them.
pids=()
capture_pid=""

# Stops the batch's processes and a running `gate capture`: TERM, up to 5 s, then KILL.
cleanup() {
  local all=("${pids[@]}") p alive _
  [ -n "$capture_pid" ] && all+=("$capture_pid")
  [ "${#all[@]}" -gt 0 ] || return 0
  for p in "${all[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    alive=0
    for p in "${all[@]}"; do if kill -0 "$p" 2>/dev/null; then alive=1; fi; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${all[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${all[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
  capture_pid=""
}
trap cleanup EXIT
trap 'log "interrupted"; cleanup; exit 130' INT
trap 'log "terminated"; cleanup; exit 143' TERM

# CPU seconds (user + system) a process has used so far, from /proc/PID/stat; 0 if it is gone.
cpu_seconds() {
  local stat rest
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  rest=${stat##*) }   # fields after "(comm) "; utime and stime are fields 14 and 15 of the line
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($12 + $13) / hz }' <<<"$rest"
}

# Waits (at most 10 s) for a process to print "pprof listening on ADDR" and prints ADDR.
service_address() {
  local pid=$1 out=$2 i
  for i in $(seq 1 100); do
    if grep -q '^pprof listening on ' "$out" 2>/dev/null; then
      sed -n 's/^pprof listening on //p' "$out" | head -1
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}

# --- one batch ------------------------------------------------------------------------------------
# capture_batch N KIND: starts the batch's six processes, captures them in one `gate capture`,
# stops them, checks the capture is whole and writes batch.json (last, atomically).
capture_batch() {
  local n=$1 kind=$2
  local name dir
  name=$(printf 'batch-%02d-%s' "$n" "$kind")
  dir="$DATA/$name"
  if [ -f "$dir/batch.json" ]; then
    log "$name complete already, skipped"
    return 0
  fi
  if [ -d "$dir" ]; then
    mkdir -p "$DATA/failed"
    mv "$dir" "$DATA/failed/$name-$(date +%Y%m%dT%H%M%S)"
  fi
  mkdir -p "$dir"

  # Roles: stable, c15 (computeChecksum=1.5) or c2 (computeChecksum=2); pods named <role>-<i>.
  local roles
  case $kind in
    aa) roles=(stable stable stable stable stable stable) ;;
    b15) roles=(stable stable stable c15 c15 c15) ;;
    b2) roles=(stable stable stable c2 c2 c2) ;;
    *) die "unknown batch kind $kind" ;;
  esac

  # Foreign go-service processes would take CPU from this batch: count them for the record.
  local foreign load_before
  foreign=$(pgrep -c -f 'go-service .*-pprof-addr' || true)
  load_before=$(cat /proc/loadavg)
  if [ "$foreign" -gt 0 ]; then
    log "warning: $foreign other go-service process(es) running; they compete for CPU"
  fi

  # Start all six at once. -duration: the capture, warm-up and 2 minutes of slack.
  local life=$((DURATION_S + WARMUP_SECONDS + 120))
  local i=0 role flags podnames=()
  for role in "${roles[@]}"; do
    i=$((i + 1))
    case $role in
      stable) flags=() ;;
      c15) flags=(-cpu-regress computeChecksum=1.5) ;;
      c2) flags=(-cpu-regress computeChecksum=2) ;;
    esac
    podnames+=("$role-$i")
    "$BIN" -pprof-addr 127.0.0.1:0 -rate "$RATE" -duration "${life}s" "${flags[@]}" \
      >"$dir/pod-$role-$i.out" 2>"$dir/pod-$role-$i.err" &
    pids+=("$!")
  done

  # Each pod's address, as a named target of gate capture.
  local targets=() addr
  for i in "${!pids[@]}"; do
    if ! addr=$(service_address "${pids[$i]}" "$dir/pod-${podnames[$i]}.out"); then
      log "$name: ${podnames[$i]} did not start: $(tail -3 "$dir/pod-${podnames[$i]}.err")"
      cleanup
      return 1
    fi
    targets+=("${podnames[$i]}=http://$addr")
  done

  sleep "$WARMUP_SECONDS"
  local cpu_before=() t0
  for i in "${!pids[@]}"; do cpu_before+=("$(cpu_seconds "${pids[$i]}")"); done
  t0=$(date +%s.%N)
  log "$name: 6 pods up; capturing $DURATION in $WINDOWS windows (load ${load_before%% *})"

  # One gate capture for all six (matched windows). In the background, so that a signal reaches
  # the traps at once (bash runs traps only between foreground commands); timeout bounds it.
  local rc=0
  timeout --kill-after=10 "$((DURATION_S + 120))" "$GATE" capture --quiet --out "$dir/capture" \
    --duration "$DURATION" --windows "$WINDOWS" "${targets[@]}" >"$dir/capture.log" 2>&1 &
  capture_pid=$!
  wait "$capture_pid" || rc=$?
  capture_pid=""

  # CPU each process got during the capture: a starved process shows well under $LOAD cores.
  local wall cores=()
  wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
  for i in "${!pids[@]}"; do
    cores+=("$(awk -v a="${cpu_before[$i]}" -v b="$(cpu_seconds "${pids[$i]}")" -v w="$wall" \
      'BEGIN { printf "%.3f", (b - a) / w }')")
  done
  local load_after
  load_after=$(cat /proc/loadavg)
  cleanup

  # Whole? Exit 0, no missing profile in the manifest, every pod with WINDOWS CPU profiles.
  local files=0 missing=-1
  if [ -f "$dir/capture/manifest.json" ]; then
    missing=$(jq '.missing | length' "$dir/capture/manifest.json")
    files=$(find "$dir/capture/profiles/baseline" -name 'cpu-*.pb.gz' | wc -l)
  fi
  if [ "$rc" != 0 ] || [ "$missing" != 0 ] || [ "$files" != $((6 * WINDOWS)) ]; then
    log "$name: capture FAILED (exit $rc, $missing missing, $files of $((6 * WINDOWS)) CPU profiles); see $dir/capture.log"
    return 1
  fi

  # batch.json, written last through a rename: its presence marks the batch complete. (Checked
  # by hand: set -e does not apply inside a function called as `capture_batch || ...`.)
  if ! jq -n --argjson index "$n" --arg kind "$kind" --arg names "${podnames[*]}" \
    --arg roles "${roles[*]}" --arg cores "${cores[*]}" \
    --arg lb "$load_before" --arg la "$load_after" --argjson nproc "$(nproc)" \
    --argjson rate "$RATE" --argjson load "$LOAD" --arg duration "$DURATION" \
    --argjson windows "$WINDOWS" --argjson wall "$wall" --argjson foreign "$foreign" \
    --arg gate "$("$GATE" --version 2>/dev/null || echo unknown)" --arg at "$(date -u +%FT%TZ)" \
    '($names | split(" ")) as $n | ($roles | split(" ")) as $r
     | ($cores | split(" ") | map(tonumber)) as $c
     | {index: $index, kind: $kind,
        pods: [range(0; $n | length) | {name: $n[.], role: $r[.], cpu_cores: $c[.]}],
        loadavg_before: ($lb | split(" ")[0:3] | map(tonumber)),
        loadavg_after: ($la | split(" ")[0:3] | map(tonumber)),
        nproc: $nproc, rate: $rate, load_per_process: $load, duration: $duration,
        windows: $windows, capture_wall_seconds: $wall, other_go_service_processes: $foreign,
        gate_version: $gate, finished_at: $at}' >"$dir/batch.json.tmp" ||
    ! mv "$dir/batch.json.tmp" "$dir/batch.json"; then
    log "$name: could not write batch.json"
    return 1
  fi
  log "$name: done in ${wall}s; cores per pod ${cores[*]}; load ${load_after%% *}"
}

capture() {
  [ -x "$GATE" ] || die "no gate binary at $GATE (build it first)"
  command -v jq >/dev/null || die "jq is needed"
  DURATION_S=$(seconds "$DURATION")
  mkdir -p "$DATA"
  # The example service, built once; one calibrated rate for every process of every batch
  # (kept in $DATA/rate, so a resumed capture uses the same one).
  BIN="$DATA/go-service"
  [ -x "$BIN" ] || timeout 600 examples/go-service/build.sh "$BIN" >&2
  if [ -s "$DATA/rate" ]; then
    RATE=$(cat "$DATA/rate")
  else
    RATE=$(timeout 120 "$BIN" -calibrate -load "$LOAD" 2>/dev/null)
    echo "$RATE" >"$DATA/rate"
  fi
  log "$("$GATE" --version); rate $RATE cycles/s per worker (~$LOAD core per process);" \
    "$(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg); ${#BATCHES[@]} batches into $DATA"
  local n failed=0
  for n in "${!BATCHES[@]}"; do
    capture_batch "$((n + 1))" "${BATCHES[$n]}" || failed=$((failed + 1))
  done
  if [ "$failed" -gt 0 ]; then
    log "$failed batch(es) failed; run capture again to retry them (complete ones are skipped)"
    return 1
  fi
  log "capture complete: ${#BATCHES[@]} batches in $DATA"
}

judge() {
  [ -x "$GATE" ] || die "no gate binary at $GATE (build it first)"
  command -v python3 >/dev/null || die "python3 is needed"
  python3 bench/sensitivity.py --gate "$GATE" --data "$DATA" --jobs "${SENS_JOBS:-2}"
}

case "${1:-all}" in
  capture) capture ;;
  judge) judge ;;
  all)
    capture
    judge
    ;;
  *) echo "usage: bench/sensitivity.sh [capture|judge|all]" >&2; exit 2 ;;
esac

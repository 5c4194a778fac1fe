#!/usr/bin/env bash
# Regenerate the shipped example profiles from the example Go service.
#
#   examples/profiles/regenerate.sh
#
# Starts 3 "stable" and 3 "canary" processes of examples/go-service at once (all on
# 127.0.0.1, port 0), then captures WINDOWS matched windows of WINDOW seconds:
# for each window, on every pod at the same instant, the CPU profile and the
# allocs/mutex/block delta profiles (?seconds=WINDOW), then heap and goroutine
# snapshots at the window's end. Output layout:
#   examples/profiles/{stable,canary}/pod-{1,2,3}/{cpu,allocs,mutex,block,heap,goroutine}-<window>.pb.gz
#
# Both sides run with -lock-contention (so mutex/block profiles have content) at one
# common -rate (calibrated once here for LOAD cores per process); the canary also
# has the planted regression CANARY_FLAGS. Tunables (environment):
#   WINDOW=20 WINDOWS=2 LOAD=0.1 WARMUP=3 OUT=<this directory> CANARY_FLAGS="-cpu-regress computeChecksum=2"
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
WINDOW=${WINDOW:-20}
WINDOWS=${WINDOWS:-2}
LOAD=${LOAD:-0.1}
WARMUP=${WARMUP:-3}
OUT=${OUT:-$here}
CANARY_FLAGS=${CANARY_FLAGS:--cpu-regress computeChecksum=2}
PODS=(pod-1 pod-2 pod-3)
SIDES=(stable canary)
# profile file name -> endpoint
declare -A DELTA=([cpu]=profile [allocs]=allocs [mutex]=mutex [block]=block)
SNAPSHOTS=(heap goroutine)

die() { echo "regenerate.sh: $*" >&2; exit 1; }
log() { echo "regenerate.sh: $*" >&2; }

command -v curl >/dev/null 2>&1 || die "curl not found (needed to capture profiles)"
command -v go >/dev/null 2>&1 || die "go not found (needed to build examples/go-service)"
[[ $WINDOW =~ ^[0-9]+$ && $WINDOW -ge 1 ]] || die "WINDOW must be a whole number of seconds >= 1"
[[ $WINDOWS =~ ^[0-9]+$ && $WINDOWS -ge 1 ]] || die "WINDOWS must be a whole number >= 1"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/profile-gate-regen.XXXXXX")
pids=()
cleanup() {
  local pid
  for pid in ${pids[@]+"${pids[@]}"}; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in ${pids[@]+"${pids[@]}"}; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bin=$tmp/go-service
"$root/examples/go-service/build.sh" "$bin" >/dev/null
rate=$("$bin" -calibrate -load "$LOAD" 2>/dev/null)
log "calibrated rate: $rate cycles/s per worker for a load of $LOAD core per process"

# Start all six processes; read each one's address from its first stdout line.
declare -A addr
for side in "${SIDES[@]}"; do
  extra=()
  if [[ $side == canary ]]; then
    read -r -a extra <<<"$CANARY_FLAGS"
  fi
  for pod in "${PODS[@]}"; do
    "$bin" -pprof-addr 127.0.0.1:0 -rate "$rate" -lock-contention ${extra[@]+"${extra[@]}"} \
      >"$tmp/$side-$pod.out" 2>"$tmp/$side-$pod.log" &
    pids+=("$!")
  done
done
i=0
for side in "${SIDES[@]}"; do
  for pod in "${PODS[@]}"; do
    pid=${pids[$i]}
    i=$((i + 1))
    line=
    for _ in $(seq 100); do
      line=$(head -n 1 "$tmp/$side-$pod.out" 2>/dev/null || true)
      [[ -n $line ]] && break
      kill -0 "$pid" 2>/dev/null || { cat "$tmp/$side-$pod.log" >&2; die "$side/$pod exited early"; }
      sleep 0.1
    done
    [[ $line =~ ^pprof\ listening\ on\ (127\.0\.0\.1:[0-9]+)$ ]] ||
      { cat "$tmp/$side-$pod.log" >&2; die "$side/$pod: no address line (got '$line')"; }
    addr[$side/$pod]=${BASH_REMATCH[1]}
    log "$side/$pod (pid $pid) on ${addr[$side/$pod]}"
  done
done
log "warming up for ${WARMUP}s"
sleep "$WARMUP"

# Capture into a staging directory; replace the shipped profiles only on success.
stage=$tmp/out
for side in "${SIDES[@]}"; do
  for pod in "${PODS[@]}"; do
    mkdir -p "$stage/$side/$pod"
  done
done
fetch() { # fetch URL FILE TIMEOUT
  curl --silent --show-error --fail --max-time "$3" --output "$2" "$1"
}
wait_all() { # wait for the given pids; fail if any failed
  local pid failed=0
  for pid in "$@"; do
    wait "$pid" || failed=1
  done
  [[ $failed == 0 ]] || die "a capture request failed"
}
for ((w = 1; w <= WINDOWS; w++)); do
  log "window $w/$WINDOWS: ${WINDOW}s on all pods"
  curls=()
  for side in "${SIDES[@]}"; do
    for pod in "${PODS[@]}"; do
      for name in "${!DELTA[@]}"; do
        fetch "http://${addr[$side/$pod]}/debug/pprof/${DELTA[$name]}?seconds=$WINDOW" \
          "$stage/$side/$pod/$name-$w.pb.gz" $((WINDOW + 20)) &
        curls+=("$!")
      done
    done
  done
  wait_all "${curls[@]}"
  curls=()
  for side in "${SIDES[@]}"; do
    for pod in "${PODS[@]}"; do
      for name in "${SNAPSHOTS[@]}"; do
        fetch "http://${addr[$side/$pod]}/debug/pprof/$name" "$stage/$side/$pod/$name-$w.pb.gz" 20 &
        curls+=("$!")
      done
    done
  done
  wait_all "${curls[@]}"
done

# Every file must be a non-empty gzip stream (pprof protobuf inside).
while IFS= read -r -d '' f; do
  [[ -s $f ]] && gzip -t "$f" 2>/dev/null || die "bad profile: $f"
done < <(find "$stage" -name '*.pb.gz' -print0)

rm -rf "$OUT/stable" "$OUT/canary"
mkdir -p "$OUT"
cp -R "$stage/stable" "$stage/canary" "$OUT/"
log "wrote $(find "$OUT/stable" "$OUT/canary" -name '*.pb.gz' | wc -l) profiles, $(du -sh "$OUT" | cut -f1) in $OUT"

# Show the planted regression (computeChecksum: cumulative CPU per pod and window).
for ((w = 1; w <= WINDOWS; w++)); do
  for pod in "${PODS[@]}"; do
    s=$(go tool pprof -top -cum -unit=ms "$OUT/stable/$pod/cpu-$w.pb.gz" 2>/dev/null |
      awk '$6 == "main.computeChecksum" {print $4}')
    c=$(go tool pprof -top -cum -unit=ms "$OUT/canary/$pod/cpu-$w.pb.gz" 2>/dev/null |
      awk '$6 == "main.computeChecksum" {print $4}')
    log "$pod window $w: main.computeChecksum cum stable ${s:-?} -> canary ${c:-?}"
  done
done

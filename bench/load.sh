#!/usr/bin/env bash
# Load check: `gate run` against 2 x N example-service processes (default N = 20) capturing all
# six profiles, timed and measured under /usr/bin/time. Prints the figures for BENCHMARKS.md.
#
#   bench/load.sh [N] [DURATION] [WINDOWS]      (defaults: 20 12s 3)
#
# Builds the release `gate` and the example Go service first. Every process listens on
# 127.0.0.1 and is stopped when the script ends, however it ends.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

pods="${1:-20}"
duration="${2:-12s}"
windows="${3:-3}"

cargo build --release --locked --bin gate >&2
gate="${CARGO_TARGET_DIR:-target}/release/gate"
service="$(examples/go-service/build.sh)"
[ -x /usr/bin/time ] || { echo "load.sh: /usr/bin/time is missing (Debian: apt-get install time)" >&2; exit 1; }

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A light, fixed load per process, so 2 x N of them fit on a small machine.
rate="$("$service" -calibrate -load 0.02)"
args=()
for side in baseline candidate; do
  for i in $(seq 1 "$pods"); do
    log="$work/$side-$i.log"
    "$service" -pprof-addr 127.0.0.1:0 -rate "$rate" >"$log" 2>&1 &
    pids+=("$!")
  done
done
# Each process prints its address once it listens.
i=0
for side in baseline candidate; do
  for n in $(seq 1 "$pods"); do
    log="$work/$side-$n.log"
    for _ in $(seq 1 300); do
      grep -q '^pprof listening on ' "$log" && break
      sleep 0.1
    done
    addr="$(sed -n 's/^pprof listening on //p' "$log" | head -1)"
    [ -n "$addr" ] || { echo "load.sh: $side process $n did not start: $(cat "$log")" >&2; exit 1; }
    args+=("--$side" "$side-$n=http://$addr")
    i=$((i + 1))
  done
done

echo "load.sh: $i processes up; gate run --duration $duration --windows $windows, all six profiles" >&2
set +e
/usr/bin/time -f '%e %M' -o "$work/time" "$gate" run "${args[@]}" \
  --duration "$duration" --windows "$windows" --out "$work/out" >"$work/stdout" 2>"$work/stderr"
status=$?
set -e
read -r wall rss_kib <"$work/time"
files="$(find "$work/out/profiles" -name '*.pb.gz' | wc -l)"
expected=$((2 * pods * 6 * windows))
bytes="$(du -sb "$work/out/profiles" | cut -f1)"
echo
echo "| processes | profiles | duration x windows | exit | wall | max RSS | profile files | on disk |"
echo "|---:|---|---|---:|---:|---:|---:|---:|"
printf '| 2 x %d | all six | %s x %d | %d | %.1f s | %.0f MiB | %d of %d | %.1f MiB |\n' \
  "$pods" "$duration" "$windows" "$status" "$wall" "$((rss_kib / 1024))" "$files" "$expected" \
  "$(awk -v b="$bytes" 'BEGIN { print b / 1048576 }')"
if [ "$status" -gt 1 ] || [ "$files" -ne "$expected" ]; then
  echo "load.sh: the run did not capture everything; its stderr:" >&2
  tail -20 "$work/stderr" >&2
  exit 1
fi

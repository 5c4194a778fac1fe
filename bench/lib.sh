# shellcheck shell=bash
# Shared by the live benchmarks (sourced, not run): the processes a benchmark starts are kept in
# `pids` and stopped on exit, error, Ctrl-C or TERM; `load1` is the one-minute load average.
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

load1() { cut -d' ' -f1 /proc/loadavg; }

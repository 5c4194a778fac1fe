#!/usr/bin/env bash
# Fuzzes the pure core with cargo-fuzz (libFuzzer): the pprof decoder and aggregation, and the
# policy parser. `scripts/fuzz.sh [SECONDS] [TARGET...]` runs each target for SECONDS (default
# 60); the test command runs it short, a longer run is e.g. `scripts/fuzz.sh 3600`.
#
# Seeds: the example profiles (gzipped and raw), the third-party fixtures, the shipped policies,
# and every input that once failed (fuzz/regressions/TARGET/), which the main test suite also
# replays. A failure leaves the input in fuzz/artifacts/TARGET/: copy it into
# fuzz/regressions/TARGET/, fix the bug, and the suite keeps it fixed.
#
# Runs on the stable toolchain: `--sanitizer none` keeps coverage instrumentation but needs no
# nightly-only sanitizer; Rust's bounds checks and, with --debug-assertions, overflow checks catch
# the rest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decode policy)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz" >&2
  cargo install --locked cargo-fuzz --version 0.13.2
fi

corpus="fuzz/corpus"
mkdir -p "$corpus/decode" "$corpus/policy"
# One file of every profile kind, as written and inflated, and the third-party fixtures.
for f in examples/profiles/stable/pod-1/*-1.pb.gz tests/fixtures/*.pb.gz \
  ../shared/fixtures/third_party/google-pprof/sample.cpu.pb.gz \
  ../shared/fixtures/third_party/google-pprof/go.nomappings.crash.pb.gz; do
  [ -f "$f" ] || continue
  name="$(echo "$f" | tr '/' '_')"
  cp "$f" "$corpus/decode/$name"
  gzip -dc "$f" >"$corpus/decode/$name.raw"
done
cp policies/*.yaml "$corpus/policy/"
for target in decode policy; do
  cp fuzz/regressions/$target/* "$corpus/$target/" 2>/dev/null || true
done

status=0
for target in "${targets[@]}"; do
  echo "fuzz.sh: $target for ${seconds}s" >&2
  # -timeout: one input taking over 10 s is a hang; -rss_limit_mb: over 2 GiB is a memory bug.
  if ! cargo fuzz run --sanitizer none -O --debug-assertions "$target" "$corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=262144 \
    -print_final_stats=1; then
    echo "fuzz.sh: $target failed; the input is in fuzz/artifacts/$target/. Copy it into fuzz/regressions/$target/ and fix the bug." >&2
    status=1
  fi
done
exit "$status"

#!/usr/bin/env bash
# Build the example Rust service (its one dependency, the `pprof` crate, pinned by Cargo.lock).
#   examples/rust-service/build.sh [OUTPUT]
# OUTPUT defaults to target/rust-service/rust-service under the repository root; a relative
# OUTPUT is taken relative to the current directory. Prints the path of the built binary.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/target/rust-service/rust-service}
case $out in
  /*) ;;
  *) out=$PWD/$out ;;
esac

# Its own target folder: the example is not part of the gate's build.
cargo build --release --locked --quiet --manifest-path "$here/Cargo.toml" \
  --target-dir "$root/target/rust-service"
mkdir -p "$(dirname "$out")"
if [ "$out" != "$root/target/rust-service/release/rust-service" ]; then
  cp "$root/target/rust-service/release/rust-service" "$out"
fi
echo "$out"

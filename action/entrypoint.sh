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
# Without it, KUBECONFIG from the job's environment is used; a path under the runner's
# workspace is mapped to where the container sees it (/github/workspace).
set -eu

gate=${PROFILE_GATE_BIN:-gate}

if [ -n "${INPUT_KUBECONFIG:-}" ]; then
  umask 077
  kubeconfig=$(mktemp "${TMPDIR:-/tmp}/kubeconfig.XXXXXX")
  printf '%s\n' "$INPUT_KUBECONFIG" >"$kubeconfig"
  export KUBECONFIG="$kubeconfig"
elif [ -n "${KUBECONFIG:-}" ] && [ -n "${PROFILE_GATE_HOST_WORKSPACE:-}" ] && [ -n "${GITHUB_WORKSPACE:-}" ]; then
  mapped=
  old_ifs=$IFS
  IFS=:
  for path in $KUBECONFIG; do
    case $path in
      "$PROFILE_GATE_HOST_WORKSPACE"/*) path=$GITHUB_WORKSPACE/${path#"$PROFILE_GATE_HOST_WORKSPACE"/} ;;
    esac
    if [ ! -r "$path" ]; then
      echo "error: KUBECONFIG names $path, which this container cannot read; write the kubeconfig under the workspace (e.g. \$GITHUB_WORKSPACE/.kube/config), or pass its content with the action's kubeconfig input" >&2
      exit 2
    fi
    mapped=${mapped:+$mapped:}$path
  done
  IFS=$old_ifs
  export KUBECONFIG="$mapped"
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

exec "$gate" "$@"

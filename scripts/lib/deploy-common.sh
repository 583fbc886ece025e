# shellcheck shell=bash
# What scripts/k8s-deploy.sh and scripts/deploy.sh share: messages, printing a command as it can be pasted,
# and the checks of the options both take. Sourced (PROG names the calling script).

die_usage() { echo "$PROG: $*" >&2; exit 2; }
say() { printf '==> %s\n' "$*"; }

# A command line as it can be pasted into a shell.
quote() {
  local out="" arg sq="'" esc="'\\''"
  for arg in "$@"; do
    if [[ "$arg" =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
      out+=" $arg"
    else
      out+=" '${arg//$sq/$esc}'"
    fi
  done
  printf '%s' "${out# }"
}

DNS_LABEL='^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'

# check_common NAMESPACE IMAGE_TAG TIMEOUT KUBECONFIG: exit 2 with the reason on a bad value.
check_common() {
  [[ "$1" =~ $DNS_LABEL && ${#1} -le 63 ]] || die_usage "invalid namespace: $1"
  [[ -z "$2" || "$2" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die_usage "invalid image tag: $2"
  [[ "$3" =~ ^([0-9]+(ms|s|m|h))+$ ]] || die_usage "invalid --timeout (a duration such as 10m or 90s): $3"
  [[ -z "$4" || -f "$4" ]] || die_usage "kubeconfig not found: $4"
}

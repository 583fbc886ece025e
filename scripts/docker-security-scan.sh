#!/usr/bin/env bash
# Security scans with Trivy: the built image's packages (HIGH/CRITICAL vulnerabilities fail), and the
# misconfigurations of the Dockerfiles and the Helm chart. Exits non-zero when any scan finds something
# (or cannot run). trivy comes from PATH or from ./run.sh tools (scripts/install-tools.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

usage() {
  cat <<'EOF'
Usage: scripts/docker-security-scan.sh [options]

Runs, with --severity HIGH,CRITICAL --exit-code 1:
  trivy image <image>              vulnerabilities of the built image's OS and Python packages
                                   (needs the image in a Docker engine or registry, and Trivy's database)
  trivy config <target>            misconfigurations of Dockerfile, sandbox/Dockerfile and helm/officeflow
                                   (offline)

  --image REF          image to scan (default: officeflow:<version>, as `./run.sh build` tags it; the version
                       is the appVersion of helm/officeflow/Chart.yaml, else `git describe`)
  --config-only        skip the image scan: only `trivy config`
  --config-target P    scan this file or folder instead of the default config targets (repeatable)
  --help               this text

Exit status: 0 when every scan is clean, 1 when one found HIGH/CRITICAL issues or failed, 2 on bad arguments.
EOF
}

die_usage() { printf 'docker-security-scan.sh: %s (see --help)\n' "$*" >&2; exit 2; }
die() { printf 'docker-security-scan.sh: %s\n' "$*" >&2; exit 1; }
log() { printf '[docker-security-scan] %s\n' "$*" >&2; }

image="" config_only=0 targets=()
while (($#)); do
  case "$1" in
    --config-only) config_only=1 ;;
    --image|--config-target)
      [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || die_usage "$1 needs a value"
      if [[ "$1" == --image ]]; then image="$2"; else targets+=("$2"); fi
      shift ;;
    -h|--help) usage; exit 0 ;;
    *) die_usage "unknown argument: $1" ;;
  esac
  shift
done
((config_only)) && [[ -n "$image" ]] && die_usage "--image and --config-only exclude each other"
((${#targets[@]})) || targets=(Dockerfile sandbox/Dockerfile helm/officeflow)
for target in "${targets[@]}"; do
  [[ -e "$target" ]] || die_usage "config target '$target' does not exist"
done

if [[ -z "$image" ]]; then
  version="$(sed -nE 's/^appVersion:[[:space:]]*["'\'']?([^"'\''[:space:]]+)["'\'']?.*$/\1/p' \
    helm/officeflow/Chart.yaml 2>/dev/null | head -n 1 || true)"
  [[ -n "$version" ]] || version="$(git describe --tags --always --dirty 2>/dev/null || true)"
  image="officeflow:${version:-dev}"
fi

TRIVY="$(command -v trivy || true)"
if [[ -z "$TRIVY" ]]; then
  tools_bin="$(scripts/install-tools.sh --print-dir 2>/dev/null || true)"
  if [[ -n "$tools_bin" && -x "$tools_bin/trivy" ]]; then TRIVY="$tools_bin/trivy"; fi
fi
[[ -n "$TRIVY" ]] || die "trivy is not installed: ./run.sh tools builds it (scripts/install-tools.sh), or see https://trivy.dev"

SEVERITY=(--severity "HIGH,CRITICAL" --exit-code 1)
# Accepted findings, each scoped to its file and with its reason.
IGNORE=()
if [[ -f .trivyignore.yaml ]]; then IGNORE=(--ignorefile .trivyignore.yaml); fi
failed=()

scan() {  # scan NAME TRIVY-ARGS...: run one scan, remember a failure, go on with the others
  local name="$1"; shift
  log "$name: trivy $*"
  local status=0
  "$TRIVY" "$@" || status=$?
  if ((status != 0)); then
    failed+=("$name (exit $status)")
  fi
}

for target in "${targets[@]}"; do
  # the checks built into this trivy release (no download: offline, and the same checks on every run)
  scan "config $target" config "${SEVERITY[@]}" --skip-check-update "${IGNORE[@]}" "$target"
done
if ((!config_only)); then
  # Unfixed vulnerabilities (no patched package yet) are listed but can't fail the build.
  scan "image $image" image "${SEVERITY[@]}" --ignore-unfixed "${IGNORE[@]}" "$image"
fi

if ((${#failed[@]})); then
  log "failed: ${failed[*]}"
  exit 1
fi
log "clean: no HIGH or CRITICAL findings"

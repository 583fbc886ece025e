#!/usr/bin/env bash
# Build OfficeFlow's image (Dockerfile) and optionally the sandbox's (sandbox/Dockerfile); tag and push them.
# `./run.sh build` runs this with --local-only. Needs a Docker engine (and buildx for --multi-arch).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

usage() {
  cat <<'EOF'
Usage: scripts/docker-build-push.sh [options]

Builds the OfficeFlow image from Dockerfile (OCI labels from --version, the git revision and the build
time) and tags it <registry>/<prefix>/officeflow:<version>.

  --local-only      build into the local Docker engine and push nothing (what `./run.sh build` does)
  --registry R      registry host, e.g. ghcr.io; the image is pushed there unless --local-only
  --prefix P        namespace in the registry, e.g. my-org (the image is <R>/<P>/officeflow)
  --version V       image tag (default: appVersion of helm/officeflow/Chart.yaml, else `git describe`)
  --multi-arch      build linux/amd64 and linux/arm64 with `docker buildx build --push` (needs --registry)
  --with-sandbox    also build the SaaS sandbox image (sandbox/Dockerfile) as .../officeflow-sandbox:<version>
  --help            this text

Examples:
  scripts/docker-build-push.sh --local-only                         # officeflow:<version>
  scripts/docker-build-push.sh --registry ghcr.io --prefix my-org --version 0.2.0
  scripts/docker-build-push.sh --registry ghcr.io --prefix my-org --multi-arch --with-sandbox
EOF
}

die_usage() { printf 'docker-build-push.sh: %s (see --help)\n' "$*" >&2; exit 2; }
die() { printf 'docker-build-push.sh: %s\n' "$*" >&2; exit 1; }
log() { printf '[docker-build-push] %s\n' "$*" >&2; }

local_only=0 multi_arch=0 with_sandbox=0 registry="" prefix="" version=""
while (($#)); do
  case "$1" in
    --local-only) local_only=1 ;;
    --multi-arch) multi_arch=1 ;;
    --with-sandbox) with_sandbox=1 ;;
    --registry|--prefix|--version)
      [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || die_usage "$1 needs a value"
      case "$1" in
        --registry) registry="${2%/}" ;;
        --prefix) prefix="${2#/}"; prefix="${prefix%/}" ;;
        --version) version="$2" ;;
      esac
      shift ;;
    -h|--help) usage; exit 0 ;;
    *) die_usage "unknown argument: $1" ;;
  esac
  shift
done

if ((local_only && multi_arch)); then
  die_usage "--multi-arch pushes (a multi-platform image can't be loaded into the local engine): drop --local-only"
fi
if ((!local_only)) && [[ -z "$registry" ]]; then
  die_usage "give --registry R to push, or --local-only to build for this engine only"
fi
if [[ -n "$version" && ! "$version" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; then
  die_usage "--version '$version' is not a valid image tag"
fi

chart_app_version() {
  [[ -f helm/officeflow/Chart.yaml ]] || return 0
  sed -nE 's/^appVersion:[[:space:]]*["'\'']?([^"'\''[:space:]]+)["'\'']?.*$/\1/p' helm/officeflow/Chart.yaml | head -n 1
}

if [[ -z "$version" ]]; then
  version="$(chart_app_version)"
  [[ -n "$version" ]] || version="$(git describe --tags --always --dirty 2>/dev/null || true)"
  [[ -n "$version" ]] || version=dev
fi
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
# The repository's URL without any credentials a remote URL may hold.
source_url="$(git config --get remote.origin.url 2>/dev/null | sed -E 's#//[^/@]*@#//#' || true)"
[[ -n "$source_url" ]] || source_url=unknown

repo_path="${registry:+$registry/}${prefix:+$prefix/}"
image="${repo_path}officeflow:${version}"
sandbox_image="${repo_path}officeflow-sandbox:${version}"

# A Docker engine must answer before anything is built; say what is missing in one line, no stack trace.
command -v docker >/dev/null 2>&1 \
  || die "the docker CLI is not installed: install Docker (https://docs.docker.com/engine/install/), or build in CI (.github/workflows/image.yml)"
if ! docker info >/dev/null 2>&1; then
  die "no Docker engine answers at ${DOCKER_HOST:-unix:///var/run/docker.sock}: start Docker, install it (https://docs.docker.com/engine/install/) or point DOCKER_HOST at one"
fi
if ((multi_arch)) && ! docker buildx version >/dev/null 2>&1; then
  die "--multi-arch needs docker buildx (https://docs.docker.com/build/install-buildx/)"
fi

build_args=(--build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "CREATED=$created"
            --build-arg "SOURCE=$source_url")

build() {  # build DOCKERFILE TAG: BuildKit (reads <Dockerfile>.dockerignore), from the repository root
  local dockerfile="$1" tag="$2"
  if ((multi_arch)); then
    log "building $tag for linux/amd64 and linux/arm64 and pushing it"
    docker buildx build --platform linux/amd64,linux/arm64 --file "$dockerfile" --tag "$tag" "${build_args[@]}" \
      --push .
  else
    log "building $tag"
    DOCKER_BUILDKIT=1 docker build --file "$dockerfile" --tag "$tag" "${build_args[@]}" .
    if ((!local_only)); then
      log "pushing $tag"
      docker push "$tag"
    fi
  fi
}

build Dockerfile "$image"
if ((with_sandbox)); then
  build sandbox/Dockerfile "$sandbox_image"
fi

built="$image"
if ((with_sandbox)); then built="$built $sandbox_image"; fi
if ((local_only)); then log "done: $built (in the local engine)"; else log "done: $built (pushed)"; fi

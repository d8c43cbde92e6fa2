#!/usr/bin/env bash
# Builds helm from its Go module into a versioned cache outside the repo, like the control
# plane (build.sh). Idempotent: a helm already in the cache is kept.
#
#   bash test/kube/helm.sh            build helm if missing
#   bash test/kube/helm.sh --print    print the binary's path and exit
#
# Environment: CLUSTERHUB_CACHE (default ~/.cache/clusterhub), GO (default: go on PATH, then
# /usr/local/go/bin/go), HELM_BUILD_NICE (default 19: the machine is shared).
set -euo pipefail

HELM_VERSION=v3.22.0
# The Kubernetes version `helm template` and `helm lint` assume without a cluster (helm's own
# Makefile stamps its client-go minor; unstamped it is 1.20, below the chart's kubeVersion).
KUBE_MINOR=37

cache="${CLUSTERHUB_CACHE:-${HOME}/.cache/clusterhub}"
helm_bin="${cache}/helm-${HELM_VERSION}/bin"

if [[ "${1:-}" == "--print" ]]; then
  printf '%s\n' "${helm_bin}/helm"
  exit 0
fi
if [[ -x "${helm_bin}/helm" ]]; then
  echo "[helm] ready: ${helm_bin}/helm"
  exit 0
fi

go_cmd="${GO:-}"
if [[ -z "${go_cmd}" ]]; then
  if command -v go >/dev/null 2>&1; then go_cmd="$(command -v go)"; else go_cmd=/usr/local/go/bin/go; fi
fi
if [[ ! -x "${go_cmd}" ]]; then
  echo "[helm] no Go toolchain found (set GO=/path/to/go)" >&2
  exit 1
fi

mkdir -p "${helm_bin}"
# One build at a time, even when several runs start at once; a run that waited finds it built.
exec 9>"${cache}/.helm-build.lock"
if ! flock -n 9; then
  echo "[helm] another build holds ${cache}/.helm-build.lock; waiting for it…"
  flock 9
fi
if [[ -x "${helm_bin}/helm" ]]; then
  echo "[helm] ready: ${helm_bin}/helm"
  exit 0
fi

echo "[helm] building helm ${HELM_VERSION} from helm.sh/helm/v3 (cold: several minutes)…"
started=${SECONDS}
stamps=""
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  stamps+=" -X ${pkg}.k8sVersionMajor=1 -X ${pkg}.k8sVersionMinor=${KUBE_MINOR}"
done
tmp="$(mktemp -d "${helm_bin}/.build.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT
# helm's go.mod has no replace directives, so `go install pkg@version` works; a private GOBIN
# builds into a temp dir first, so an interrupted build never leaves a half-written binary.
(
  cd "${cache}"
  CGO_ENABLED=0 GOFLAGS="-buildvcs=false" GOBIN="${tmp}" nice -n "${HELM_BUILD_NICE:-19}" \
    "${go_cmd}" install -p "$(nproc 2>/dev/null || echo 2)" -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} ${stamps}" \
    "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
)
mv -f "${tmp}/helm" "${helm_bin}/helm"
echo "[helm] built helm in $((SECONDS - started))s → ${helm_bin}/helm"

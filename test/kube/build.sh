#!/usr/bin/env bash
# Builds the test control plane (Kubernetes, etcd, kwok) from upstream Go modules into a
# versioned cache outside the repo. Idempotent: a binary already in the cache is skipped.
#
#   bash test/kube/build.sh            build what is missing
#   bash test/kube/build.sh --node     also the real node's parts (build-node.sh)
#   bash test/kube/build.sh --print    print the cache directories and exit
#
# Environment: CLUSTERHUB_CACHE (default ~/.cache/clusterhub), GO (default: go on PATH, then
# /usr/local/go/bin/go), KUBE_BUILD_NICE (default 10: the other engineers keep their CPU).
set -euo pipefail

KUBE_VERSION=v1.37.2
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${CLUSTERHUB_CACHE:-${HOME}/.cache/clusterhub}"
kube_bin="${cache}/kube-${KUBE_VERSION}/bin"
etcd_bin="${cache}/etcd-${ETCD_VERSION}/bin"
kwok_bin="${cache}/kwok-${KWOK_VERSION}/bin"

source "${here}/build-node.sh"

if [[ "${1:-}" == "--print" ]]; then
  printf 'KUBE_BIN=%s\nETCD_BIN=%s\nKWOK_BIN=%s\n' "${kube_bin}" "${etcd_bin}" "${kwok_bin}"
  printf 'CONTAINERD_BIN=%s\nCOREDNS_BIN=%s\nKUBE_ROUTER_BIN=%s\nLOCAL_PATH_BIN=%s\n' \
    "${containerd_bin}" "${coredns_bin}" "${kube_router_bin}" "${local_path_bin}"
  exit 0
fi

go_cmd="${GO:-}"
if [[ -z "${go_cmd}" ]]; then
  if command -v go >/dev/null 2>&1; then go_cmd="$(command -v go)"; else go_cmd=/usr/local/go/bin/go; fi
fi
if [[ ! -x "${go_cmd}" ]]; then
  echo "[kube] no Go toolchain found (set GO=/path/to/go)" >&2
  exit 1
fi

# Builds run niced with bounded package parallelism: fast when the machine is idle,
# polite when others are compiling or testing.
nice_level="${KUBE_BUILD_NICE:-10}"
jobs="$(nproc 2>/dev/null || echo 2)"
export CGO_ENABLED=0
export GOFLAGS="-buildvcs=false"

mkdir -p "${cache}"
# One build at a time, even when several test files start at once.
exec 9>"${cache}/.build.lock"
if ! flock -n 9; then
  echo "[kube] another build holds ${cache}/.build.lock; waiting for it…"
  flock 9
fi

log() { echo "[kube] $*"; }

# go_build NAME PACKAGE OUTDIR MODDIR [LDFLAGS]: builds into a temp file, then renames, so
# an interrupted build never leaves a half-written binary in the cache.
go_build() {
  local name="$1" pkg="$2" outdir="$3" moddir="$4" ldflags="${5:-}"
  local started=${SECONDS}
  mkdir -p "${outdir}"
  (
    cd "${moddir}"
    nice -n "${nice_level}" "${go_cmd}" build -p "${jobs}" -trimpath \
      -ldflags "-s -w ${ldflags}" -o "${outdir}/.${name}.tmp" "${pkg}"
  )
  mv -f "${outdir}/.${name}.tmp" "${outdir}/${name}"
  log "built ${name} in $((SECONDS - started))s → ${outdir}/${name}"
}

# Version stamps: without them the binaries report v0.0.0-master.
kube_minor="${KUBE_VERSION#v1.}"
kube_minor="${kube_minor%%.*}"
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
kube_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X ${pkg}.gitVersion=${KUBE_VERSION} -X ${pkg}.gitMajor=1"
  kube_ldflags+=" -X ${pkg}.gitMinor=${kube_minor} -X ${pkg}.gitTreeState=clean"
  kube_ldflags+=" -X ${pkg}.buildDate=${build_date}"
done

built_any=0
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  if [[ -x "${kube_bin}/${cmd}" ]]; then continue; fi
  if [[ ${built_any} -eq 0 ]]; then
    log "building ${cmd} ${KUBE_VERSION} (cold build, several minutes)…"
  else
    log "building ${cmd} ${KUBE_VERSION} (reuses the compile cache, 1–5 minutes)…"
  fi
  go_build "${cmd}" "k8s.io/kubernetes/cmd/${cmd}" "${kube_bin}" "${here}/tools" "${kube_ldflags}"
  built_any=1
done

if [[ ! -x "${etcd_bin}/etcd" ]]; then
  log "building etcd ${ETCD_VERSION} (a minute or two)…"
  go_build etcd . "${etcd_bin}" "${here}/etcd"
fi

if [[ ! -x "${kwok_bin}/kwok" ]]; then
  log "building kwok ${KWOK_VERSION} (a minute or two)…"
  started=${SECONDS}
  mkdir -p "${kwok_bin}"
  # kwok's own go.mod has no replace directives, so `go install pkg@version` works; a
  # private GOBIN keeps the result in the versioned cache. Module mode only: no -mod flag.
  (
    cd "${cache}"
    GOFLAGS="-buildvcs=false" GOBIN="${kwok_bin}" nice -n "${nice_level}" \
      "${go_cmd}" install -p "${jobs}" -trimpath -ldflags "-s -w" \
      "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
  )
  log "built kwok in $((SECONDS - started))s → ${kwok_bin}/kwok"
fi

if [[ "${1:-}" == "--node" ]]; then
  build_node
  log "node ready: ${kube_bin} ${containerd_bin} ${coredns_bin} ${kube_router_bin} ${local_path_bin}"
fi

log "ready: ${kube_bin} ${etcd_bin} ${kwok_bin}"

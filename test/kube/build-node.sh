# Sourced by build.sh: the real node's parts (kubelet, kube-proxy, containerd, CoreDNS, the
# NetworkPolicy enforcer, the PVC provisioner), each from its Go module into a versioned
# cache directory. runc and the CNI plugins come from Debian (packages runc,
# containernetworking-plugins).
#
# Defines the *_VERSION and *_bin variables always; build_node builds what is missing.

CONTAINERD_VERSION=v2.2.9
COREDNS_VERSION=v1.14.7  # the version coredns/go.mod requires
# The only kube-router release the module proxy serves. Its reported flaw
# (GHSA-phqm-jgc3-qf8g) is in the service proxy, which the node never runs: only the
# firewall controller (--run-firewall) is started.
KUBE_ROUTER_VERSION=v2.1.0
LOCAL_PATH_VERSION=v0.0.30

containerd_bin="${cache}/containerd-${CONTAINERD_VERSION}/bin"
# CoreDNS from the small module in ./coredns (only the plugins the node uses).
coredns_bin="${cache}/coredns-${COREDNS_VERSION}-node/bin"
kube_router_bin="${cache}/kube-router-${KUBE_ROUTER_VERSION}/bin"
local_path_bin="${cache}/local-path-provisioner-${LOCAL_PATH_VERSION}/bin"

# go_install_to BIN_DIR NAME TAGS LDFLAGS PACKAGE@VERSION…: `go install` into a private GOBIN
# (module mode: these modules have no replace directives), then moves the results in.
go_install_to() {
  local dir="$1" tags="$2" ldflags="$3"
  shift 3
  local started=${SECONDS} tmp="${dir}/.tmp"
  rm -rf "${tmp}" && mkdir -p "${tmp}"
  (
    cd "${cache}"
    GOBIN="${tmp}" nice -n "${nice_level}" "${go_cmd}" install -p "${jobs}" -trimpath \
      -tags "${tags}" -ldflags "-s -w ${ldflags}" "$@"
  )
  mv -f "${tmp}"/* "${dir}/" && rmdir "${tmp}"
  log "built $* in $((SECONDS - started))s → ${dir}"
}

build_node() {
  for cmd in kubelet kube-proxy; do
    if [[ -x "${kube_bin}/${cmd}" ]]; then continue; fi
    log "building ${cmd} ${KUBE_VERSION} (reuses the control plane's compile cache, 3–8 minutes)…"
    go_build "${cmd}" "k8s.io/kubernetes/cmd/${cmd}" "${kube_bin}" "${here}/tools" "${kube_ldflags}"
  done

  if [[ ! -x "${containerd_bin}/containerd-shim-runc-v2" ]]; then
    log "building containerd ${CONTAINERD_VERSION}, ctr and the runc shim (about 3 minutes)…"
    local m=github.com/containerd/containerd/v2
    # No cgo: the snapshotters that need C libraries are left out; overlayfs stays.
    CGO_ENABLED=0 go_install_to "${containerd_bin}" "no_btrfs no_devmapper no_zfs" \
      "-X ${m}/version.Version=${CONTAINERD_VERSION}" \
      "${m}/cmd/containerd@${CONTAINERD_VERSION}" "${m}/cmd/ctr@${CONTAINERD_VERSION}" \
      "${m}/cmd/containerd-shim-runc-v2@${CONTAINERD_VERSION}"
  fi

  if [[ ! -x "${coredns_bin}/coredns" ]]; then
    log "building CoreDNS ${COREDNS_VERSION} with the node's plugins (1–3 minutes)…"
    go_build coredns . "${coredns_bin}" "${here}/coredns"
  fi

  if [[ ! -x "${kube_router_bin}/kube-router" ]]; then
    log "building kube-router ${KUBE_ROUTER_VERSION} (NetworkPolicy firewall; about 3 minutes)…"
    go_install_to "${kube_router_bin}" "" "" \
      "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@${KUBE_ROUTER_VERSION}"
  fi

  if [[ ! -x "${local_path_bin}/local-path-provisioner" ]]; then
    log "building local-path-provisioner ${LOCAL_PATH_VERSION} (about 2 minutes)…"
    go_install_to "${local_path_bin}" "" "" "github.com/rancher/local-path-provisioner@${LOCAL_PATH_VERSION}"
  fi
}

#!/usr/bin/env bash
# Builds the images the real node runs, with no registry and no Docker daemon: a Debian base
# made by mmdebstrap, then the repo's own Dockerfiles (images/cluster, images/hub) built by
# buildah on that base (build argument BASE), each saved as an OCI archive that the node's
# containerd imports. Every archive is named by a hash of its inputs, so a rebuild happens
# only when an input changed.
#
#   bash test/kube/images.sh            build what is missing
#   bash test/kube/images.sh --print    print image names and archives, build nothing
#
# Environment: CLUSTERHUB_CACHE (default ~/.cache/clusterhub), KUBE_BUILD_NICE (default 10),
# GO (for the sandbox image's tiny pause binary), DEBIAN_MIRROR (default deb.debian.org).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${here}/../.." && pwd)"
cache="${CLUSTERHUB_CACHE:-${HOME}/.cache/clusterhub}"
images="${cache}/images"
nice_level="${KUBE_BUILD_NICE:-10}"
suite=bookworm
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# What the Dockerfiles' public bases (python:3.12-slim, node:24-slim) would bring, from Debian.
cluster_packages=ca-certificates,python3,python3-pip,openjdk-17-jre-headless,git,passwd,procps
hub_packages=ca-certificates,passwd

log() { echo "[images] $*"; }

# hash_of WORDS…: a short content hash of strings and of the files under the named paths.
hash_of() {
  {
    for arg in "$@"; do
      if [[ -e "${arg}" ]]; then
        (cd "${arg%/*}" && find "${arg##*/}" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 \
          | LC_ALL=C sort -z | xargs -0 sha256sum)
      else
        echo "${arg}"
      fi
    done
  } | sha256sum | cut -c1-16
}

# The project's own Node (the npm package `node`), not whatever node is first on PATH.
node_bin="${repo}/node_modules/node/bin/node"
node_version="$("${node_bin}" --version 2>/dev/null || echo none)"
pause_tag="$(hash_of pause-v1 "${here}/pause")"
# The machine's trusted CAs go into the bases: registries may be reached through a TLS proxy.
ca_bundle=/etc/ssl/certs/ca-certificates.crt
cluster_base_tag="$(hash_of base-v1 "${suite}" "${cluster_packages}" "${ca_bundle}")"
hub_base_tag="$(hash_of hub-base-v1 "${suite}" "${hub_packages}" "${node_version}" "${ca_bundle}")"
cluster_tag="$(hash_of "${cluster_base_tag}" "${repo}/images/cluster")"
# The hub image's inputs: its Dockerfile and every source its COPY lines name.
hub_inputs=("${repo}/images/hub")
while read -r _ line; do
  read -ra words <<<"${line}"
  for src in "${words[@]:0:${#words[@]}-1}"; do hub_inputs+=("${repo}/${src%/}"); done
done < <(grep -E '^COPY [^-]' "${repo}/images/hub/Dockerfile")
hub_tag="$(hash_of "${hub_base_tag}" "${hub_inputs[@]}")"

declare -A ref=(
  [pause]="localhost/clusterhub/pause:${pause_tag}"
  [cluster]="localhost/clusterhub/cluster:${cluster_tag}"
  [hub]="localhost/clusterhub/hub:${hub_tag}"
)
archive() { echo "${images}/$1-${2}.tar"; }

if [[ "${1:-}" == "--print" ]]; then
  printf 'SANDBOX_IMAGE=%s\nSANDBOX_ARCHIVE=%s\n' "${ref[pause]}" "$(archive pause "${pause_tag}")"
  printf 'CLUSTER_IMAGE=%s\nCLUSTER_ARCHIVE=%s\n' "${ref[cluster]}" "$(archive cluster "${cluster_tag}")"
  printf 'HUB_IMAGE=%s\nHUB_ARCHIVE=%s\n' "${ref[hub]}" "$(archive hub "${hub_tag}")"
  exit 0
fi

mkdir -p "${images}"
exec 9>"${images}/.build.lock"
if ! flock -n 9; then
  log "another image build holds ${images}/.build.lock; waiting for it…"
  flock 9
fi

# A private buildah store: nothing of ours lands in the machine's default one.
bah() { nice -n "${nice_level}" buildah --root "${images}/storage" --runroot "${images}/run" "$@"; }

# save NAME TAG REF: the built image as an OCI archive, written to a temp file first.
save() {
  local out
  out="$(archive "$1" "$2")"
  # Uncompressed: pushing and importing skip gzip (the archive only crosses this disk).
  bah push --quiet --disable-compression "$3" "oci-archive:${out}.tmp:$3" >/dev/null
  mv -f "${out}.tmp" "${out}"
  log "$1 → ${out} ($(du -m "${out}" | cut -f1) MiB)"
}

# debian_base NAME TAG PACKAGES [CONFIG…]: an image of a fresh Debian rootfs.
debian_base() {
  local name="$1" tag="$2" packages="$3"
  shift 3
  local image="localhost/clusterhub/${name}:${tag}"
  if bah inspect --type image "${image}" >/dev/null 2>&1; then return; fi
  local started=${SECONDS} rootfs="${images}/${name}-${tag}.rootfs.tar"
  log "making ${name} with mmdebstrap (${suite}: ${packages//,/ })…"
  nice -n "${nice_level}" mmdebstrap --quiet --format=tar --variant=apt --include="${packages}" \
    --customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED' \
    --customize-hook="cp ${ca_bundle} \"\$1${ca_bundle}\"" \
    "${suite}" "${rootfs}.tmp" "${mirror}"
  mv -f "${rootfs}.tmp" "${rootfs}"
  local ctr
  ctr="$(bah from scratch)"
  bah add --quiet "${ctr}" "${rootfs}" /
  bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd /bin/bash "$@" "${ctr}"
  bah commit --quiet --rm "${ctr}" "${image}" >/dev/null
  rm -f "${rootfs}"
  log "made ${image} in $((SECONDS - started))s"
}

# dockerfile NAME TAG DIR BASE: buildah builds DIR/Dockerfile (context DIR or the repo) on BASE.
dockerfile() {
  local name="$1" tag="$2" context="$3" dockerfile="$4" base="$5"
  local started=${SECONDS}
  # Tagged by the hash of its inputs: an image already in the store only needs saving.
  if bah inspect --type image "${ref[${name}]}" >/dev/null 2>&1; then
    save "${name}" "${tag}" "${ref[${name}]}"
    return
  fi
  log "building ${ref[${name}]} from ${dockerfile#"${repo}"/} on ${base} (pip/npm from their registries)…"
  # --layers: a change below the pip step (the entrypoint) rebuilds only what follows it.
  bah bud --layers --network host --build-arg "BASE=${base}" -f "${dockerfile}" \
    -t "${ref[${name}]}" "${context}" | sed -u "s/^/[images] ${name}: /"
  save "${name}" "${tag}" "${ref[${name}]}"
  log "built ${name} in $((SECONDS - started))s"
}

if [[ ! -f "$(archive pause "${pause_tag}")" ]]; then
  # The pod sandbox: a static binary that sleeps until signalled (the role of k8s' pause).
  go_cmd="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
  (cd "${here}/pause" && CGO_ENABLED=0 nice -n "${nice_level}" "${go_cmd}" build -trimpath -ldflags "-s -w" -o "${images}/pause.bin" .)
  ctr="$(bah from scratch)"
  bah copy --quiet "${ctr}" "${images}/pause.bin" /pause
  bah config --entrypoint '["/pause"]' --cmd '' "${ctr}"
  bah commit --quiet --rm "${ctr}" "${ref[pause]}" >/dev/null
  save pause "${pause_tag}" "${ref[pause]}"
fi

if [[ ! -f "$(archive cluster "${cluster_tag}")" ]]; then
  debian_base cluster-base "${cluster_base_tag}" "${cluster_packages}"
  dockerfile cluster "${cluster_tag}" "${repo}/images/cluster" "${repo}/images/cluster/Dockerfile" \
    "localhost/clusterhub/cluster-base:${cluster_base_tag}"
fi

if [[ "${CLUSTERHUB_IMAGES_HUB:-1}" == "1" && ! -f "$(archive hub "${hub_tag}")" ]]; then
  # Node 24 is the npm package's binary (the project's own Node), copied into the base.
  npm_cli="$(readlink -f "$(command -v npm)")"
  npm_dir="${npm_cli%/bin/npm-cli.js}"
  debian_base hub-base "${hub_base_tag}" "${hub_packages}"
  log "hub base: node ${node_version} from ${node_bin}"
  ctr="$(bah from "localhost/clusterhub/hub-base:${hub_base_tag}")"
  bah copy --quiet "${ctr}" "${node_bin}" /usr/local/bin/node
  bah copy --quiet "${ctr}" "${npm_dir}" /usr/local/lib/node_modules/npm
  bah run "${ctr}" -- ln -sf ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
  # Node keeps its own CA list: point it at the machine's (see ca_bundle).
  bah config --env "NODE_EXTRA_CA_CERTS=${ca_bundle}" "${ctr}"
  bah commit --quiet --rm "${ctr}" "localhost/clusterhub/hub-node:${hub_base_tag}" >/dev/null
  dockerfile hub "${hub_tag}" "${repo}" "${repo}/images/hub/Dockerfile" "localhost/clusterhub/hub-node:${hub_base_tag}"
fi

log "ready: ${ref[cluster]} ${ref[hub]} ${ref[pause]}"

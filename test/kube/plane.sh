#!/usr/bin/env bash
# Runs one test control plane in the background, for reuse by many test runs.
#
#   eval "$(bash test/kube/plane.sh start)"   # exports CLUSTERHUB_KUBECONFIG (and KUBECONFIG)
#   bash test/kube/plane.sh status
#   bash test/kube/plane.sh stop
#
# Extra arguments to start go to plane.ts (e.g. --nodes 3). State lives in
# ${CLUSTERHUB_PLANE_RUN:-${XDG_RUNTIME_DIR:-/tmp}/clusterhub-plane}.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${here}/../.." && pwd)"
run_dir="${CLUSTERHUB_PLANE_RUN:-${XDG_RUNTIME_DIR:-/tmp}/clusterhub-plane}"
pid_file="${run_dir}/plane.pid"
out_file="${run_dir}/plane.out"
log_file="${run_dir}/plane.log"
node_bin="${repo}/node_modules/.bin/node"
[[ -x "${node_bin}" ]] || node_bin="node"

running() { [[ -f "${pid_file}" ]] && kill -0 "$(cat "${pid_file}")" 2>/dev/null; }

kubeconfig_line() { grep -m1 '^KUBECONFIG=' "${out_file}" 2>/dev/null || true; }

case "${1:-}" in
  start)
    shift
    mkdir -p "${run_dir}"
    if running; then
      echo "plane already running (pid $(cat "${pid_file}"))" >&2
    else
      : >"${out_file}"
      # setsid: the plane outlives this shell and gets its own process group.
      setsid "${node_bin}" "${here}/plane.ts" start "$@" >"${out_file}" 2>"${log_file}" </dev/null &
      echo $! >"${pid_file}"
      # The first start may build binaries (minutes); then start-up takes seconds.
      while [[ -z "$(kubeconfig_line)" ]]; do
        if ! running; then
          echo "plane failed to start; see ${log_file}:" >&2
          tail -n 40 "${log_file}" >&2
          exit 1
        fi
        sleep 0.5
      done
    fi
    path="$(kubeconfig_line)"
    path="${path#KUBECONFIG=}"
    printf 'export CLUSTERHUB_KUBECONFIG=%q KUBECONFIG=%q\n' "${path}" "${path}"
    ;;
  stop)
    if running; then
      pid="$(cat "${pid_file}")"
      kill -TERM "${pid}"
      for _ in $(seq 1 100); do
        kill -0 "${pid}" 2>/dev/null || break
        sleep 0.1
      done
      if kill -0 "${pid}" 2>/dev/null; then
        echo "plane (pid ${pid}) still running after 10 s; killing its process group" >&2
        kill -KILL -- "-${pid}"
      fi
      echo "plane stopped" >&2
    else
      echo "no plane running" >&2
    fi
    rm -f "${pid_file}"
    ;;
  status)
    if running; then
      echo "running (pid $(cat "${pid_file}")) $(kubeconfig_line)"
    else
      echo "not running"
      exit 1
    fi
    ;;
  *)
    echo "usage: $0 start [--nodes N] [--keep] | stop | status" >&2
    exit 2
    ;;
esac

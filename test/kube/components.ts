/** Command lines of the plane's processes. */
import { join } from 'node:path';
import type { Binaries } from './binaries.ts';
import { ADMIN_CN, type PlaneCerts } from './certs.ts';
import type { Supervisor } from './procs.ts';

/** etcd on loopback with a fresh single-member cluster in `root/etcd`. */
export function etcdArgs(root: string, clientUrl: string, peerUrl: string): string[] {
  return [
    '--name=node0',
    `--data-dir=${join(root, 'etcd')}`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=node0=${peerUrl}`,
    '--initial-cluster-state=new',
    // Throw-away data: durability costs latency and buys nothing here.
    '--unsafe-no-fsync',
    '--log-level=warn',
  ];
}

/** Where ClusterIPs come from. */
export const SERVICE_CIDR = '10.96.0.0/16';

/** kube-apiserver on 127.0.0.1 with client-cert auth, Node+RBAC authorization and SA tokens. */
export function apiserverArgs(certs: PlaneCerts, etcdUrl: string, port: number): string[] {
  return [
    `--etcd-servers=${etcdUrl}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${port}`,
    `--tls-cert-file=${certs.adminCert}`,
    `--tls-private-key-file=${certs.adminKey}`,
    `--client-ca-file=${certs.caCert}`,
    `--service-account-key-file=${certs.saPub}`,
    `--service-account-signing-key-file=${certs.saKey}`,
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    '--authorization-mode=Node,RBAC',
    // The default plugin set (NamespaceLifecycle, ServiceAccount, PodSecurity, ResourceQuota…) stays on.
    '--enable-admission-plugins=NodeRestriction',
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    '--endpoint-reconciler-type=none',
    '--allow-privileged=true',
    // Front-proxy (aggregation) settings: without them every component logs a missing
    // requestheader CA. The one admin pair serves here too, as kwokctl does; only its CN
    // may assert proxy headers, and it is system:masters anyway.
    `--requestheader-client-ca-file=${certs.caCert}`,
    `--requestheader-allowed-names=${ADMIN_CN}`,
    '--requestheader-username-headers=X-Remote-User',
    '--requestheader-group-headers=X-Remote-Group',
    '--requestheader-extra-headers-prefix=X-Remote-Extra-',
    `--proxy-client-cert-file=${certs.adminCert}`,
    `--proxy-client-key-file=${certs.adminKey}`,
    // The API server's identity towards kubelets (logs, exec); the admin may do both.
    `--kubelet-client-certificate=${certs.adminCert}`,
    `--kubelet-client-key=${certs.adminKey}`,
    // Node names are not in any DNS here: reach kubelets at the address they report.
    '--kubelet-preferred-address-types=InternalIP',
    '--profiling=false',
  ];
}

/** Starts kube-controller-manager, kube-scheduler and kwok against the running API server. */
export function startControllers(
  sup: Supervisor,
  bins: Binaries,
  certs: PlaneCerts,
  kubeconfig: string,
  kwokConfig: string,
  ports: { kcmPort: number; schedPort: number; kwokPort: number },
): void {
  const auth = [`--kubeconfig=${kubeconfig}`, `--authentication-kubeconfig=${kubeconfig}`, `--authorization-kubeconfig=${kubeconfig}`];
  sup.start('kube-controller-manager', bins.kubeControllerManager, [
    ...auth,
    '--bind-address=127.0.0.1',
    `--secure-port=${ports.kcmPort}`,
    '--leader-elect=false',
    `--root-ca-file=${certs.caCert}`,
    `--service-account-private-key-file=${certs.saKey}`,
    `--cluster-signing-cert-file=${certs.caCert}`,
    `--cluster-signing-key-file=${certs.caKey}`,
    // The defaults (20 qps) make a 100-replica scale-up a matter of seconds, not one.
    '--kube-api-qps=200',
    '--kube-api-burst=400',
    '--profiling=false',
  ]);
  sup.start('kube-scheduler', bins.kubeScheduler, [
    ...auth,
    '--bind-address=127.0.0.1',
    `--secure-port=${ports.schedPort}`,
    '--leader-elect=false',
    '--profiling=false',
  ]);
  sup.start('kwok', bins.kwok, [
    `--kubeconfig=${kubeconfig}`,
    `--config=${kwokConfig}`,
    '--node-ip=127.0.0.1',
    '--node-name=localhost',
    `--node-port=${ports.kwokPort}`,
    `--server-address=127.0.0.1:${ports.kwokPort}`,
    `--tls-cert-file=${certs.adminCert}`,
    `--tls-private-key-file=${certs.adminKey}`,
  ]);
}

/** The kubelet of the real node and the node-level agents beside it. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CGROUP_ROOT, NODE_NET } from './host.ts';

/** Label and taint of the real node: only pods that select and tolerate it land there. */
export const REAL_NODE_LABEL = 'clusterhub.test/real-node';

/**
 * KubeletConfiguration for this machine: cgroup v1 (hybrid) needs `failCgroupV1: false`
 * and the cgroupfs driver; swap may be on. It serves on the bridge address only, logs and
 * state stay under `dir`, and cluster DNS is the CoreDNS beside it on the bridge.
 */
export function renderKubeletConfig(dir: string, opts: { caCert: string; runtimeSocket: string; port: number; healthzPort: number }): string {
  return stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    failCgroupV1: false,
    cgroupDriver: 'cgroupfs',
    cgroupRoot: `/${CGROUP_ROOT}`,
    failSwapOn: false,
    containerRuntimeEndpoint: `unix://${opts.runtimeSocket}`,
    address: NODE_NET.gateway,
    port: opts.port,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: opts.healthzPort,
    clusterDNS: [NODE_NET.gateway],
    clusterDomain: 'cluster.local',
    podLogsDir: join(dir, 'pod-logs'),
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: opts.caCert },
    },
    authorization: { mode: 'Webhook' },
    // The disk is shared with everyone's caches: never evict or collect our only images.
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    serializeImagePulls: false,
    rotateCertificates: false,
    serverTLSBootstrap: false,
    registerNode: true,
    maxPods: 110,
    // Fast reaction for the tests; a real cluster would keep the defaults.
    nodeStatusUpdateFrequency: '5s',
    syncFrequency: '10s',
    fileCheckFrequency: '10s',
    shutdownGracePeriod: '0s',
  });
}

/** kubelet's command line. */
export async function kubeletArgs(dir: string, opts: { name: string; kubeconfig: string; config: string }): Promise<string[]> {
  await mkdir(join(dir, 'pod-logs'), { recursive: true });
  return [
    `--config=${opts.config}`,
    `--kubeconfig=${opts.kubeconfig}`,
    `--root-dir=${join(dir, 'kubelet')}`,
    `--cert-dir=${join(dir, 'kubelet-pki')}`,
    `--hostname-override=${opts.name}`,
    `--node-ip=${NODE_NET.gateway}`,
    `--node-labels=${REAL_NODE_LABEL}=true`,
    `--register-with-taints=${REAL_NODE_LABEL}=true:NoSchedule`,
    '--v=1',
  ];
}

/** kube-proxy (iptables mode) so Service addresses work on the node and from the host. */
export async function writeKubeProxyConfig(path: string, opts: { kubeconfig: string; name: string; healthzPort: number; metricsPort: number }): Promise<void> {
  await writeFile(
    path,
    stringify({
      apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
      kind: 'KubeProxyConfiguration',
      clientConnection: { kubeconfig: opts.kubeconfig },
      mode: 'iptables',
      hostnameOverride: opts.name,
      bindAddress: '127.0.0.1',
      healthzBindAddress: `127.0.0.1:${opts.healthzPort}`,
      metricsBindAddress: `127.0.0.1:${opts.metricsPort}`,
      clusterCIDR: NODE_NET.podCidr,
      nodePortAddresses: [`${NODE_NET.gateway}/32`],
      // Leave the machine's conntrack sysctls alone (shared; some are read-only here).
      conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
      iptables: { syncPeriod: '10s', minSyncPeriod: '0s' },
    }),
  );
}

/** CoreDNS on the bridge address, serving cluster.local from the API (nothing forwarded out). */
export function renderCorefile(kubeconfig: string): string {
  return `.:53 {
    bind ${NODE_NET.gateway}
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig ${kubeconfig} clusterhub-test
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    cache 5
}
`;
}

/** kube-router with only its NetworkPolicy firewall (no routing, no service proxy). */
export function kubeRouterArgs(opts: { kubeconfig: string; name: string }): string[] {
  return [
    `--kubeconfig=${opts.kubeconfig}`,
    `--hostname-override=${opts.name}`,
    '--run-firewall=true',
    '--run-router=false',
    '--run-service-proxy=false',
    '--run-loadbalancer=false',
    '--enable-ipv4=true',
    '--enable-ipv6=false',
    `--service-cluster-ip-range=${NODE_NET.serviceCidr}`,
    '--iptables-sync-period=1m',
    '--health-port=0',
    '--metrics-port=0',
    '--v=1',
  ];
}

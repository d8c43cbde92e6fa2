/** Helpers of the real-node end-to-end tests: progress streams, pods, probes from inside a namespace. */
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { watchUntil } from '../kube/watch.ts';
import type { TestHub } from './hub.ts';

/** The launch's progress stream, read to its end (ready or failed), as the home page reads it. */
export async function readProgress(hub: TestHub, token: string, login: string): Promise<Array<Record<string, unknown>>> {
  const res = await fetch(`${hub.publicUrl}/hub/api/users/${login}/cluster/progress`, { headers: { Authorization: `token ${token}` } });
  if (!res.ok) throw new Error(`progress of ${login}: ${res.status} ${await res.text()}`);
  return (await res.text())
    .split('\n')
    .filter((l) => l.startsWith('data: '))
    .map((l) => JSON.parse(l.slice(6)) as Record<string, unknown>);
}

/** The pods of a namespace, not counting those on their way out. */
export async function podsOf(core: CoreV1Api, namespace: string): Promise<V1Pod[]> {
  const list = await core.listNamespacedPod({ namespace });
  return list.items.filter((p) => !p.metadata?.deletionTimestamp);
}

/** Resolves once the namespace no longer exists (watched from the list's resourceVersion). */
export async function namespaceGone(kc: KubeConfig, name: string, timeoutMs = 120_000): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const list = await core.listNamespace({ fieldSelector: `metadata.name=${name}` });
  if (list.items.length === 0) return;
  await watchUntil(kc, '/api/v1/namespaces', { fieldSelector: `metadata.name=${name}`, resourceVersion: list.metadata?.resourceVersion },
    (phase) => (phase === 'DELETED' ? true : undefined), { what: `namespace ${name} to be deleted`, timeoutMs });
}

/** What one TCP connection attempt from inside a pod got. */
export interface ProbeResult {
  target: string;
  connected: boolean;
  error?: string;
}

/**
 * Runs a short-lived pod in `namespace` (restricted-compliant, on the real node) that tries
 * a TCP connection to each `host:port` with a timeout, and returns what each attempt got
 * (read from the container's termination message, so no kubelet connection is needed).
 */
export async function probeFrom(
  kc: KubeConfig,
  namespace: string,
  opts: { image: string; nodeSelector: Record<string, string>; tolerations: unknown[]; labels?: Record<string, string>; targets: string[]; timeoutSeconds?: number },
): Promise<ProbeResult[]> {
  const core = kc.makeApiClient(CoreV1Api);
  const name = `probe-${Math.random().toString(36).slice(2, 8)}`;
  const script = [
    'import json, socket, sys',
    'out = []',
    'for target in sys.argv[1:]:',
    '    host, port = target.rsplit(":", 1)',
    '    try:',
    `        socket.create_connection((host, int(port)), timeout=${opts.timeoutSeconds ?? 5}).close()`,
    '        out.append({"target": target, "connected": True})',
    '    except Exception as e:',
    '        out.append({"target": target, "connected": False, "error": type(e).__name__ + ": " + str(e)})',
    'open("/dev/termination-log", "w").write(json.dumps(out))',
  ].join('\n');
  await core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name, labels: { ...opts.labels } },
      spec: {
        restartPolicy: 'Never',
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        nodeSelector: opts.nodeSelector,
        tolerations: opts.tolerations as never,
        securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [{
          name: 'probe',
          image: opts.image,
          imagePullPolicy: 'IfNotPresent',
          command: ['python3', '-c', script, ...opts.targets],
          resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '100m', memory: '64Mi' } },
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        }],
      },
    },
  });
  try {
    const message = await watchUntil(kc, `/api/v1/namespaces/${namespace}/pods`, { fieldSelector: `metadata.name=${name}` }, (_phase, pod: V1Pod) => {
      const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
      return terminated ? (terminated.message ?? `exit ${terminated.exitCode} (${terminated.reason})`) : undefined;
    }, { what: `probe pod ${namespace}/${name} to finish`, timeoutMs: 120_000 });
    try {
      return JSON.parse(message) as ProbeResult[];
    } catch {
      throw new Error(`probe pod ${namespace}/${name} ended without a result: ${message}`);
    }
  } finally {
    await core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 }).catch(() => {});
  }
}

/** Helpers of the real-node end-to-end tests: progress streams, pods, probes from inside a namespace. */
import { CoreV1Api, KubeConfig, type V1Pod, type V1Volume, type V1VolumeMount } from '@kubernetes/client-node';
import type { RealNode } from '../kube/node/node.ts';
import { startPlane, type Plane } from '../kube/plane.ts';
import { watchUntil } from '../kube/watch.ts';
import type { TestHub } from './hub.ts';

/** A plane with one kwok node and the real node, and admin clients for it. */
export async function startRealNodePlane(): Promise<{ plane: Plane; node: RealNode; admin: KubeConfig; core: CoreV1Api }> {
  const plane = await startPlane({ nodes: 1, realNode: true });
  const admin = new KubeConfig();
  admin.loadFromFile(plane.kubeconfigPath);
  return { plane, node: plane.realNode!, admin, core: admin.makeApiClient(CoreV1Api) };
}

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

/** How a pod's only container ended. */
export interface Termination {
  exitCode: number;
  /** The container's termination message (what it wrote to /dev/termination-log). */
  message: string;
}

/**
 * Runs a pod with one restricted-compliant container (`command` in `image`) in `namespace`
 * to completion and returns how it ended, read from the pod status (no kubelet connection
 * needed); the pod is deleted afterwards.
 */
export async function runToCompletion(
  kc: KubeConfig,
  namespace: string,
  opts: {
    image: string; command: string[]; nodeSelector: Record<string, string>; tolerations: unknown[];
    labels?: Record<string, string>; memory?: string; volumes?: V1Volume[]; volumeMounts?: V1VolumeMount[];
  },
): Promise<Termination> {
  const core = kc.makeApiClient(CoreV1Api);
  const name = `run-${Math.random().toString(36).slice(2, 8)}`;
  const size = { cpu: '100m', memory: opts.memory ?? '128Mi' };
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
        securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
        ...(opts.volumes ? { volumes: opts.volumes } : {}),
        containers: [{
          name: 'run',
          ...(opts.volumeMounts ? { volumeMounts: opts.volumeMounts } : {}),
          image: opts.image,
          imagePullPolicy: 'IfNotPresent',
          command: opts.command,
          resources: { requests: size, limits: size },
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        }],
      },
    },
  });
  try {
    return await watchUntil(kc, `/api/v1/namespaces/${namespace}/pods`, { fieldSelector: `metadata.name=${name}` }, (_phase, pod: V1Pod) => {
      const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
      return terminated ? { exitCode: terminated.exitCode, message: terminated.message ?? '' } : undefined;
    }, { what: `pod ${namespace}/${name} to finish`, timeoutMs: 180_000 });
  } finally {
    await core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 }).catch(() => {});
  }
}

/** What one TCP connection attempt from inside a pod got. */
export interface ProbeResult {
  target: string;
  connected: boolean;
  /** Connections tried (more than one only with patience). */
  attempts: number;
  /** Time from the first try to the connection. */
  seconds?: number;
  error?: string;
}

/** Tries a TCP connection (5 s timeout) to each `host:port` from a pod in `namespace`. */
export async function probeFrom(
  kc: KubeConfig,
  namespace: string,
  opts: { image: string; nodeSelector: Record<string, string>; tolerations: unknown[]; targets: string[]; patienceSeconds?: number },
): Promise<ProbeResult[]> {
  // With patience, a refused connection is tried again (every 0.5 s) until the deadline: a
  // NetworkPolicy implementation admits a new pod only once it has seen the pod.
  const script = [
    'import json, socket, sys, time',
    'deadline = time.monotonic() + float(sys.argv[1])',
    'out = []',
    'for target in sys.argv[2:]:',
    '    host, port = target.rsplit(":", 1)',
    '    started, attempts = time.monotonic(), 0',
    '    while True:',
    '        attempts += 1',
    '        try:',
    '            socket.create_connection((host, int(port)), timeout=5).close()',
    '            out.append({"target": target, "connected": True, "attempts": attempts, "seconds": round(time.monotonic() - started, 1)})',
    '            break',
    '        except Exception as e:',
    '            if time.monotonic() < deadline:',
    '                time.sleep(0.5)',
    '                continue',
    '            out.append({"target": target, "connected": False, "attempts": attempts, "error": type(e).__name__ + ": " + str(e)})',
    '            break',
    'open("/dev/termination-log", "w").write(json.dumps(out))',
  ].join('\n');
  const end = await runToCompletion(kc, namespace, { ...opts, command: ['python3', '-c', script, String(opts.patienceSeconds ?? 0), ...opts.targets] });
  try {
    return JSON.parse(end.message) as ProbeResult[];
  } catch {
    throw new Error(`the probe in ${namespace} ended without a result (exit ${end.exitCode}): ${end.message}`);
  }
}

/** A container that restarted: how its last run ended and the end of that run's log. */
export interface Restart {
  pod: string;
  container: string;
  restartCount: number;
  lastEnd: string;
  logTail: string;
}

/** Every container of the namespace's pods that restarted, with why (empty when none did). */
export async function restarts(core: CoreV1Api, namespace: string): Promise<Restart[]> {
  const found: Restart[] = [];
  for (const pod of await podsOf(core, namespace)) {
    for (const cs of pod.status?.containerStatuses ?? []) {
      if (!cs.restartCount) continue;
      const end = cs.lastState?.terminated;
      const logTail = await core.readNamespacedPodLog({ name: pod.metadata!.name!, namespace, container: cs.name, previous: true, tailLines: 40 })
        .catch((e: Error) => `(no log: ${e.message})`);
      found.push({
        pod: pod.metadata!.name!, container: cs.name, restartCount: cs.restartCount,
        lastEnd: end ? `${end.reason ?? ''} exit ${end.exitCode} ${end.message ?? ''}`.trim() : 'unknown', logTail,
      });
    }
  }
  return found;
}

/** The last `lines` lines each container of the namespace logged, one block per pod (for failure messages). */
export async function logTails(core: CoreV1Api, namespace: string, lines = 30): Promise<string> {
  const blocks: string[] = [];
  for (const pod of await podsOf(core, namespace)) {
    for (const c of pod.spec?.containers ?? []) {
      const log = await core.readNamespacedPodLog({ name: pod.metadata!.name!, namespace, container: c.name, tailLines: lines })
        .catch((e: Error) => `(no log: ${e.message})`);
      blocks.push(`--- ${pod.metadata!.name}/${c.name}\n${log}`);
    }
  }
  return blocks.join('\n');
}

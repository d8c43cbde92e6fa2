/**
 * Launch benchmark of the Kubernetes backend against a real control plane (kwok nodes):
 * wall time and API requests for 1, 20 and 100 concurrent launches. Requests are the delta
 * of `apiserver_request_total` (every client: backend, controllers, scheduler, kwok) and the
 * backend's own count. Not a test.
 *
 *   node bench/kube-launch.ts [--sizes 1,20,100] [--workers 2] [--nodes 4]
 */
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { parseArgs } from 'node:util';
import { configSchema } from '../config/schema.ts';
import { silentLogger } from '../shared/log.ts';
import { KubernetesBackend } from '../spawner/kubernetes/backend.ts';
import { ensurePlane } from '../test/kube/plane.ts';
import { watchUntil } from '../test/kube/watch.ts';
import { applyRbac, backendKubeConfig } from '../test/helpers/kube-rbac.ts';
import { startTestProvisioner, type TestProvisioner } from '../test/helpers/kube-volumes.ts';
import { apiRequests } from './side-by-side/apiserver.ts';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1,20,100' },
    workers: { type: 'string', default: '2' },
    nodes: { type: 'string', default: '4' },
  },
});
const sizes = values.sizes.split(',').map(Number);
const workers = Number(values.workers);

/** Resolves when no namespace matches `labelSelector` (listed, then watched from that list). */
async function namespacesGone(kc: KubeConfig, labelSelector: string): Promise<void> {
  const list = await kc.makeApiClient(CoreV1Api).listNamespace({ labelSelector });
  const live = new Set(list.items.map((n) => n.metadata!.name!));
  if (live.size === 0) return;
  await watchUntil(kc, '/api/v1/namespaces', { labelSelector, resourceVersion: list.metadata?.resourceVersion }, (phase, ns) => {
    if (phase === 'DELETED') live.delete(ns.metadata.name);
    return live.size === 0 ? true : undefined;
  }, { what: 'the round\'s namespaces to be deleted', timeoutMs: 600_000 });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

const plane = await ensurePlane({ nodes: Number(values.nodes) });
// kwok has no storage provisioner: the test one binds each workspace claim.
let provisioner: TestProvisioner | undefined;
try {
  const admin = new KubeConfig();
  admin.loadFromFile(plane.kubeconfigPath);
  await applyRbac(admin);
  provisioner = await startTestProvisioner(admin);
  const asBackend = await backendKubeConfig(admin);
  console.log(`size  wall_s  p50_s  p95_s  apiserver_requests  per_launch  backend_requests  per_launch  failures`);
  for (const size of sizes) {
    const prefix = plane.newPrefix('bench');
    const config = configSchema.parse({
      spawn: { maxWorkers: Math.max(workers, 1) },
      kubernetes: {
        namespacePrefix: prefix, instance: prefix, image: 'clusterhub/cluster:bench',
        schedulerResources: { cpu: '100m', memory: '128Mi' }, workerResources: { cpu: '100m', memory: '128Mi' },
      },
    });
    let backendRequests = 0;
    const backend = new KubernetesBackend({ config, kubeConfig: asBackend, log: silentLogger(), onRequest: () => backendRequests++ });
    const users = Array.from({ length: size }, (_, i) => `user-${i}`);
    const before = await apiRequests(admin);
    const started = performance.now();
    const times = await Promise.all(users.map(async (user) => {
      const t0 = performance.now();
      try {
        for await (const _ of backend.start(user, { workers, jupyterToken: 't', baseUrl: `/user/${user}/`, signal: AbortSignal.timeout(600_000) })) { /* drain */ }
        return (performance.now() - t0) / 1000;
      } catch (err) {
        console.error(`${user}: ${(err as Error).message}`);
        return NaN;
      }
    }));
    const wall = (performance.now() - started) / 1000;
    const after = await apiRequests(admin);
    const ok = times.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
    const delta = after - before;
    console.log([
      String(size).padStart(4), wall.toFixed(1).padStart(7), percentile(ok, 50).toFixed(1).padStart(6), percentile(ok, 95).toFixed(1).padStart(6),
      String(delta).padStart(19), (delta / size).toFixed(1).padStart(11), String(backendRequests).padStart(17),
      (backendRequests / size).toFixed(1).padStart(11), String(size - ok.length).padStart(9),
    ].join(' '));
    // Clean slate for the next size: every namespace of this round gone.
    // A reset: a plain stop keeps each namespace with its workspace claim.
    await Promise.all(users.map((u) => backend.stop(u, { removeWorkspace: true })));
    await namespacesGone(admin, `clusterhub.io/instance=${prefix}`);
    await backend.close();
  }
} finally {
  await provisioner?.stop();
  await plane.stop();
}

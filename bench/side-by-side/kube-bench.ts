/**
 * The Kubernetes benchmark on the test plane (kwok nodes): N users launch at once through
 * each hub's REST API — JupyterHub 5.5.4 + KubeSpawner 7.1.0 with user namespaces, and
 * clusterhub's Kubernetes backend running as the k8s/rbac ServiceAccount — alternating
 * rounds. On kwok KubeSpawner's pods run but no server answers, so the common measure is
 * the time until every user's pods are Running; clusterhub's time until its API says ready
 * is printed too. API requests are the apiserver's own count (every client of the plane).
 */
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { ensurePlane } from '../../test/kube/plane.ts';
import { watchUntil } from '../../test/kube/watch.ts';
import { applyRbac, backendKubeConfig } from '../../test/helpers/kube-rbac.ts';
import { startTestProvisioner, type TestProvisioner } from '../../test/helpers/kube-volumes.ts';
import { startHttpTarget } from '../../test/helpers/net.ts';
import { apiRequests } from './apiserver.ts';
import { api } from './http.ts';
import { seed, startClusterhub, startJupyterHub, type HubSetup, type HubUnderTest } from './hubs.ts';
import { renderTable, type Row } from './table.ts';

export interface KubeBenchOptions {
  rounds: number;
  users: number;
  venvBin: string;
  log: (line: string) => void;
}

type Sample = Record<string, number>;

/**
 * Resolves when `expected()` namespaces starting with `prefix` each have all their pods
 * Running (at least one); `expected` drops as launches fail.
 */
function allRunning(kc: KubeConfig, prefix: string, expected: () => number, timeoutMs: number): Promise<number> {
  const started = performance.now();
  const pods = new Map<string, string>();
  return watchUntil(kc, '/api/v1/pods', {}, (phase, pod) => {
    const ns: string = pod.metadata.namespace;
    if (!ns.startsWith(prefix)) return undefined;
    const key = `${ns}/${pod.metadata.name}`;
    if (phase === 'DELETED') pods.delete(key);
    else pods.set(key, pod.status?.phase ?? 'Pending');
    const byNs = new Map<string, boolean>();
    for (const [k, p] of pods) {
      const n = k.slice(0, k.indexOf('/'));
      byNs.set(n, (byNs.get(n) ?? true) && p === 'Running');
    }
    const done = byNs.size >= expected() && [...byNs.values()].every(Boolean);
    return done ? performance.now() - started : undefined;
  }, { what: `pods of every launched user Running`, timeoutMs });
}

/** Resolves when no namespace starting with `prefix` is left. */
async function namespacesGone(kc: KubeConfig, prefix: string): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const list = await core.listNamespace();
  const live = new Set(list.items.map((n) => n.metadata!.name!).filter((n) => n.startsWith(prefix)));
  if (live.size === 0) return;
  await watchUntil(kc, '/api/v1/namespaces', { resourceVersion: list.metadata?.resourceVersion }, (phase, ns) => {
    if (phase === 'DELETED') live.delete(ns.metadata.name);
    return live.size === 0 ? true : undefined;
  }, { what: `namespaces ${prefix}* to be deleted`, timeoutMs: 900_000 });
}

/** Deletes what is left of a round (not timed). */
async function deleteNamespaces(kc: KubeConfig, prefix: string): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const list = await core.listNamespace();
  await Promise.all(list.items.map((n) => n.metadata!.name!).filter((n) => n.startsWith(prefix)).map((name) => core.deleteNamespace({ name }).catch(() => {})));
}

/** Kinds of the objects in one user's namespace, with counts (what a system creates per user). */
async function objectsOf(kc: KubeConfig, namespace: string): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  const { AppsV1Api, NetworkingV1Api, RbacAuthorizationV1Api } = await import('@kubernetes/client-node');
  const apps = kc.makeApiClient(AppsV1Api);
  const net = kc.makeApiClient(NetworkingV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  const counts: Array<[string, Promise<{ items: unknown[] }>]> = [
    ['pod', core.listNamespacedPod({ namespace })],
    ['service', core.listNamespacedService({ namespace })],
    ['secret', core.listNamespacedSecret({ namespace })],
    ['configmap', core.listNamespacedConfigMap({ namespace })],
    ['serviceaccount', core.listNamespacedServiceAccount({ namespace })],
    ['pvc', core.listNamespacedPersistentVolumeClaim({ namespace })],
    ['resourcequota', core.listNamespacedResourceQuota({ namespace })],
    ['limitrange', core.listNamespacedLimitRange({ namespace })],
    ['deployment', apps.listNamespacedDeployment({ namespace })],
    ['replicaset', apps.listNamespacedReplicaSet({ namespace })],
    ['networkpolicy', net.listNamespacedNetworkPolicy({ namespace })],
    ['rolebinding', rbac.listNamespacedRoleBinding({ namespace })],
  ];
  const parts: string[] = [];
  for (const [kind, p] of counts) {
    const n = (await p).items.length;
    if (n) parts.push(`${n} ${kind}`);
  }
  return `namespace + ${parts.join(', ')}`;
}

async function launchRound(hub: HubUnderTest, admin: KubeConfig, users: string[], nsPrefix: string): Promise<Sample> {
  const before = await apiRequests(admin);
  let failed = 0;
  const running = allRunning(admin, nsPrefix, () => users.length - failed, 600_000);
  const started = performance.now();
  await Promise.all(users.map(async (u) => {
    const res = await api(hub.apiUrl, hub.token, 'POST', hub.serverPath(u), hub.launchBody).catch((err: Error) => ({ status: 599, text: err.message }));
    if (res.status >= 300) {
      failed++;
      process.stderr.write(`[bench] ${hub.name}: launch ${u} failed: ${res.status} ${res.text.slice(0, 200)}\n`);
    }
  }));
  const sample: Sample = { running: await running, failed };
  if (hub.name === 'clusterhub') {
    // Until the hub's own API says every cluster is ready (the student's Launch ends there).
    for (;;) {
      const res = await api(hub.apiUrl, hub.token, 'GET', '/users');
      const list = JSON.parse(res.text) as Array<{ name: string; cluster?: { phase: string } }>;
      const ready = list.filter((u) => users.includes(u.name) && u.cluster?.phase === 'running').length;
      if (ready === users.length - failed) break;
      const ended = list.find((u) => users.includes(u.name) && u.cluster?.phase === "stopped");
      if (ended) throw new Error(`clusterhub: ${ended.name}'s launch ended stopped`);
    }
    sample.ready = performance.now() - started;
  }
  sample.requests = (await apiRequests(admin)) - before;
  return sample;
}

export async function kubeBench(options: KubeBenchOptions): Promise<string> {
  const plane = await ensurePlane({ nodes: 4 });
  const target = await startHttpTarget('unused');
  const users = Array.from({ length: options.users }, (_, i) => `user${i}`);
  const setup: HubSetup = { users, targetUrl: target.url };
  const seeded = await seed(setup, options.venvBin);
  const peer: Sample[] = [];
  const ours: Sample[] = [];
  const notes: string[] = [];
  const created: Record<string, string> = {};
  let provisioner: TestProvisioner | undefined;
  try {
    const admin = new KubeConfig();
    admin.loadFromFile(plane.kubeconfigPath);
    await applyRbac(admin);
    // kwok has no storage provisioner: the test one binds each workspace claim.
    provisioner = await startTestProvisioner(admin);
    const saConfig = join(seeded.clusterhubState, 'sa-kubeconfig');
    writeFileSync(saConfig, (await backendKubeConfig(admin, 6 * 3600)).exportConfig(), { mode: 0o600 });
    for (let r = 1; r <= options.rounds; r++) {
      for (const which of r % 2 ? ['JupyterHub', 'clusterhub'] as const : ['clusterhub', 'JupyterHub'] as const) {
        const prefix = plane.newPrefix(which === 'JupyterHub' ? 'jh' : 'ch');
        const load1 = loadavg()[0]!.toFixed(2);
        const hub = which === 'JupyterHub'
          ? await startJupyterHub(setup, seeded, options.venvBin, { BENCH_SPAWNER: 'kubespawner', BENCH_NS_TEMPLATE: `${prefix}-{username}`, KUBECONFIG: plane.kubeconfigPath })
          : await startClusterhub(setup, seeded, {
            entry: 'cli',
            config: [
              'spawn:', '  backend: kubernetes', `  maxWorkers: 2`,
              'kubernetes:', `  kubeconfig: ${saConfig}`, `  namespacePrefix: ${prefix}`, `  instance: ${prefix}`,
              '  image: clusterhub/cluster:bench',
              '  schedulerResources: {cpu: 10m, memory: 16Mi}', '  workerResources: {cpu: 10m, memory: 16Mi}',
              '  nodeSelector: {type: kwok}',
            ],
          });
        try {
          const sample = await launchRound(hub, admin, users, `${prefix}-`);
          (which === 'JupyterHub' ? peer : ours).push(sample);
          created[which] ??= await objectsOf(admin, (await admin.makeApiClient(CoreV1Api).listNamespace()).items.map((n) => n.metadata!.name!).find((n) => n.startsWith(`${prefix}-`))!);
          notes.push(`round ${r} ${which}: load average ${load1} → ${loadavg()[0]!.toFixed(2)}`);
          options.log(`round ${r}/${options.rounds} ${which}: ${JSON.stringify(sample)}`);
          // clusterhub stops through its API; JupyterHub refuses to stop a spawn still waiting
          // for a server that kwok never runs, so its namespaces are removed directly below.
          if (which === 'clusterhub') await Promise.all(users.map((u) => api(hub.apiUrl, hub.token, 'DELETE', hub.serverPath(u))));
        } finally {
          await hub.stop();
        }
        await deleteNamespaces(admin, `${prefix}-`);
        await namespacesGone(admin, `${prefix}-`);
      }
    }
  } finally {
    await target.close();
    seeded.cleanup();
    await provisioner?.stop();
    await plane.stop();
  }
  const n = options.users;
  const rows: Row[] = [
    { measure: `${n} users launch at once → all pods Running`, unit: 's', lowerIsBetter: true, peer: peer.map((s) => s.running!), ours: ours.map((s) => s.running!) },
    { measure: `… → the hub's API says every cluster ready`, unit: 's', lowerIsBetter: true, peer: [], ours: ours.map((s) => s.ready!) },
    { measure: 'launches that failed', unit: 'count', lowerIsBetter: true, peer: peer.map((s) => s.failed!), ours: ours.map((s) => s.failed!) },
    { measure: 'apiserver requests per launch (every client)', unit: 'count', lowerIsBetter: true, peer: peer.map((s) => s.requests! / n), ours: ours.map((s) => s.requests! / n) },
  ];
  return [
    renderTable('JupyterHub 5.5.4 + KubeSpawner 7.1.0', rows),
    '',
    `Per user, JupyterHub + KubeSpawner: ${created.JupyterHub}`,
    `Per user, clusterhub (scheduler + ${1} worker): ${created.clusterhub}`,
    `${options.rounds} alternating rounds on 4 kwok nodes, medians.`,
    ...notes,
  ].join('\n');
}

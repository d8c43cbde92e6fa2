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
import { setTimeout as delay } from 'node:timers/promises';
import { ensurePlane } from '../../test/kube/plane.ts';
import { applyRbac, backendKubeConfig } from '../../test/helpers/kube-rbac.ts';
import { startTestProvisioner, type TestProvisioner } from '../../test/helpers/kube-volumes.ts';
import { startHttpTarget, waitUntil } from '../../test/helpers/net.ts';
import { waitForPods, watchUntil } from '../../test/kube/watch.ts';
import { configSchema } from '../../config/schema.ts';
import { silentLogger } from '../../shared/log.ts';
import { KubernetesBackend } from '../../spawner/kubernetes/backend.ts';
import { LABEL_COMPONENT } from '../../spawner/kubernetes/labels.ts';
import { apiRequests, apiRequestsByKind, kindsPerLaunch } from './apiserver.ts';
import { cpuMeter, stageTimes } from './kube-profile.ts';
import { api } from './http.ts';
import { seed, startClusterhub, startJupyterHub, type HubSetup, type HubUnderTest } from './hubs.ts';
import { renderTable, type Row } from './table.ts';

export interface KubeBenchOptions {
  rounds: number;
  users: number;
  venvBin: string;
  log: (line: string) => void;
  /** clusterhub's spawn.concurrency (default: its own default for Kubernetes). */
  spawnConcurrency?: number;
  /** clusterhub's kubernetes.apiConcurrency (default: its own default). */
  apiConcurrency?: number;
  /** Workers of the one cluster scaled after each clusterhub round (default 100). */
  scaleTo?: number;
}

type Sample = Record<string, number>;

/**
 * Resolves with the time at which `expected()` namespaces starting with `prefix` had each had
 * `podsPerUser` pods Running at once; `expected` drops as launches fail. A namespace counts
 * once it got there: KubeSpawner deletes a pod whose server never answers (on kwok none does)
 * after its start timeout, and a launch that fails late must not leave the wait hanging, so
 * the count is also checked every 250 ms, not only on pod events.
 */
function allRunning(kc: KubeConfig, prefix: string, expected: () => number, podsPerUser: number, timeoutMs: number): Promise<number> {
  const started = performance.now();
  const pods = new Map<string, string>();
  const reached = new Set<string>();
  let lastReached = 0;
  let poll: NodeJS.Timeout | undefined;
  const stop = new AbortController();
  const polled = new Promise<number>((resolve) => {
    poll = setInterval(() => {
      if (reached.size > 0 && reached.size >= expected()) resolve(lastReached);
    }, 250);
  });
  const watched = watchUntil(kc, '/api/v1/pods', {}, (phase, pod) => {
    const ns: string = pod.metadata.namespace;
    if (!ns.startsWith(prefix)) return undefined;
    const key = `${ns}/${pod.metadata.name}`;
    if (phase === 'DELETED') pods.delete(key);
    else pods.set(key, pod.status?.phase ?? 'Pending');
    if (!reached.has(ns)) {
      let running = 0;
      for (const [k, p] of pods) if (k.startsWith(`${ns}/`) && p === 'Running') running++;
      if (running >= podsPerUser) {
        reached.add(ns);
        lastReached = performance.now() - started;
      }
    }
    return reached.size >= expected() ? lastReached : undefined;
  }, { what: `pods of every launched user Running`, timeoutMs, signal: stop.signal });
  watched.catch(() => {}); // a rejection after the poll won is the abort below
  return Promise.race([watched, polled]).finally(() => {
    clearInterval(poll);
    stop.abort(new Error('done'));
  });
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

/** The hub's own Kubernetes requests so far (its /hub/metrics counter, every request kind), and by kind. */
async function hubRequestsByKind(hub: HubUnderTest): Promise<Map<string, number>> {
  const res = await fetch(`${hub.publicUrl}/hub/metrics`, { headers: { Authorization: `token ${hub.token}` } });
  if (res.status !== 200) throw new Error(`clusterhub /hub/metrics: ${res.status}`);
  const kinds = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    const m = /^clusterhub_kubernetes_api_requests_total\{request="([^"]*)"\} (\S+)$/.exec(line);
    if (m) kinds.set(m[1]!, Number(m[2]));
  }
  return kinds;
}

async function hubRequests(hub: HubUnderTest): Promise<number> {
  let total = 0;
  for (const n of (await hubRequestsByKind(hub)).values()) total += n;
  return total;
}

/**
 * Scales one running cluster through the hub's API (PATCH) and times it until every worker
 * pod is Running and the backend's own status (what the hub reads) says that many are ready.
 */
async function scaleRound(hub: HubUnderTest, admin: KubeConfig, backend: KubernetesBackend, user: string, namespace: string, workers: number): Promise<Sample> {
  // From 2 workers, as a launch with the default count has (not timed); the backend's informers list meanwhile.
  const two = await api(hub.apiUrl, hub.token, 'PATCH', `/users/${user}/cluster`, { workers: 2 });
  if (two.status !== 200) throw new Error(`clusterhub: scale ${user} to 2: ${two.status} ${two.text.slice(0, 200)}`);
  await waitUntil(`${user}'s cluster to run 2 ready workers`, async () => (await backend.status(user)).readyWorkers === 2, { timeoutMs: 120_000, intervalMs: 50 });
  const before = await apiRequests(admin);
  const hubBefore = await hubRequests(hub);
  const started = performance.now();
  const res = await api(hub.apiUrl, hub.token, 'PATCH', `/users/${user}/cluster`, { workers });
  if (res.status !== 200) throw new Error(`clusterhub: scale ${user} to ${workers}: ${res.status} ${res.text.slice(0, 200)}`);
  const running = await waitForPods(admin, namespace, `${LABEL_COMPONENT}=workers`, (pods) => pods.filter((p) => p.status?.phase === 'Running').length >= workers, {
    what: `${workers} Running workers in ${namespace}`, timeoutMs: 300_000,
  }).then(() => performance.now() - started);
  const requests = (await apiRequests(admin)) - before;
  const hubOwn = (await hubRequests(hub)) - hubBefore;
  await waitUntil(`the backend to report ${workers} ready workers`, async () => (await backend.status(user)).readyWorkers === workers, { timeoutMs: 60_000, intervalMs: 20 });
  return { scaleRunning: running, scaleReported: performance.now() - started, scaleRequests: requests, scaleHubRequests: hubOwn };
}

/** Every user's cluster stopped at once through the hub's API (DELETE answers 204 once nothing is left). */
async function stopRound(hub: HubUnderTest, admin: KubeConfig, users: string[]): Promise<Sample> {
  const before = await apiRequests(admin);
  const hubBefore = await hubRequests(hub);
  const started = performance.now();
  const replies = await Promise.all(users.map((u) => api(hub.apiUrl, hub.token, 'DELETE', hub.serverPath(u))));
  const elapsed = performance.now() - started;
  const bad = replies.filter((r) => r.status !== 204);
  if (bad.length) process.stderr.write(`[bench] clusterhub: ${bad.length} stops failed, e.g. ${bad[0]!.status} ${bad[0]!.text.slice(0, 200)}\n`);
  return { stopped: elapsed, stopRequests: (await apiRequests(admin)) - before, stopHubRequests: (await hubRequests(hub)) - hubBefore };
}

/** One launch round; `profile` gets where its time went (object timestamps, CPU per process). */
async function launchRound(hub: HubUnderTest, admin: KubeConfig, users: string[], nsPrefix: string, planeLogs: string, profile: string[]): Promise<Sample> {
  const cpu = cpuMeter(planeLogs, hub.pid);
  const kindsBefore = await apiRequestsByKind(admin);
  const before = [...kindsBefore.values()].reduce((a, b) => a + b, 0);
  const hubBefore = hub.name === 'clusterhub' ? await hubRequests(hub) : 0;
  let failed = 0;
  const refused = new Set<string>();
  // clusterhub: the scheduler and one worker; KubeSpawner: the single-user server.
  const running = allRunning(admin, nsPrefix, () => users.length - failed, hub.name === 'clusterhub' ? 2 : 1, 600_000);
  const started = performance.now();
  const startedAt = Date.now();
  await Promise.all(users.map(async (u) => {
    const res = await api(hub.apiUrl, hub.token, 'POST', hub.serverPath(u), hub.launchBody).catch((err: Error) => ({ status: 599, text: err.message }));
    if (res.status >= 300) {
      failed++;
      refused.add(u);
      process.stderr.write(`[bench] ${hub.name}: launch ${u} failed: ${res.status} ${res.text.slice(0, 200)}\n`);
    }
  }));
  // clusterhub answers a launch at once (202): from here its API is polled until it says every
  // cluster is ready (the student's Launch ends there), every 250 ms: a list of 200 users that
  // changes all the time is built anew for each poll, and at 50 ms the polls took the hub's CPU
  // from the launches (JupyterHub is not polled). The line's depth is read on the way.
  let deepest = 0;
  const ready = hub.name !== 'clusterhub' ? undefined : (async () => {
    for (;;) {
      const res = await api(hub.apiUrl, hub.token, 'GET', '/users?limit=200');
      const list = (JSON.parse(res.text) as Array<{ name: string; cluster?: { phase: string; queue_position?: number } }>).filter((u) => users.includes(u.name) && !refused.has(u.name));
      for (const u of list) deepest = Math.max(deepest, u.cluster?.queue_position ?? 0);
      if (list.every((u) => u.cluster?.phase === 'running')) return performance.now() - started;
      for (const u of list.filter((l) => l.cluster?.phase === 'stopped')) {
        // A launch that failed: counted, and no longer waited for.
        process.stderr.write(`[bench] clusterhub: ${u.name}'s launch ended stopped\n`);
        refused.add(u.name);
        failed++;
      }
      await delay(250);
    }
  })();
  const sample: Sample = { running: await running };
  if (ready) {
    sample.ready = await ready;
    sample.deepestQueue = deepest;
    sample.hubRequests = (await hubRequests(hub)) - hubBefore;
    process.stderr.write(`[bench] clusterhub's requests by kind: ${JSON.stringify(Object.fromEntries(await hubRequestsByKind(hub)))}\n`);
  }
  sample.failed = failed;
  const kindsAfter = await apiRequestsByKind(admin);
  sample.requests = [...kindsAfter.values()].reduce((a, b) => a + b, 0) - before;
  profile.push(`CPU during the launches: ${cpu.done()}`);
  profile.push(`apiserver requests per launch by kind (every client): ${kindsPerLaunch(kindsBefore, kindsAfter, users.length)}`);
  profile.push(`objects created, s after the first launch request (p10/p50/p90): ${await stageTimes(admin, nsPrefix, startedAt)}`);
  return sample;
}

export async function kubeBench(options: KubeBenchOptions): Promise<string> {
  const plane = await ensurePlane({ nodes: 4 });
  const target = await startHttpTarget('unused');
  const users = Array.from({ length: options.users }, (_, i) => `user${i}`);
  const scaleTo = options.scaleTo ?? 100;
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
    const saKube = await backendKubeConfig(admin, 6 * 3600);
    writeFileSync(saConfig, saKube.exportConfig(), { mode: 0o600 });
    for (let r = 1; r <= options.rounds; r++) {
      for (const which of r % 2 ? ['JupyterHub', 'clusterhub'] as const : ['clusterhub', 'JupyterHub'] as const) {
        const prefix = plane.newPrefix(which === 'JupyterHub' ? 'jh' : 'ch');
        const load1 = loadavg()[0]!.toFixed(2);
        // A JupyterHub round leaves KubeSpawner's pending spawns in its database (kwok never
        // answers): the next JupyterHub would resume them and re-create that round's namespaces.
        if (which === 'JupyterHub') seeded.resetJupyterHub();
        const hub = which === 'JupyterHub'
          ? await startJupyterHub(setup, seeded, options.venvBin, { BENCH_SPAWNER: 'kubespawner', BENCH_NS_TEMPLATE: `${prefix}-{username}`, KUBECONFIG: plane.kubeconfigPath })
          : await startClusterhub(setup, seeded, {
            entry: 'cli',
            config: [
              'spawn:', '  backend: kubernetes', `  maxWorkers: ${scaleTo}`,
              ...(options.spawnConcurrency ? [`  concurrency: ${options.spawnConcurrency}`] : []),
              'kubernetes:', `  kubeconfig: ${saConfig}`, `  namespacePrefix: ${prefix}`, `  instance: ${prefix}`,
              ...(options.apiConcurrency ? [`  apiConcurrency: ${options.apiConcurrency}`] : []),
              '  image: clusterhub/cluster:bench',
              '  schedulerResources: {cpu: 10m, memory: 16Mi}', '  workerResources: {cpu: 10m, memory: 16Mi}',
              '  nodeSelector: {type: kwok}',
            ],
          });
        try {
          const profile: string[] = [];
          const sample = await launchRound(hub, admin, users, `${prefix}-`, plane.logsDir, profile);
          for (const line of profile) notes.push(`round ${r} ${which}: ${line}`);
          created[which] ??= await objectsOf(admin, (await admin.makeApiClient(CoreV1Api).listNamespace()).items.map((n) => n.metadata!.name!).find((n) => n.startsWith(`${prefix}-`))!);
          const loadAfterLaunch = loadavg()[0]!.toFixed(2);
          // clusterhub then scales one cluster and stops every one through its API; JupyterHub
          // refuses to stop a spawn still waiting for a server that kwok never runs, so its
          // namespaces are removed directly below.
          if (which === 'clusterhub') {
            const config = configSchema.parse({ spawn: { backend: 'kubernetes', maxWorkers: scaleTo }, kubernetes: { namespacePrefix: prefix, instance: prefix } });
            const backend = new KubernetesBackend({ config, kubeConfig: saKube, log: silentLogger() });
            try {
              Object.assign(sample, await scaleRound(hub, admin, backend, users[0]!, `${prefix}-${users[0]}`, scaleTo));
            } finally {
              await backend.close();
            }
            Object.assign(sample, await stopRound(hub, admin, users));
          }
          (which === 'JupyterHub' ? peer : ours).push(sample);
          notes.push(`round ${r} ${which}: load average ${load1} → ${loadAfterLaunch} (launches) → ${loadavg()[0]!.toFixed(2)}`);
          options.log(`round ${r}/${options.rounds} ${which}: ${JSON.stringify(sample)}`);
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
    { measure: 'deepest place in the launch line seen (queue_position)', unit: 'count', lowerIsBetter: true, peer: [], ours: ours.map((s) => s.deepestQueue!) },
    { measure: 'launches that failed', unit: 'count', lowerIsBetter: true, peer: peer.map((s) => s.failed!), ours: ours.map((s) => s.failed!) },
    { measure: 'apiserver requests per launch (every client)', unit: 'count', lowerIsBetter: true, peer: peer.map((s) => s.requests! / n), ours: ours.map((s) => s.requests! / n) },
    { measure: '… of them sent by the hub itself', unit: 'count', lowerIsBetter: true, peer: [], ours: ours.map((s) => s.hubRequests! / n) },
    { measure: `scale one cluster 2 → ${scaleTo} workers → all Running`, unit: 's', lowerIsBetter: true, peer: [], ours: ours.map((s) => s.scaleRunning!) },
    { measure: '… → the backend reports them ready', unit: 's', lowerIsBetter: true, peer: [], ours: ours.map((s) => s.scaleReported!) },
    { measure: '… apiserver requests (every client)', unit: 'count', lowerIsBetter: true, peer: [], ours: ours.map((s) => s.scaleRequests!) },
    { measure: '… of them sent by the hub itself', unit: 'count', lowerIsBetter: true, peer: [], ours: ours.map((s) => s.scaleHubRequests!) },
    { measure: `${n} stops at once → every DELETE answered 204`, unit: 's', lowerIsBetter: true, peer: [], ours: ours.map((s) => s.stopped!) },
    { measure: 'apiserver requests per stop (every client, while the stops ran)', unit: 'count', lowerIsBetter: true, peer: [], ours: ours.map((s) => s.stopRequests! / n) },
    { measure: '… of them sent by the hub itself', unit: 'count', lowerIsBetter: true, peer: [], ours: ours.map((s) => s.stopHubRequests! / n) },
  ];
  return [
    renderTable('JupyterHub 5.5.4 + KubeSpawner 7.1.0', rows),
    '',
    `Per user, JupyterHub + KubeSpawner: ${created.JupyterHub}`,
    `Per user, clusterhub (scheduler + ${1} worker): ${created.clusterhub}`,
    `${options.rounds} alternating rounds on 4 kwok nodes, medians; clusterhub with spawn.concurrency ${options.spawnConcurrency ?? 'default'}, kubernetes.apiConcurrency ${options.apiConcurrency ?? 'default'}.`,
    ...notes,
  ].join('\n');
}

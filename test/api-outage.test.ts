/**
 * The cluster's API server goes away during launches: kube-apiserver of a private control
 * plane (kwok nodes) killed and started again, the hub running as its ServiceAccount.
 * Running clusters stay routed; a short outage is ridden out within the start timeout; a
 * long one fails launches saying the API server is unreachable, and their namespaces go
 * as soon as it answers again.
 */
import test, { type ExecutionContext } from 'ava';
import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { namespaceFor } from '../spawner/names.ts';
import { startPlane, type Plane } from './kube/plane.ts';
import { startTestHub, type TestHub } from './helpers/hub.ts';
import { applyRbac, backendKubeConfig } from './helpers/kube-rbac.ts';
import { call, clusterNamespaces, kubeHubConfig, namespaces, noClustersLeft, phases, progressUntil, seedUsers, userRoutes, workspaceNamespaces } from './helpers/kube-hub.ts';
import { startTestProvisioner, type TestProvisioner } from './helpers/kube-volumes.ts';
import { waitUntil } from './helpers/net.ts';

let plane: Plane;
let admin: KubeConfig;
let dir: string;
let kubeconfig: string;
let provisioner: TestProvisioner | undefined;

test.before(async () => {
  // A plane of its own: its API server is killed here.
  plane = await startPlane({ nodes: 2 });
  admin = new KubeConfig();
  admin.loadFromFile(plane.kubeconfigPath);
  await applyRbac(admin);
  provisioner = await startTestProvisioner(admin);
  dir = await mkdtemp(join(tmpdir(), 'clusterhub-outage-'));
  kubeconfig = join(dir, 'kubeconfig.json');
  await writeFile(kubeconfig, (await backendKubeConfig(admin, 7200)).exportConfig(), { mode: 0o600 });
});

test.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  await provisioner?.stop();
  await plane?.stop();
});

const REPAIR_SECONDS = 3600;

async function hubFor(t: ExecutionContext, students: string[], spawn: Record<string, unknown>): Promise<{ hub: TestHub; token: string; prefix: string }> {
  const prefix = plane.newPrefix('out');
  const stateDir = join(dir, prefix);
  // No repair or reconcile pass during a test (they would also remove what failed launches
  // left): what is tested is that the removals happen by themselves once the API server answers.
  const { hub: _ports, ...config } = await kubeHubConfig({ stateDir, kubeconfig, prefix, extra: { spawn, proxy: { checkRoutesSeconds: REPAIR_SECONDS } } });
  const token = seedUsers(stateDir, students);
  const hub = await startTestHub({ stateDir, config: { ...config, hub: { logLevel: 'warn' } } });
  t.teardown(() => hub.destroy());
  return { hub, token, prefix };
}

/** A namespace's pods, workloads and events as the API server has them, for a failure's log. */
async function planeView(namespace: string): Promise<string> {
  const core = admin.makeApiClient(CoreV1Api);
  const apps = admin.makeApiClient(AppsV1Api);
  const [pods, deployments, replicaSets, events] = await Promise.all([
    core.listNamespacedPod({ namespace }), apps.listNamespacedDeployment({ namespace }), apps.listNamespacedReplicaSet({ namespace }), core.listNamespacedEvent({ namespace }),
  ]);
  return [
    ...pods.items.map((p) => `pod ${p.metadata?.name} ${p.status?.phase} node=${p.spec?.nodeName ?? '-'} ${(p.status?.conditions ?? []).map((c) => `${c.type}=${c.status}`).join(',')} rv=${p.metadata?.resourceVersion}`),
    ...deployments.items.map((d) => `deployment ${d.metadata?.name} replicas=${d.spec?.replicas} ready=${d.status?.readyReplicas ?? 0}`),
    ...replicaSets.items.map((r) => `replicaset ${r.metadata?.name} replicas=${r.status?.replicas ?? 0} ready=${r.status?.readyReplicas ?? 0}`),
    ...events.items.map((e) => `event ${e.involvedObject?.kind}/${e.involvedObject?.name} ${e.reason}: ${e.message}`),
  ].join('\n');
}

const launch = (hub: TestHub, token: string, user: string) => call(hub.publicUrl, token, `/hub/api/users/${user}/cluster`, 'POST', { workers: 1 });
const created = (e: { message: string }) => /^Namespace .* created$/.test(e.message);
const final = (e: { ready?: boolean; failed?: boolean }) => Boolean(e.ready || e.failed);

test.serial('an outage shorter than the start timeout is ridden out: the launches retry and become ready', async (t) => {
  const students = ['brief1', 'brief2'];
  const { hub, token, prefix } = await hubFor(t, students, { startTimeoutSeconds: 240 });
  for (const s of students) t.is((await launch(hub, token, s)).status, 202);
  await Promise.all(students.map((s) => progressUntil(hub.publicUrl, token, s, created)));
  const ends = students.map((s) => progressUntil(hub.publicUrl, token, s, final));
  await plane.stopApiServer!();
  await delay(3000); // the outage: what is tested is that launches outlast it
  await plane.startApiServer!();
  const results = await Promise.all(ends);
  for (const [i, end] of results.entries()) {
    if (!end.ready) t.log(`${students[i]}: what the plane holds:\n${await planeView(namespaceFor(prefix, students[i]!))}`);
    t.true(end.ready, end.message);
  }
  t.deepEqual(await userRoutes(hub.config), students);
  await call(hub.publicUrl, token, '/hub/api/clusters', 'DELETE');
  await noClustersLeft(admin, prefix);
});

test.serial('a long outage fails launches saying the API server is unreachable; what they left goes as soon as it answers', async (t) => {
  const students = ['steady', 'l1', 'l2', 'l3', 'l4', 'l5'];
  const { hub, token, prefix } = await hubFor(t, students, { startTimeoutSeconds: 15, concurrency: 5 });
  t.is((await launch(hub, token, 'steady')).status, 202);
  t.true((await progressUntil(hub.publicUrl, token, 'steady', final)).ready);
  const launching = students.slice(1);
  // With the fake nodes frozen no pod starts, so none of these launches can be Ready when
  // the API server goes; it is killed once the first namespace is there, several half-way.
  const resumeFakeNodes = plane.freezeFakeNodes!();
  t.teardown(resumeFakeNodes);
  for (const s of launching) t.is((await launch(hub, token, s)).status, 202);
  const ends = launching.map((s) => progressUntil(hub.publicUrl, token, s, final));
  await Promise.any(launching.map((s) => progressUntil(hub.publicUrl, token, s, created)));
  await plane.stopApiServer!();

  for (const end of await Promise.all(ends)) {
    t.true(end.failed);
    t.regex(end.message, /the cluster's Kubernetes API server is unreachable \(.*ECONNREFUSED.*\)/);
    t.notRegex(end.message, /fetch failed/);
  }
  // The running cluster stays routed and the hub healthy while the API server is away.
  t.deepEqual(await userRoutes(hub.config), ['steady']);
  await t.throwsAsync(hub.repair(), undefined, 'a repair pass cannot ask the backend');
  t.deepEqual(await userRoutes(hub.config), ['steady'], 'and still keeps the routes');
  t.like(hub.health(), { status: 'ok', proxy: { state: 'running' }, repair: { ok: false } });
  t.deepEqual(launching.map((s) => hub.manager.view(s).phase), launching.map(() => 'stopping'), 'what they left is still to be removed');

  await plane.startApiServer!();
  resumeFakeNodes(); // the namespaces' pods are deleted through the fake nodes
  const answered = Date.now();
  const left = launching.map((s) => namespaceFor(prefix, s));
  // Their workloads go and their records with them; a namespace stays only for a bound workspace claim.
  await waitUntil('the failed launches\' workloads to be deleted', async () => {
    const [{ live }, running, withClaim, now] = await Promise.all([namespaces(admin, prefix), clusterNamespaces(admin, prefix), workspaceNamespaces(admin, prefix), phases(hub.publicUrl, token)]);
    return launching.every((s) => now[s] === 'stopped') && left.every((n) => !running.includes(n) && (!live.includes(n) || withClaim.includes(n)));
  }, { timeoutMs: 60_000, intervalMs: 200 });
  // Within the wait above (60 s): neither a repair pass (hourly here) nor the orphan grace (10 min) did it.
  t.log(`failed launches' workloads and records removed ${((Date.now() - answered) / 1000).toFixed(1)} s after the API server answered again`);
  const now = await phases(hub.publicUrl, token);
  t.deepEqual(launching.map((s) => now[s]), launching.map(() => 'stopped'));
  t.is(now['steady'], 'running');
  t.is((await launch(hub, token, 'l1')).status, 202, 'a student can launch again');
  await call(hub.publicUrl, token, '/hub/api/clusters', 'DELETE');
  await noClustersLeft(admin, prefix);
});

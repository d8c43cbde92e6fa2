/**
 * The idle culler through the whole hub with the Kubernetes backend against a real control
 * plane (kwok fake nodes): clusters launched through the REST API, a real
 * configurable-http-proxy, time compressed through config (idle after 3 s). kwok pods run
 * nothing, so no Jupyter answers: the proxy's view decides, and the report and log say so.
 *
 * Proxy traffic with nothing behind the route: configurable-http-proxy 5 moves a route's
 * last_activity on every chunk of a request body it forwards, even when the target then
 * fails (503), but not for a request without a body that fails. So a student saving a
 * notebook (`PUT api/contents/…` with a body) is traffic here, a GET answered 503 is not.
 *
 * One state directory, three hub processes in turn (namespaces outlive them), as an
 * operator restarts a hub with new settings: sweeps on request; `culler.dryRun: true`
 * every second; every second for real, with a max age.
 */
import test from 'ava';
import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureLogger, type LogLine } from './helpers/culler.ts';
import type { SweepReport } from '../culler/types.ts';
import { namespaceFor } from '../spawner/names.ts';
import { ensurePlane, type Plane } from './kube/plane.ts';
import { watchUntil } from './kube/watch.ts';
import { applyRbac, backendKubeConfig } from './helpers/kube-rbac.ts';
import { startTestHub, type TestHub } from './helpers/hub.ts';
import { apiAs, cullNow, trafficLoop } from './helpers/hub-api.ts';
import { waitUntil } from './helpers/net.ts';
import { startTestProvisioner, type TestProvisioner } from './helpers/kube-volumes.ts';

const IDLE = 3;
const GRACE = 8;
let plane: Plane;
let admin: KubeConfig;
let core: CoreV1Api;
let dir: string;
let kubeconfig: string;
let prefix: string;
let hub: TestHub | undefined;
let logs: LogLine[] = [];
const tokens: Record<string, string> = {};
let stopTraffic: (() => Promise<number[]>) | undefined;
let provisioner: TestProvisioner | undefined;

test.before(async () => {
  plane = await ensurePlane({ nodes: 2 });
  admin = new KubeConfig();
  admin.loadFromFile(plane.kubeconfigPath);
  core = admin.makeApiClient(CoreV1Api);
  await applyRbac(admin);
  dir = await mkdtemp(join(tmpdir(), 'clusterhub-culling-kube-'));
  // The hub runs as its ServiceAccount (the rights of k8s/rbac), from a kubeconfig file.
  kubeconfig = join(dir, 'kubeconfig.json');
  await writeFile(kubeconfig, (await backendKubeConfig(admin)).exportConfig(), { mode: 0o600 });
  prefix = plane.newPrefix('cull');
  provisioner = await startTestProvisioner(admin);
});

test.after.always(async () => {
  await closePhase().catch(() => {});
  const left = await core?.listNamespace({ labelSelector: `clusterhub.io/instance=${prefix}` }).catch(() => undefined);
  for (const ns of left?.items ?? []) await core.deleteNamespace({ name: ns.metadata!.name! }).catch(() => {});
  if (dir) await rm(dir, { recursive: true, force: true });
  await provisioner?.stop();
  await plane?.stop();
});

/** Start a hub on the shared state directory with these culler settings. */
async function startPhase(culler: Record<string, unknown>): Promise<TestHub> {
  await closePhase(); // a failed phase must not leave its hub running
  const log = captureLogger();
  logs = log.lines;
  hub = await startTestHub({
    stateDir: join(dir, 'state'), log,
    config: {
      spawn: { backend: 'kubernetes', defaultWorkers: 1 },
      kubernetes: {
        kubeconfig, namespacePrefix: prefix, instance: prefix, image: 'clusterhub/cluster:test',
        schedulerResources: { cpu: '200m', memory: '256Mi' }, workerResources: { cpu: '100m', memory: '128Mi' },
      },
      culler: { enabled: true, idleTimeoutSeconds: IDLE, orphanGraceSeconds: GRACE, ...culler },
    },
  });
  for (const login of ['kim', 'tia', 'ivo', 'teacher']) tokens[login] ??= hub.token(login);
  return hub;
}

async function closePhase(): Promise<void> {
  await stopTraffic?.();
  stopTraffic = undefined;
  await hub?.close();
  hub = undefined;
}

const api = (path: string, as: string, init: { method?: string; json?: unknown } = {}) => apiAs(hub!, tokens[as]!, path, init);
const cull = (body: { dry_run?: boolean } = {}) => cullNow(hub!, tokens.teacher!, body);

/** Launch through the API as the user, and wait for the ready event. */
async function launch(user: string): Promise<void> {
  const res = await api(`/hub/api/users/${user}/cluster`, user, { method: 'POST', json: {} });
  if (res.status !== 202) throw new Error(`launch of ${user}: ${res.status} ${await res.text()}`);
  for await (const event of hub!.manager.progress(user)) {
    if (event.failed) throw new Error(`${user}: ${event.message}`);
    if (event.ready) return;
  }
}

const line = (report: SweepReport, user: string) => report.clusters.find((c) => c.user === user);
const culledEvent = (user: string) => hub!.store.listEvents({ user, kind: 'culled', limit: 1 })[0];
const userRoutes = async () => Object.keys(await hub!.proxy.getRoutes()).filter((p) => p.startsWith('/user/'));
const logged = (msg: string, user: string) => logs.some((l) => l.msg === msg && l.obj.user === user);
const ns = (login: string) => namespaceFor(prefix, login);
/** kim's workspace claim, seen after her cull. */
let kimClaim = '';
/** The namespace's phase, or undefined when it no longer exists. */
const namespacePhase = (login: string) => core.readNamespace({ name: ns(login) }).then((n) => n.status?.phase, () => undefined);

/** The uid of the user's workspace claim once bound (undefined when there is none). */
const claimUid = (login: string) => waitUntil(`${login}'s workspace claim to be bound`, async () => {
  const claim = await core.readNamespacedPersistentVolumeClaim({ name: 'workspace', namespace: ns(login) }).catch(() => undefined);
  return claim?.status?.phase === 'Bound' ? claim.metadata!.uid! : undefined;
}, { timeoutMs: 60_000, intervalMs: 250 });

/** Resolves once the namespace runs nothing (no pod, no Deployment) and still holds the bound workspace claim. */
async function onlyWorkspaceLeft(login: string): Promise<boolean> {
  await waitUntil(`${login}'s pods and Deployments to go`, async () => {
    const [pods, deployments] = await Promise.all([
      core.listNamespacedPod({ namespace: ns(login) }), admin.makeApiClient(AppsV1Api).listNamespacedDeployment({ namespace: ns(login) }),
    ]);
    return pods.items.length === 0 && deployments.items.length === 0;
  }, { timeoutMs: 90_000, intervalMs: 250 });
  await claimUid(login);
  return (await namespacePhase(login)) === 'Active';
}

/** Resolves once the namespace no longer exists (its pods and every object in it went first). */
function namespaceGone(login: string): Promise<true> {
  return watchUntil(admin, '/api/v1/namespaces', { fieldSelector: `metadata.name=${ns(login)}` },
    (phase) => (phase === 'DELETED' ? true : undefined), { what: `namespace ${ns(login)} to be deleted`, timeoutMs: 90_000 });
}

/** A request through the proxy to the user's (absent) Jupyter. */
function viaProxy(user: string, method: 'GET' | 'PUT'): Promise<Response> {
  const token = hub!.store.getCluster(user)?.jupyterToken ?? '';
  const body = method === 'PUT' ? JSON.stringify({ type: 'notebook', content: { cells: [] } }) : undefined;
  return fetch(`${hub!.publicUrl}/user/${user}/api/contents/week1.ipynb`, { method, body, headers: { Authorization: `token ${token}`, 'Content-Type': 'application/json' } });
}

/** Requests through the proxy twice a second until stopped; returns the statuses. */
function startTraffic(user: string, method: 'GET' | 'PUT'): () => Promise<number[]> {
  return trafficLoop(() => viaProxy(user, method));
}

// ---- Phase 1: sweeps only when an instructor asks (the schedule is once a year). ----

test.serial('two clusters launched through the API become ready; tia saves a notebook twice a second', async (t) => {
  await startPhase({ schedule: '0 0 1 1 *' });
  const started = performance.now();
  await Promise.all(['kim', 'tia'].map(launch));
  t.log(`two namespaces ready in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  stopTraffic = startTraffic('tia', 'PUT');
  for (const user of ['kim', 'tia']) t.is(await namespacePhase(user), 'Active');
});

test.serial('dry run: the proxy decides (Jupyter unreachable); failed GETs are no activity; nothing changes', async (t) => {
  // kim's tab keeps asking, and gets 503s: that is not activity.
  const stopGets = startTraffic('kim', 'GET');
  const report = await waitUntil('a dry-run sweep to find kim idle', async () => {
    const r = await cull({ dry_run: true });
    return r.culled.includes('kim') && r;
  }, { timeoutMs: 30_000, intervalMs: 500 });
  const gets = await stopGets();
  t.true(gets.length > 0 && gets.every((s) => s === 503), `GET statuses: ${gets.join(',')}`);
  t.true(report.dryRun);
  t.deepEqual(report.culled, ['kim'], 'tia saves notebooks');
  const kim = line(report, 'kim')!;
  t.like(kim, { action: 'cull', evidence: 'proxy', stopped: false });
  t.log(`Jupyter unreachable: ${kim.jupyterUnreachable}`);
  t.regex(kim.reason, /^idle \d+ seconds$/);
  t.regex(kim.jupyterUnreachable ?? '', new RegExp(`^cannot reach http://scheduler\\.${ns('kim')}\\.svc\\.cluster\\.local:8888/user/kim/api/status`));
  t.true(logs.some((l) => l.msg === 'would cull cluster (dry run)' && l.obj.user === 'kim' && /^proxy only \(Jupyter unreachable: /.test(String(l.obj.evidence))));
  t.is(await namespacePhase('kim'), 'Active');
  t.is(hub!.store.getCluster('kim')?.phase, 'running');
  t.true((await userRoutes()).includes('/user/kim'));
  t.is(culledEvent('kim'), undefined);
});

test.serial('an idle cluster is culled: its workloads are deleted, its workspace claim kept; the event and the home page say why', async (t) => {
  const report = await cull();
  t.deepEqual(report.culled, ['kim']);
  const reason = line(report, 'kim')!.reason;
  t.true(logs.some((l) => l.msg === 'culling cluster' && l.obj.user === 'kim' && /^proxy only \(Jupyter unreachable: /.test(String(l.obj.evidence))));
  t.false((await userRoutes()).includes('/user/kim'));
  t.is(hub!.store.getCluster('kim'), undefined);
  t.is((await hub!.backend.status('kim')).state, 'stopped');
  t.true(await onlyWorkspaceLeft('kim'));
  kimClaim = await claimUid('kim');
  t.like(culledEvent('kim'), { actor: 'culler', detail: { reason } });
  const home = await (await hub!.signIn('kim')).get('/hub/home');
  t.regex(home.text, new RegExp(`Your cluster was stopped by the idle culler \\([^)]+\\): ${reason}<`));
});

test.serial('traffic through the proxy (notebook saves, answered 503) keeps a cluster past the idle timeout', async (t) => {
  const readyAt = Date.parse(hub!.store.getCluster('tia')!.readyAt!);
  await waitUntil('tia up for twice the idle timeout', () => Date.now() - readyAt >= 2 * IDLE * 1000, { timeoutMs: 30_000, intervalMs: 250 });
  const report = await cull();
  t.like(line(report, 'tia'), { action: 'keep', evidence: 'proxy' });
  t.regex(line(report, 'tia')!.reason, /^proxy traffic \d+ seconds? ago$/);
  t.is(await namespacePhase('tia'), 'Active');
});

test.serial('an orphan cluster waits out its grace period, then its workloads go with its stray route; its workspace stays and is no orphan', async (t) => {
  // A cluster the hub has no record of, with a route (as after a crash mid-launch).
  for await (const event of hub!.backend.start('orv', { workers: 1, jupyterToken: 'orphan-token', baseUrl: '/user/orv/' })) {
    if (event.ready) await hub!.proxy.addRoute('/user/orv', event.url!, { user: 'orv' });
  }
  const first = await cull();
  const waiting = first.orphansWaiting.find((o) => o.user === 'orv');
  t.truthy(waiting, JSON.stringify(first));
  t.deepEqual(first.orphansRemoved, []);
  await hub!.repair();
  t.false((await userRoutes()).includes('/user/orv'), 'route sync removed the route nobody wants');
  t.is(await namespacePhase('orv'), 'Active', 'still within its grace period');
  await waitUntil('the grace period to pass', () => Date.now() >= Date.parse(waiting!.removeAt), { timeoutMs: (GRACE + 5) * 1000, intervalMs: 250 });
  const second = await cull();
  t.deepEqual(second.orphansRemoved, ['orv']);
  t.true(await onlyWorkspaceLeft('orv'));
  const third = await cull();
  t.deepEqual([third.orphansRemoved, third.orphansWaiting], [[], []], 'a namespace holding only a workspace is not an orphan');
  t.deepEqual(await userRoutes(), ['/user/tia']);
  t.is(hub!.store.getUser('orv'), undefined, 'nobody adopted it');
});

// ---- Phase 2: `culler.dryRun: true`, every second. ----

test.serial('after a hub restart a namespace holding only a workspace is a stopped cluster: kept, and a relaunch mounts the same claim', async (t) => {
  await closePhase();
  await startPhase({ schedule: '0 0 1 1 *', orphanGraceSeconds: 1 });
  const report = await cull();
  t.deepEqual([report.orphansRemoved, report.orphansWaiting], [[], []]);
  t.is(hub!.store.getCluster('kim'), undefined, 'not adopted as a running cluster');
  t.true(await onlyWorkspaceLeft('kim'));
  t.true(await onlyWorkspaceLeft('orv'));
  const started = performance.now();
  await launch('kim');
  t.log(`kwok, 1 worker, through the hub: relaunch in the existing workspace ${((performance.now() - started) / 1000).toFixed(1)} s`);
  t.is(await claimUid('kim'), kimClaim, 'the same claim');
  const reset = await api('/hub/api/users/kim/reset', 'teacher', { method: 'POST' });
  t.true(reset.status < 300, `reset: ${reset.status}`);
  t.true(await namespaceGone('kim'), 'a reset removes the namespace, the claim with it');
  const volumes = await core.listPersistentVolume();
  t.is(volumes.items.find((v) => v.spec?.claimRef?.uid === kimClaim)?.status?.phase, 'Released');
});

test.serial('with culler.dryRun the scheduled sweeps and an instructor\'s sweep change nothing', async (t) => {
  await closePhase();
  await startPhase({ schedule: '*/1 * * * * *', dryRun: true });
  stopTraffic = startTraffic('tia', 'PUT');
  await launch('ivo');
  await waitUntil('a scheduled dry run to find ivo idle', () => logged('would cull cluster (dry run)', 'ivo'), { timeoutMs: 30_000, intervalMs: 250 });
  const report = await cull({ dry_run: false });
  t.true(report.dryRun, 'culler.dryRun wins over the request');
  t.deepEqual(report.culled, ['ivo']);
  t.is(await namespacePhase('ivo'), 'Active');
  t.is(hub!.store.getCluster('ivo')?.phase, 'running');
  t.true((await userRoutes()).includes('/user/ivo'));
  t.is(culledEvent('ivo'), undefined);
});

// ---- Phase 3: every second, for real, with a max age. ----

let maxAgeDeadline = 0;

test.serial('the schedule culls an idle cluster by itself', async (t) => {
  const created = Date.parse(hub!.store.getCluster('tia')!.createdAt);
  await closePhase();
  const maxAgeSeconds = Math.ceil((Date.now() - created) / 1000) + 15;
  maxAgeDeadline = created + maxAgeSeconds * 1000;
  await startPhase({ schedule: '*/1 * * * * *', maxAgeSeconds });
  stopTraffic = startTraffic('tia', 'PUT');
  const event = await waitUntil('the scheduled sweep to cull ivo', () => culledEvent('ivo'), { timeoutMs: 30_000, intervalMs: 200 });
  t.is(event.actor, 'culler');
  t.regex(String(event.detail.reason), /^idle \d+ seconds$/);
  t.true(await onlyWorkspaceLeft('ivo'));
});

test.serial('max age culls a cluster even while it has traffic', async (t) => {
  const event = await waitUntil('max age to cull tia', () => culledEvent('tia'), { timeoutMs: Math.max(maxAgeDeadline - Date.now(), 0) + 30_000, intervalMs: 200 });
  const statuses = await stopTraffic!();
  stopTraffic = undefined;
  t.like(event, { actor: 'culler', detail: { reason: 'max age' } });
  t.true(Date.parse(event.time) >= maxAgeDeadline, 'not before its time');
  t.true(statuses.filter((s) => s === 503).length > 10, 'it had traffic until the end');
  t.true(await onlyWorkspaceLeft('tia'));
  t.deepEqual(await userRoutes(), []);
  t.deepEqual(hub!.store.listClusters(), []);
  const deleted = await api('/hub/api/users/tia', 'teacher', { method: 'DELETE' });
  t.true(deleted.status < 300, `delete: ${deleted.status}`);
  t.true(await namespaceGone('tia'), 'deleting the user removes the workspace');
  await closePhase();
});

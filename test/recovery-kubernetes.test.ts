/**
 * A hub that always comes back, on the real control plane (kwok nodes), running as the
 * hub's ServiceAccount: hub processes killed with SIGKILL at chosen points (just before a
 * request, while the proxy is held with SIGSTOP, in the middle of launches), then the next
 * hub started on the same state directory.
 */
import test, { type ExecutionContext } from 'ava';
import { AppsV1Api, CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { openStore } from '../hub/store/sqlite.ts';
import { join } from 'node:path';
import { parseConfig } from '../config/load.ts';
import { KubernetesBackend } from '../spawner/kubernetes/backend.ts';
import { clusterRef } from '../spawner/kubernetes/context.ts';
import { renderNamespace } from '../spawner/kubernetes/objects.ts';
import { silentLogger } from '../shared/log.ts';
import { namespaceFor } from '../spawner/names.ts';
import { ChpClient } from '../proxy/client.ts';
import type { Backend } from '../spawner/types.ts';
import { ensurePlane, type Plane } from './kube/plane.ts';
import { startTestHub } from './helpers/hub.ts';
import { startHubProcess } from './helpers/hub-process.ts';
import { applyRbac, backendKubeConfig } from './helpers/kube-rbac.ts';
import { startTestProvisioner, type TestProvisioner } from './helpers/kube-volumes.ts';
import {
  alive, call, childPids, clusterNamespaces, kubeHubConfig, namespaces, noClustersLeft, phases, progressUntil, PROXY_TOKEN, seedUsers, userRoutes, workspaceNamespaces,
} from './helpers/kube-hub.ts';
import { waitUntil } from './helpers/net.ts';

let plane: Plane;
let admin: KubeConfig;
let asBackend: KubeConfig;
let dir: string;
let kubeconfig: string;
let provisioner: TestProvisioner | undefined;

test.before(async () => {
  plane = await ensurePlane({ nodes: 4 });
  admin = new KubeConfig();
  admin.loadFromFile(plane.kubeconfigPath);
  await applyRbac(admin);
  asBackend = await backendKubeConfig(admin);
  provisioner = await startTestProvisioner(admin);
  dir = await mkdtemp(join(tmpdir(), 'clusterhub-recovery-'));
  kubeconfig = join(dir, 'kubeconfig.json');
  await writeFile(kubeconfig, asBackend.exportConfig(), { mode: 0o600 });
});

test.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  await provisioner?.stop();
  await plane?.stop();
});

/** A state directory, config, users and an admin token for one test; its namespaces are removed after it. */
async function fresh(t: ExecutionContext, students: string[], extra: Record<string, Record<string, unknown>> = {}) {
  const prefix = plane.newPrefix('rec');
  const stateDir = join(dir, prefix);
  const raw = await kubeHubConfig({ stateDir, kubeconfig, prefix, extra });
  const token = seedUsers(stateDir, students);
  t.teardown(async () => {
    const core = admin.makeApiClient(CoreV1Api);
    const left = await core.listNamespace({ labelSelector: `clusterhub.io/instance=${prefix}` });
    await Promise.all(left.items.map((n) => core.deleteNamespace({ name: n.metadata!.name! }).catch(() => {})));
  });
  // The next hub of the test: same state directory and settings, new ports.
  const { hub: _ports, ...rest } = raw;
  const restart = (backend?: Backend) => startTestHub({ stateDir, backend, config: { ...rest, hub: { logLevel: 'warn' } } });
  return { prefix, stateDir, raw, token, restart, log: join(dir, `${prefix}.log`) };
}

/** The first hub of a test, in its own process; started again on new ports if another process took one meanwhile. */
async function firstHub(raw: Awaited<ReturnType<typeof kubeHubConfig>>, options: { killAt?: string; logFile?: string }) {
  for (let attempt = 1; ; attempt++) {
    const hub = startHubProcess(raw, options);
    try {
      await hub.up;
      return hub;
    } catch (err) {
      if (attempt >= 3 || !/EADDRINUSE/.test(String(err))) throw err;
      const ports = await kubeHubConfig({ stateDir: raw.hub.stateDir, kubeconfig, prefix: 'ports' });
      Object.assign(raw.hub, { port: ports.hub.port, hubPort: ports.hub.hubPort });
    }
  }
}

async function launchAndWait(base: string, token: string, user: string): Promise<void> {
  const res = await call(base, token, `/hub/api/users/${user}/cluster`, 'POST', { workers: 1 });
  if (res.status !== 202) throw new Error(`launch of ${user}: ${res.status} ${JSON.stringify(res.body)}`);
  await waitUntil(`${user} running`, async () => (await phases(base, token))[user] === 'running', { timeoutMs: 180_000, intervalMs: 200 });
}

test.serial('a hub killed between a namespace and its RoleBinding starts again, removes what it cannot read, and keeps repairing', async (t) => {
  const { raw, token, prefix, restart, log } = await fresh(t, ['steady', 'broken', 'ghost'], { culler: { enabled: true, schedule: '0 0 1 1 *' } });
  const first = await firstHub(raw, { killAt: 'create rolebinding 2', logFile: log });
  await launchAndWait(first.publicUrl, token, 'steady');
  await call(first.publicUrl, token, '/hub/api/users/broken/cluster', 'POST', { workers: 1 }).catch(() => undefined);
  t.deepEqual(await first.exited, { code: null, signal: 'SIGKILL' });

  // What the crash left: a labelled namespace without the RoleBinding, unreadable for the hub.
  const broken = namespaceFor(prefix, 'broken');
  t.is((await admin.makeApiClient(RbacAuthorizationV1Api).listNamespacedRoleBinding({ namespace: broken })).items.length, 0);
  const denied = await asBackend.makeApiClient(AppsV1Api).readNamespacedDeployment({ name: 'workers', namespace: broken }).catch((e) => e);
  t.is(denied.code, 403);

  const hub = await restart();
  t.teardown(() => hub.destroy());
  await hub.startupRemovals;
  t.false((await namespaces(admin, prefix)).live.includes(broken), 'the half-created namespace is being deleted');
  t.like(hub.store.listEvents({ user: 'broken', limit: 1 })[0], { kind: 'launch-failed', detail: { reason: 'the hub restarted during the launch; launch again' } });
  t.deepEqual(await userRoutes(hub.config), ['steady']);

  // A namespace the hub labelled but never bound itself in, with no record: swept, repaired, removed at once.
  const k = parseConfig(raw, 'test').kubernetes;
  await asBackend.makeApiClient(CoreV1Api).createNamespace({ body: renderNamespace(k, clusterRef(k, 'ghost')) });
  t.is((await call(hub.publicUrl, token, '/hub/api/cull', 'POST', { dry_run: false })).status, 200, 'the sweep runs');
  await new ChpClient({ apiUrl: hub.proxyApiUrl, authToken: PROXY_TOKEN }).deleteRoute('/user/steady');
  await hub.repair();
  t.deepEqual(await userRoutes(hub.config), ['steady'], 'a deleted route comes back');
  t.false((await namespaces(admin, prefix)).live.includes(namespaceFor(prefix, 'ghost')), 'the ServiceAccount deleted the namespace it labelled');
  t.like(hub.store.listEvents({ user: 'ghost', limit: 1 })[0], { kind: 'cleanup', actor: 'hub' });
  t.regex(String(hub.store.listEvents({ user: 'ghost', limit: 1 })[0]?.detail?.reason), /cannot read namespace .*RoleBinding is missing/);
  t.like(hub.health(), { status: 'ok', repair: { ok: true } });

  await call(hub.publicUrl, token, '/hub/api/clusters', 'DELETE');
  await noClustersLeft(admin, prefix);
  t.deepEqual(await workspaceNamespaces(admin, prefix), [namespaceFor(prefix, 'steady')], 'stop-all keeps the workspace of the student who had one');
});

test.serial('a launch killed after its pods were Ready is removed at the next start, keeps its workspace, and is never adopted back', async (t) => {
  const { raw, token, prefix, restart, log } = await fresh(t, ['early']);
  const first = await firstHub(raw, { logFile: log });
  const [proxyPid] = childPids(first.child.pid!);
  t.truthy(proxyPid);
  // The proxy frozen: the hub hangs on adding the route, after the backend said ready.
  process.kill(proxyPid!, 'SIGSTOP');
  const hubPort = `http://127.0.0.1:${first.config.hub.hubPort}`;
  t.is((await call(hubPort, token, '/hub/api/users/early/cluster', 'POST', { workers: 1 })).status, 202);
  await progressUntil(hubPort, token, 'early', (e) => e.message === 'Adding the route to your cluster');
  first.child.kill('SIGKILL');
  process.kill(proxyPid!, 'SIGKILL');
  await first.exited;

  const hub = await restart();
  t.teardown(() => hub.destroy());
  t.is(hub.manager.view('early').phase, 'stopping');
  await hub.startupRemovals;
  await hub.repair();
  t.is(hub.manager.view('early').phase, 'stopped', 'not adopted from the listing taken before its removal');
  t.deepEqual(await userRoutes(hub.config), []);
  t.is(hub.store.listEvents({ user: 'early' }).filter((e) => e.kind === 'adopted').length, 0);
  await noClustersLeft(admin, prefix);
  t.deepEqual(await workspaceNamespaces(admin, prefix), [namespaceFor(prefix, 'early')], 'its bound claim stays: no path but reset removes work');
  t.is((await call(hub.publicUrl, token, '/hub/api/users/early/cluster', 'POST', { workers: 1 })).status, 202, 'the student can launch again');
  t.truthy(await progressUntil(hub.publicUrl, token, 'early', (e) => e.message === 'Your workspace is kept: starting in it'), 'in the same workspace');
});

test.serial('after kill -9 during four launches, the restart puts the running route back first and removes the rest side by side', async (t) => {
  const students = ['steady', 's1', 's2', 's3', 's4'];
  const { raw, token, prefix, restart, log } = await fresh(t, students);
  const first = await firstHub(raw, { killAt: 'create rolebinding 5', logFile: log });
  await launchAndWait(first.publicUrl, token, 'steady');
  await Promise.all(students.slice(1).map((s) => call(first.publicUrl, token, `/hub/api/users/${s}/cluster`, 'POST', { workers: 1 }).catch(() => undefined)));
  t.like(await first.exited, { signal: 'SIGKILL' });

  const config = parseConfig(raw, 'test');
  const real = new KubernetesBackend({ config, kubeConfig: asBackend, log: silentLogger() });
  let inFlight = 0;
  let most = 0;
  const measured: Backend = {
    kind: real.kind, start: (u, o) => real.start(u, o), status: (u) => real.status(u), scale: (u, w) => real.scale(u, w),
    list: () => real.list(), close: () => real.close(),
    async stop(user, options) {
      most = Math.max(most, ++inFlight);
      try {
        await real.stop(user, options);
      } finally {
        inFlight--;
      }
    },
  };
  const hub = await restart(measured);
  t.teardown(() => hub.destroy());
  t.deepEqual(await userRoutes(hub.config), ['steady'], 'the running cluster is routed as soon as the hub is up');
  const atStart = await phases(hub.publicUrl, token);
  // Removal of one that never got its namespace is instant, so "stopped" is as right as "stopping" here.
  for (const s of students.slice(1)) t.true(atStart[s] === 'stopping' || atStart[s] === 'stopped', `${s} is being removed, never adopted (${atStart[s]})`);
  await hub.startupRemovals;
  t.true(most >= 2, `removals ran side by side (at most ${most} at once)`);
  const after = await phases(hub.publicUrl, token);
  t.deepEqual(students.map((s) => after[s]), ['running', 'stopped', 'stopped', 'stopped', 'stopped']);
  t.deepEqual(await clusterNamespaces(admin, prefix), [namespaceFor(prefix, 'steady')], 'only the running cluster has workloads');
  // A cut-short launch keeps its namespace only for a bound claim; one without (its RoleBinding never made) is deleted.
  const { live } = await namespaces(admin, prefix);
  const withClaim = await workspaceNamespaces(admin, prefix);
  t.deepEqual(live.filter((n) => !withClaim.includes(n)), [], 'every namespace left holds a workspace');
  t.true(students.slice(1).some((s) => !live.includes(namespaceFor(prefix, s))), 'the launch killed before its RoleBinding left nothing');
  await call(hub.publicUrl, token, '/hub/api/clusters', 'DELETE');
  await noClustersLeft(admin, prefix);
});

test.serial('stop-all racing the route repair (every second, and passes back to back) brings no cluster back', async (t) => {
  const students = Array.from({ length: 24 }, (_, i) => `racer${i}`);
  const { token, prefix, restart } = await fresh(t, students, { proxy: { checkRoutesSeconds: 1 }, spawn: { concurrency: 10 } });
  const hub = await restart();
  t.teardown(() => hub.destroy());
  for (const round of [1, 2]) {
    await Promise.all(students.map((s) => call(hub.publicUrl, token, `/hub/api/users/${s}/cluster`, 'POST', { workers: 1 })));
    await waitUntil(`round ${round}: all running`, async () => Object.values(await phases(hub.publicUrl, token)).filter((p) => p === 'running').length === students.length, { timeoutMs: 300_000, intervalMs: 500 });
    let racing = true;
    const passes = (async () => {
      while (racing) await hub.repair().catch(() => {});
    })();
    const stopped = await call(hub.publicUrl, token, '/hub/api/clusters', 'DELETE');
    t.is(stopped.body.stopped.length, students.length);
    const ghosts: string[] = [];
    for (let i = 0; i < 4; i++) {
      await hub.repair();
      const now = await phases(hub.publicUrl, token);
      ghosts.push(...Object.entries(now).filter(([, p]) => p !== 'stopped').map(([u, p]) => `pass ${i}: ${u} ${p}`));
      ghosts.push(...(await userRoutes(hub.config)).map((u) => `pass ${i}: route of ${u}`));
    }
    racing = false;
    await passes;
    t.deepEqual(ghosts, [], `round ${round}: clusters or routes that came back after stop-all`);
    await noClustersLeft(admin, prefix);
    t.is((await workspaceNamespaces(admin, prefix)).length, students.length, `round ${round}: every workspace kept for the next round`);
  }
});

test.serial('kill -9 of the hub during 20 launches: the next hub keeps what ran, removes the rest, and routes, API and namespaces agree', async (t) => {
  const students = Array.from({ length: 20 }, (_, i) => `crash${String(i).padStart(2, '0')}`);
  const { raw, token, prefix, stateDir, restart, log } = await fresh(t, students);
  const first = await firstHub(raw, { logFile: log });
  const [proxyPid] = childPids(first.child.pid!);
  await Promise.all(students.map((s) => call(first.publicUrl, token, `/hub/api/users/${s}/cluster`, 'POST', { workers: 1 })));
  await waitUntil('8 of 20 running', async () => Object.values(await phases(first.publicUrl, token)).filter((p) => p === 'running').length >= 8, { timeoutMs: 300_000, intervalMs: 100 });
  first.child.kill('SIGKILL');
  await first.exited;
  const records = openStore(join(stateDir, 'clusterhub.sqlite'));
  const atCrash = Object.fromEntries(records.listClusters().map((c) => [c.user, c.phase]));
  records.close();
  const wasRunning = students.filter((s) => atCrash[s] === 'running');
  const wasStarting = students.filter((s) => atCrash[s] === 'starting');
  t.is(wasRunning.length + wasStarting.length, 20);

  const started = performance.now();
  const hub = await restart();
  t.teardown(() => hub.destroy());
  const upMs = performance.now() - started;
  const agreed = await waitUntil('routes, the API and the namespaces to agree', async () => {
    const now = await phases(hub.publicUrl, token);
    const running = students.filter((s) => now[s] === 'running');
    if (students.some((s) => now[s] !== 'running' && now[s] !== 'stopped')) return false;
    const withWorkloads = await clusterNamespaces(admin, prefix);
    const routes = await userRoutes(hub.config);
    const same = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
    return same(routes, running) && same(withWorkloads, running.map((s) => namespaceFor(prefix, s)).sort()) && running;
  }, { timeoutMs: 120_000, intervalMs: 100 });
  const agreeMs = performance.now() - started;
  const removed = students.filter((s) => hub.store.listEvents({ user: s, kind: 'launch-failed' }).length > 0);
  t.deepEqual(agreed, wasRunning, 'every cluster that was running is kept, and only those');
  t.deepEqual(removed, wasStarting, 'every launch cut short is removed');
  const kept = await workspaceNamespaces(admin, prefix);
  t.true(wasRunning.every((s) => kept.includes(namespaceFor(prefix, s))), 'every running cluster has its workspace');
  t.deepEqual((await namespaces(admin, prefix)).live.filter((n) => !kept.includes(n)), [], 'a namespace left without a cluster holds a workspace');
  // It notices its hub is gone when its stdin closes.
  await waitUntil('the killed hub\'s proxy to exit', () => !alive(proxyPid!), { timeoutMs: 15_000 });

  await call(hub.publicUrl, token, '/hub/api/clusters', 'DELETE');
  await noClustersLeft(admin, prefix);
  const proxyOfSecond = hub.supervisor!.pid!;
  await hub.close();
  t.false(alive(proxyOfSecond), 'no process left');
  t.log(`kill -9 during 20 launches: ${wasRunning.length} running kept, ${wasStarting.length} half-started removed; hub up ${(upMs / 1000).toFixed(2)} s, routes/API/namespaces agree ${(agreeMs / 1000).toFixed(2)} s after the restart began; no workload, no process left; ${kept.length} workspaces kept`);
});

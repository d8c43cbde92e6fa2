/**
 * The idle culler through the whole hub with the real local backend: clusters launched
 * through the REST API, a real configurable-http-proxy, real Jupyter servers. Time is
 * compressed through config (idle after 3 s). One state directory, three hub processes in
 * turn, as an operator restarts a hub with new settings (the clusters keep running):
 *  1. sweeps only when asked (`POST /hub/api/cull`): idle, busy, traffic, dry run, stray route;
 *  2. `culler.dryRun: true` on a schedule of every second: nothing changes;
 *  3. every second for real, with a max age: the schedule culls by itself.
 * Three clusters come from the hub (tom idle, ida with traffic, bea with a busy kernel), one
 * with default engines (Spark too) from a backend the hub does not know (an orphan).
 */
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchActivity } from '../culler/activity.ts';
import { captureLogger, type LogLine } from './helpers/culler.ts';
import type { SweepReport } from '../culler/types.ts';
import { clusterProcesses, makeLocalBackend, newJupyterToken } from './helpers/local-backend.ts';
import { startTestHub, type TestHub } from './helpers/hub.ts';
import { apiAs, cullNow, trafficLoop } from './helpers/hub-api.ts';
import { startBusyKernel as startBusyKernelAt } from './helpers/kernel.ts';
import { waitUntil } from './helpers/net.ts';

const IDLE = 3;
const USERS = ['tom', 'ida', 'bea'];
const ORPHAN = 'orphan';
let stateDir: string;
let hub: TestHub | undefined;
let logs: LogLine[] = [];
const tokens: Record<string, string> = {};
let stopTraffic: (() => Promise<number[]>) | undefined;
/** When bea's launch began (max age counts from there). */
let beaCreated = 0;
let maxAgeDeadline = 0;

/** Start a hub on the shared state directory with these culler settings. */
async function startPhase(culler: Record<string, unknown>): Promise<TestHub> {
  await closePhase(); // a failed phase must not leave its hub running
  const log = captureLogger();
  logs = log.lines;
  hub = await startTestHub({
    stateDir, log,
    config: {
      spawn: { backend: 'local', defaultWorkers: 1 },
      local: { spark: 'off' },
      culler: { enabled: true, idleTimeoutSeconds: IDLE, orphanGraceSeconds: 2, ...culler },
    },
  });
  for (const login of [...USERS, 'teacher']) tokens[login] ??= hub.token(login);
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

const line = (report: SweepReport, user: string) => report.clusters.find((c) => c.user === user);
/** Where a user's Jupyter answers directly (not through the proxy), with its token. */
function jupyterOf(user: string): { base: string; url: string; token: string } {
  const row = hub!.store.getCluster(user);
  if (!row?.url) throw new Error(`${user} has no running cluster`);
  return { base: `${row.url}/user/${user}/`, url: row.url, token: row.jupyterToken };
}
const activity = (user: string) => {
  const j = jupyterOf(user);
  return fetchActivity({ url: j.url, baseUrl: `/user/${user}/`, jupyterToken: j.token });
};
const culledEvent = (user: string) => hub!.store.listEvents({ user, kind: 'culled', limit: 1 })[0];
const routePaths = async () => Object.keys(await hub!.proxy.getRoutes());
/** Routes the proxy has seen no traffic on for `seconds`. */
const idleRoutes = async (seconds: number) => Object.keys(await hub!.proxy.getRoutes(new Date(Date.now() - seconds * 1000)));
const logged = (msg: string, user: string) => logs.some((l) => l.msg === msg && l.obj.user === user);

/** A request through the proxy to the user's Jupyter, as a browser tab polling it. */
function viaProxy(user: string, token: string): Promise<Response> {
  return fetch(`${hub!.publicUrl}/user/${user}/api/status`, { headers: { Authorization: `token ${token}` }, redirect: 'manual' });
}

/** Run `code` in a new kernel of the user's Jupyter until it says busy. */
async function startBusyKernel(user: string, code: string): Promise<void> {
  const { base, token } = jupyterOf(user);
  await startBusyKernelAt(base, token, code);
}

/** Poll the user's Jupyter through the proxy twice a second until stopped; returns the statuses. */
function startTraffic(user: string): () => Promise<number[]> {
  const { token } = jupyterOf(user);
  return trafficLoop(() => viaProxy(user, token));
}

test.before(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'clusterhub-culling-'));
});

test.after.always(async () => {
  await closePhase().catch(() => {});
  // Whatever a failed test left: one backend on the state directory stops every cluster.
  const { backend, cleanup } = await makeLocalBackend({ stateDir });
  for (const user of [...USERS, ORPHAN]) await backend.stop(user, { removeWorkspace: true }).catch(() => {});
  await cleanup();
  await rm(stateDir, { recursive: true, force: true });
});

// ---- Phase 1: sweeps only when an instructor asks (the schedule is once a year). ----

test.serial('three clusters launched through the API become ready; bea starts a long computation, ida is polled through the proxy', async (t) => {
  t.timeout(8 * 60_000);
  await startPhase({ schedule: '0 0 1 1 *' });
  const started = performance.now();
  const ready = await Promise.all(USERS.map(async (user) => {
    const res = await api(`/hub/api/users/${user}/cluster`, user, { method: 'POST', json: {} });
    t.is(res.status, 202, await res.text());
    for await (const event of hub!.manager.progress(user)) {
      if (event.failed) throw new Error(`${user}: ${event.message}`);
      if (event.ready) return `${user} ${((performance.now() - started) / 1000).toFixed(1)} s`;
    }
    throw new Error(`${user}: progress ended without ready`);
  }));
  t.log(`ready (launched together, 1 worker, no Spark): ${ready.join(', ')}`);
  beaCreated = Date.parse(hub!.store.getCluster('bea')!.createdAt);
  await startBusyKernel('bea', 'import time; time.sleep(1800)');
  stopTraffic = startTraffic('ida');
  t.like(await activity('bea'), { kernels: 1, busyKernels: 1, connections: 0 });
});

test.serial('dry run (POST /hub/api/cull {"dry_run": true}) reports the idle cluster and changes nothing', async (t) => {
  const report = await waitUntil('a dry-run sweep to find tom idle', async () => {
    const r = await cull({ dry_run: true });
    return r.culled.includes('tom') && r;
  }, { timeoutMs: 30_000, intervalMs: 500 });
  t.true(report.dryRun);
  t.deepEqual(report.culled, ['tom'], 'ida has traffic, bea a busy kernel');
  t.like(line(report, 'tom'), { action: 'cull', evidence: 'proxy+jupyter', stopped: false });
  t.regex(line(report, 'tom')!.reason, /^idle \d+ seconds$/);
  t.is(hub!.store.getCluster('tom')?.phase, 'running');
  t.true((await routePaths()).includes('/user/tom'));
  t.is((await hub!.backend.status('tom')).state, 'running');
  t.is(culledEvent('tom'), undefined);
});

test.serial('an idle cluster is culled: route, processes and record go; the event and the home page say why', async (t) => {
  const report = await cull();
  t.false(report.dryRun);
  t.deepEqual(report.culled, ['tom']);
  const reason = line(report, 'tom')!.reason;
  t.like(line(report, 'tom'), { action: 'cull', stopped: true });
  t.false((await routePaths()).includes('/user/tom'));
  t.is((await hub!.backend.status('tom')).state, 'stopped');
  t.deepEqual(await clusterProcesses(stateDir, 'tom'), [], 'no Jupyter, Dask, IPython or kernel process left');
  t.is(hub!.store.getCluster('tom'), undefined);
  t.like(culledEvent('tom'), { actor: 'culler', kind: 'culled', detail: { reason } });
  const proxied = await viaProxy('tom', 'any');
  t.is(proxied.status, 302, 'the proxy sends /user/tom/ to the hub now');
  t.regex(proxied.headers.get('location') ?? '', /\/hub\/login/);
  const home = await (await hub!.signIn('tom')).get('/hub/home');
  t.regex(home.text, /<strong id="state">stopped<\/strong>/);
  t.regex(home.text, new RegExp(`Your cluster was stopped by the idle culler \\([^)]+\\): ${reason}<`));
});

test.serial('a kernel running time.sleep with no traffic is kept across sweeps past the idle timeout', async (t) => {
  for (const idleFor of [IDLE, 2 * IDLE]) {
    await waitUntil(`no proxy traffic to bea for ${idleFor} s`, async () => (await idleRoutes(idleFor)).includes('/user/bea'), { timeoutMs: 30_000, intervalMs: 250 });
    const report = await cull();
    t.like(line(report, 'bea'), { action: 'keep', reason: 'a kernel is busy', evidence: 'jupyter' }, `after ${idleFor} s without traffic`);
    t.false(report.culled.includes('bea'));
  }
  t.like(await activity('bea'), { busyKernels: 1 });
  t.is((await hub!.backend.status('bea')).state, 'running');
  t.true((await routePaths()).includes('/user/bea'));
});

test.serial('traffic through the proxy keeps a cluster that Jupyter itself calls idle', async (t) => {
  const readyAt = Date.parse(hub!.store.getCluster('ida')!.readyAt!);
  await waitUntil('ida up for twice the idle timeout', () => Date.now() - readyAt >= 2 * IDLE * 1000, { timeoutMs: 30_000, intervalMs: 250 });
  const jupyter = await activity('ida');
  // The polled api/status is not activity for Jupyter: only the proxy sees it.
  t.true('lastActivity' in jupyter && Date.now() - jupyter.lastActivity.getTime() > IDLE * 1000, JSON.stringify(jupyter));
  const report = await cull();
  t.like(line(report, 'ida'), { action: 'keep', evidence: 'proxy' });
  t.regex(line(report, 'ida')!.reason, /^proxy traffic \d+ seconds? ago$/);
  t.is(hub!.store.getCluster('ida')?.phase, 'running');
});

test.serial('last_activity in the API follows the sweeps: ida\'s moves with her traffic, bea\'s with her busy kernel', async (t) => {
  const lastActivity = async (user: string) => {
    const res = await api(`/hub/api/users/${user}`, 'teacher');
    const body = (await res.json()) as { last_activity: string; cluster: { last_activity: string } };
    t.true(Date.parse(body.last_activity) >= Date.parse(body.cluster.last_activity), `${user}: the user's last activity includes the cluster's`);
    return body.cluster.last_activity;
  };
  await cull({ dry_run: true });
  const [ida1, bea1] = [await lastActivity('ida'), await lastActivity('bea')];
  await waitUntil('ida\'s traffic to reach the proxy again', async () => Date.parse((await hub!.proxy.getRoutes())['/user/ida']!.last_activity!) > Date.parse(ida1), { timeoutMs: 10_000, intervalMs: 100 });
  const swept = Date.now();
  await cull({ dry_run: true });
  t.true(Date.parse(await lastActivity('ida')) > Date.parse(ida1), 'ida is browsing');
  const bea2 = Date.parse(await lastActivity('bea'));
  t.true(bea2 > Date.parse(bea1) && bea2 >= swept, 'Jupyter says bea\'s kernel is busy: that is activity now');
});

test.serial('a /user/* route that leads to no cluster is removed by the sweep', async (t) => {
  await hub!.proxy.addRoute('/user/ghost', 'http://127.0.0.1:9', { user: 'ghost' });
  const report = await cull();
  t.deepEqual(report.routesRemoved, ['/user/ghost']);
  t.deepEqual(report.culled, []);
  const routes = await routePaths();
  t.false(routes.includes('/user/ghost'));
  t.true(routes.includes('/user/ida') && routes.includes('/user/bea'));
});

test.serial('meanwhile, with no hub running, another backend on the state directory starts a cluster with every engine', async (t) => {
  t.timeout(6 * 60_000);
  const statuses = await stopTraffic!();
  stopTraffic = undefined;
  t.true(statuses.length > 0 && statuses.every((s) => s === 200), `traffic statuses: ${statuses.join(',')}`);
  await closePhase();
  const { backend, cleanup } = await makeLocalBackend({ stateDir, config: { spark: 'auto' } });
  try {
    const started = performance.now();
    const messages: string[] = [];
    for await (const event of backend.start(ORPHAN, { workers: 1, jupyterToken: newJupyterToken(), baseUrl: `/user/${ORPHAN}/` })) messages.push(event.message);
    t.log(`the orphan (Jupyter, Dask, IPython Parallel, Spark; 1 worker) started in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    t.true(messages.includes('Spark: 1 worker joined'), messages.join('\n'));
    t.is((await backend.status(ORPHAN)).state, 'running');
  } finally {
    await cleanup();
  }
});

// ---- Phase 2: `culler.dryRun: true`, every second. ----

test.serial('with culler.dryRun the scheduled sweeps and an instructor\'s sweep change nothing', async (t) => {
  await startPhase({ schedule: '*/1 * * * * *', dryRun: true });
  await waitUntil('a scheduled dry run to find ida idle and the orphan', () => logged('would cull cluster (dry run)', 'ida') && logged('would remove orphaned cluster (dry run)', ORPHAN), { timeoutMs: 30_000, intervalMs: 250 });
  const report = await cull({ dry_run: false });
  t.true(report.dryRun, 'culler.dryRun wins over the request');
  t.deepEqual(report.culled, ['ida']);
  t.deepEqual(report.orphansRemoved, [ORPHAN]);
  t.like(line(report, 'bea'), { action: 'keep', reason: 'a kernel is busy' });
  t.is(hub!.store.getCluster('ida')?.phase, 'running');
  t.true((await routePaths()).includes('/user/ida'));
  for (const user of ['ida', ORPHAN]) t.is((await hub!.backend.status(user)).state, 'running', user);
  t.is(culledEvent('ida'), undefined);
  await closePhase();
});

// ---- Phase 3: every second, for real, with a max age. ----

test.serial('the admin page shows each running cluster\'s idle time and when it will be culled', async (t) => {
  const maxAgeSeconds = Math.ceil((Date.now() - beaCreated) / 1000) + 25;
  maxAgeDeadline = beaCreated + maxAgeSeconds * 1000;
  await startPhase({ schedule: '*/1 * * * * *', maxAgeSeconds });
  // The restart put the routes back as new (traffic "now"): until the proxy calls bea idle the
  // culler does not ask Jupyter, and the forecast is only the earliest possible cull.
  await waitUntil('a sweep that sees bea idle at the proxy', async () => (await idleRoutes(IDLE + 1.5)).includes('/user/bea'), { timeoutMs: 30_000, intervalMs: 250 });
  const teacher = await hub!.signIn('teacher');
  // Busy: idle 0; culled by max age at the first scheduled sweep (every second) at or after it.
  const at = new Date(Math.ceil(maxAgeDeadline / 1000) * 1000).toISOString().slice(11, 16);
  const expected = `<td>0 min, culled at ${at} UTC</td>`;
  // The page shows the last sweep's view; the sweep after the proxy's idle verdict asks Jupyter too.
  let row = '';
  await waitUntil('the admin page to forecast the max-age cull', async () => {
    const page = await teacher.get('/hub/admin');
    t.is(page.status, 200);
    row = /<tr data-user="bea">[\s\S]*?<\/tr>/.exec(page.text)?.[0] ?? '';
    return row.includes(expected);
  }, { timeoutMs: 15_000, intervalMs: 500 }).catch(() => {});
  t.regex(row, /<td class="phase">running<\/td>/);
  t.true(row.includes(expected), row);
});

test.serial('the schedule culls an idle cluster by itself', async (t) => {
  const event = await waitUntil('the scheduled sweep to cull ida', () => culledEvent('ida'), { timeoutMs: 30_000, intervalMs: 200 });
  t.is(event.actor, 'culler');
  t.regex(String(event.detail.reason), /^idle \d+ seconds$/);
  t.true(logs.some((l) => l.msg === 'culling cluster' && l.obj.user === 'ida' && l.obj.evidence === 'proxy+jupyter'));
  t.false((await routePaths()).includes('/user/ida'));
  t.is((await hub!.backend.status('ida')).state, 'stopped');
  t.deepEqual(await clusterProcesses(stateDir, 'ida'), []);
  t.is(hub!.store.getCluster('ida'), undefined);
});

test.serial('the orphaned process groups are removed by the schedule', async (t) => {
  await waitUntil('the orphan to be removed', async () => (await hub!.backend.status(ORPHAN)).state === 'stopped', { timeoutMs: 30_000, intervalMs: 200 });
  t.true(logged('removing orphaned cluster', ORPHAN));
  t.deepEqual(await clusterProcesses(stateDir, ORPHAN), [], 'scheduler, worker and Spark JVMs all gone');
  t.is(hub!.store.getUser(ORPHAN), undefined, 'nobody adopted it');
});

test.serial('max age culls a cluster even while its kernel is busy', async (t) => {
  t.like(await activity('bea'), { busyKernels: 1 });
  const wait = maxAgeDeadline - Date.now() + 30_000;
  const event = await waitUntil('max age to cull bea', () => culledEvent('bea'), { timeoutMs: Math.max(wait, 30_000), intervalMs: 200 });
  t.like(event, { actor: 'culler', detail: { reason: 'max age' } });
  t.true(Date.parse(event.time) >= maxAgeDeadline, 'not before its time');
  t.deepEqual(await clusterProcesses(stateDir, 'bea'), [], 'the busy kernel went with it');
  t.deepEqual((await routePaths()).filter((p) => p.startsWith('/user/')), []);
  t.deepEqual(hub!.store.listClusters(), []);
  await hub!.destroy();
  hub = undefined;
});

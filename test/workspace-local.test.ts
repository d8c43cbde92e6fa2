/**
 * A student's work through the whole hub on the real local backend (real Jupyter behind a
 * real configurable-http-proxy, course materials cloned from a git repository): a notebook
 * saved through Jupyter's contents API survives a stop and a cull, and so does an edit of
 * the materials; a reset gives a fresh workspace with the materials cloned again.
 */
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeLocalBackend } from './helpers/local-backend.ts';
import { startTestHub, type TestHub } from './helpers/hub.ts';
import { apiAs, cullNow } from './helpers/hub-api.ts';
import { makeMaterialsRepo, MATERIALS_README } from './helpers/materials.ts';
import { waitUntil } from './helpers/net.ts';

const USER = 'wren';
const IDLE = 2;
let stateDir: string;
let materials: string;
let hub: TestHub;
let teacher: string;

test.before(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'clusterhub-workspace-'));
  materials = await makeMaterialsRepo();
  hub = await startTestHub({
    stateDir,
    config: {
      spawn: { backend: 'local', defaultWorkers: 1 },
      local: { spark: 'off', materialsGitUrl: `file://${materials}` },
      // Sweeps only when the test asks; idle after 2 s.
      culler: { enabled: true, schedule: '0 0 1 1 *', idleTimeoutSeconds: IDLE },
    },
  });
  teacher = hub.token('teacher', { admin: true });
  hub.token(USER); // a student the hub knows
});

test.after.always(async () => {
  await hub?.close();
  const { backend, cleanup } = await makeLocalBackend({ stateDir });
  await backend.stop(USER, { removeWorkspace: true }).catch(() => {});
  await cleanup();
  await rm(stateDir, { recursive: true, force: true });
  if (materials) await rm(materials, { recursive: true, force: true });
});

/** Launches through the API and waits for the ready event; the seconds it took. */
async function launch(): Promise<number> {
  const started = performance.now();
  const res = await apiAs(hub, teacher, `/hub/api/users/${USER}/cluster`, { method: 'POST', json: {} });
  if (res.status !== 202) throw new Error(`launch: ${res.status} ${await res.text()}`);
  for await (const event of hub.manager.progress(USER)) {
    if (event.failed) throw new Error(`launch failed: ${event.message}`);
    if (event.ready) return (performance.now() - started) / 1000;
  }
  throw new Error('progress ended without ready');
}

/** Jupyter's contents API through the proxy, with the cluster's token, as JupyterLab saves and opens files. */
function contents(path: string, init: { method?: string; json?: unknown } = {}): Promise<Response> {
  const row = hub.store.getCluster(USER);
  if (!row) throw new Error(`${USER} has no cluster`);
  return fetch(`${hub.publicUrl}/user/${USER}/api/contents/${path}`, {
    method: init.method ?? 'GET',
    headers: { Authorization: `token ${row.jupyterToken}`, 'Content-Type': 'application/json' },
    body: init.json === undefined ? undefined : JSON.stringify(init.json),
  });
}

async function saveText(path: string, text: string): Promise<void> {
  const res = await contents(path, { method: 'PUT', json: { type: 'file', format: 'text', content: text } });
  if (res.status >= 300) throw new Error(`save ${path}: ${res.status} ${await res.text()}`);
}

async function readText(path: string): Promise<string | undefined> {
  const res = await contents(`${path}?content=1&type=file&format=text`);
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw new Error(`open ${path}: ${res.status}`);
  return ((await res.json()) as { content: string }).content;
}

const NOTEBOOK = { cells: [{ cell_type: 'code', source: 'print(1)', metadata: {}, outputs: [], execution_count: null }], metadata: {}, nbformat: 4, nbformat_minor: 5 };
const timings: Record<string, number> = {};

test.serial('a fresh workspace holds the cloned materials; a notebook saved in JupyterLab is written there', async (t) => {
  t.timeout(5 * 60_000);
  timings.fresh = await launch();
  t.is(await readText('materials/README.md'), MATERIALS_README);
  const saved = await contents('work.ipynb', { method: 'PUT', json: { type: 'notebook', content: NOTEBOOK } });
  t.is(saved.status, 201);
  await saveText('materials/README.md', 'my notes on week 1\n');
});

test.serial('stop, relaunch: the notebook and the edited materials are there', async (t) => {
  t.timeout(5 * 60_000);
  t.is((await apiAs(hub, teacher, `/hub/api/users/${USER}/cluster`, { method: 'DELETE' })).status, 204);
  t.is(hub.store.getCluster(USER), undefined);
  timings.afterStop = await launch();
  t.is((await contents('work.ipynb')).status, 200, 'the notebook survived the stop');
  t.is(await readText('materials/README.md'), 'my notes on week 1\n', 'the relaunch did not clone over the student\'s edit');
});

test.serial('cull (idle), relaunch: the notebook is there', async (t) => {
  t.timeout(5 * 60_000);
  const report = await waitUntil('a sweep to cull the idle cluster', async () => {
    const r = await cullNow(hub, teacher);
    return r.culled.includes(USER) ? r : undefined;
  }, { timeoutMs: 60_000, intervalMs: 500 });
  t.deepEqual(report.culled, [USER]);
  t.is(hub.store.listEvents({ user: USER, kind: 'culled', limit: 1 }).length, 1);
  timings.afterCull = await launch();
  t.is((await contents('work.ipynb')).status, 200, 'the notebook survived the cull');
});

test.serial('reset, relaunch: the workspace is fresh and the materials are cloned again', async (t) => {
  t.timeout(5 * 60_000);
  const reset = await apiAs(hub, teacher, `/hub/api/users/${USER}/reset`, { method: 'POST' });
  t.true(reset.status < 300, `reset: ${reset.status}`);
  timings.afterReset = await launch();
  t.is((await contents('work.ipynb')).status, 404, 'the reset removed the notebook');
  t.is(await readText('materials/README.md'), MATERIALS_README);
  t.log(`local, 1 worker: fresh ${timings.fresh!.toFixed(1)} s; relaunch after stop ${timings.afterStop!.toFixed(1)} s, after cull ${timings.afterCull!.toFixed(1)} s; after reset ${timings.afterReset!.toFixed(1)} s`);
});

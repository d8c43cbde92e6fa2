/**
 * A student's work survives on the local backend, through the whole hub (real proxy, real
 * Jupyter): a notebook written through Jupyter's contents API via the proxy is there after
 * a stop and a relaunch, after a cull and a relaunch; a reset gives a fresh workspace with
 * the materials cloned again. The materials are cloned once: a relaunch keeps a student's
 * edits to them. Also measures a relaunch with an existing workspace against a fresh one.
 */
import test from 'ava';
import { rm } from 'node:fs/promises';
import { startTestHub, type TestHub } from './helpers/hub.ts';
import { apiAs, cullNow } from './helpers/hub-api.ts';
import { makeMaterialsRepo, MATERIALS_README } from './helpers/materials.ts';
import { makeLocalBackend } from './helpers/local-backend.ts';
import { waitUntil } from './helpers/net.ts';

const USER = 'sam';
const NOTEBOOK = { cells: [{ cell_type: 'code', source: 'print("week 1")', metadata: {}, outputs: [], execution_count: null }], metadata: {}, nbformat: 4, nbformat_minor: 5 };
let hub: TestHub;
let materials: string;
let teacher: string;
let student: string;
const launchSeconds: Record<string, number[]> = { fresh: [], existing: [] };

/** Launch through the API as the student; seconds until ready. */
async function launch(kind: 'fresh' | 'existing'): Promise<void> {
  const started = performance.now();
  const res = await apiAs(hub, student, `/hub/api/users/${USER}/cluster`, { method: 'POST', json: { workers: 0 } });
  if (res.status !== 202) throw new Error(`launch: ${res.status} ${await res.text()}`);
  for await (const event of hub.manager.progress(USER)) {
    if (event.failed) throw new Error(event.message);
    if (event.ready) break;
  }
  launchSeconds[kind]!.push((performance.now() - started) / 1000);
}

/** Jupyter's contents API through the proxy, with the cluster's token (what JupyterLab calls). */
function contents(path: string, init: { method?: string; json?: unknown } = {}): Promise<Response> {
  const token = hub.store.getCluster(USER)!.jupyterToken;
  return fetch(`${hub.publicUrl}/user/${USER}/api/contents/${path}`, {
    method: init.method ?? 'GET',
    headers: { Authorization: `token ${token}`, 'Content-Type': 'application/json' },
    body: init.json === undefined ? undefined : JSON.stringify(init.json),
  });
}

async function readText(path: string): Promise<string | null> {
  const res = await contents(`${path}?content=1`);
  if (res.status === 404) {
    await res.body?.cancel();
    return null;
  }
  if (res.status !== 200) throw new Error(`GET contents/${path}: ${res.status}`);
  const body = (await res.json()) as { type: string; content: unknown };
  return body.type === 'notebook' ? JSON.stringify(body.content) : String(body.content);
}

/** The materials are cloned beside Jupyter's start; wait for the clone to land. */
const materialsReadme = () => waitUntil('the materials to be cloned', () => readText('materials/README.md'), { timeoutMs: 60_000, intervalMs: 250 });

const stop = async () => {
  const res = await apiAs(hub, student, `/hub/api/users/${USER}/cluster`, { method: 'DELETE' });
  if (res.status !== 204) throw new Error(`stop: ${res.status}`);
};

test.before(async () => {
  materials = await makeMaterialsRepo();
  hub = await startTestHub({
    config: {
      spawn: { backend: 'local' },
      local: { spark: 'off', materialsGitUrl: `file://${materials}` },
      culler: { enabled: true, schedule: '0 0 1 1 *', idleTimeoutSeconds: 2 },
    },
  });
  teacher = hub.token('teacher');
  student = hub.token(USER);
});

test.after.always(async (t) => {
  t.log(`launch to ready (0 workers, no Spark): fresh workspace ${launchSeconds.fresh!.map((s) => s.toFixed(1)).join(', ')} s; existing workspace ${launchSeconds.existing!.map((s) => s.toFixed(1)).join(', ')} s`);
  await hub?.close();
  const { backend, cleanup } = await makeLocalBackend({ stateDir: hub.config.hub.stateDir });
  await backend.stop(USER, { removeWorkspace: true }).catch(() => {});
  await cleanup();
  await rm(hub.config.hub.stateDir, { recursive: true, force: true });
  await rm(materials, { recursive: true, force: true });
});

test.serial('a notebook written through the proxy, and an edit to the materials, are there after stop and relaunch', async (t) => {
  t.timeout(5 * 60_000);
  await launch('fresh');
  t.is(await materialsReadme(), MATERIALS_README);
  const put = await contents('week1.ipynb', { method: 'PUT', json: { type: 'notebook', format: 'json', content: NOTEBOOK } });
  t.is(put.status, 201, await put.text());
  const edit = await contents('materials/README.md', { method: 'PUT', json: { type: 'file', format: 'text', content: 'my notes\n' } });
  t.is(edit.status, 200, await edit.text());
  await stop();
  t.is(hub.store.getCluster(USER), undefined);

  await launch('existing');
  t.regex((await readText('week1.ipynb')) ?? '', /week 1/);
  t.is(await readText('materials/README.md'), 'my notes\n', 'the relaunch did not clone over the edit');
});

test.serial('after a cull (idle 2 s, a sweep) and a relaunch the notebook is still there', async (t) => {
  t.timeout(5 * 60_000);
  const report = await waitUntil('a sweep to cull the idle cluster', async () => {
    const r = await cullNow(hub, teacher);
    return r.culled.includes(USER) && r;
  }, { timeoutMs: 60_000, intervalMs: 500 });
  t.true(report.clusters.find((c) => c.user === USER)?.stopped);
  t.is(hub.store.listEvents({ user: USER, kind: 'culled', limit: 1 }).length, 1);
  t.is(hub.store.getCluster(USER), undefined);

  await launch('existing');
  t.regex((await readText('week1.ipynb')) ?? '', /week 1/);
  t.is(await readText('materials/README.md'), 'my notes\n');
});

test.serial('a reset, then a relaunch: the workspace is fresh and the materials are cloned again', async (t) => {
  t.timeout(5 * 60_000);
  const res = await apiAs(hub, teacher, `/hub/api/users/${USER}/reset`, { method: 'POST' });
  t.true(res.status === 200 || res.status === 204, `reset: ${res.status}`);
  t.is(hub.store.getCluster(USER), undefined);
  student = hub.token(USER); // a reset revokes the student's tokens

  await launch('fresh');
  t.is(await materialsReadme(), MATERIALS_README, 'the original materials, not the edit');
  t.is(await readText('week1.ipynb'), null, 'the notebook went with the reset');
});

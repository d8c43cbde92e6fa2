/**
 * A real local cluster for alice, used as a student would: JupyterLab's REST API and a
 * kernel running Dask, IPython Parallel and Spark code, dashboards through Jupyter's
 * authenticated proxy, a live scale-up under a running computation, and a stop that
 * leaves no process. One cluster serves every test (they run in order).
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { LocalBackend } from '../spawner/local/backend.ts';
import { clusterPaths, readRecord } from '../spawner/local/state.ts';
import { clusterProcesses, makeLocalBackend, newJupyterToken } from './helpers/local-backend.ts';
import type { ProgressEvent } from '../spawner/types.ts';
import { runInKernel } from './helpers/kernel.ts';
import { makeMaterialsRepo } from './helpers/materials.ts';

const user = 'alice';
const token = newJupyterToken();
let backend: LocalBackend;
let stateDir: string;
let cleanup: () => Promise<void>;
let materials: string;
let jupyter = ''; // http://127.0.0.1:{port}/user/alice/

test.before(async () => {
  materials = await makeMaterialsRepo();
  const made = await makeLocalBackend({ config: { materialsGitUrl: `file://${materials}` } });
  ({ backend, stateDir, cleanup } = made);
});

test.after.always(async () => {
  await backend?.stop(user, { removeWorkspace: true }).catch(() => {});
  await cleanup?.();
  if (materials) await rm(materials, { recursive: true, force: true });
});

test.serial('a launch of 2 workers reports each step and becomes ready', async (t) => {
  t.timeout(6 * 60_000);
  const started = performance.now();
  const events: ProgressEvent[] = [];
  for await (const event of backend.start(user, { workers: 2, jupyterToken: token, baseUrl: `/user/${user}/` })) {
    events.push(event);
    t.log(`${((performance.now() - started) / 1000).toFixed(1)}s ${event.progress}% ${event.message}`);
  }
  t.log(`start() to ready: ${((performance.now() - started) / 1000).toFixed(1)}s`);
  const messages = events.map((e) => e.message).join('\n');
  for (const step of ['environment', 'JupyterLab is answering', 'Dask scheduler ready', 'IPython Parallel controller ready', 'Spark master ready',
    'Dask: 2 workers joined', 'IPython Parallel: 2 engines joined', 'Spark: 2 workers joined']) {
    t.true(messages.includes(step), `a progress event says "${step}"`);
  }
  const last = events.at(-1)!;
  t.true(last.ready);
  t.regex(last.url!, /^http:\/\/127\.0\.0\.1:\d+$/);
  jupyter = `${last.url}/user/${user}/`;
});

test.serial('a restarted hub finds the running cluster, with its url and token', async (t) => {
  const { backend: restarted, cleanup: release } = await makeLocalBackend({ stateDir });
  try {
    const found = (await restarted.list()).find((c) => c.user === user);
    t.is(found?.state, 'running');
    t.is(`${found?.url}/user/${user}/`, jupyter);
    t.is(found?.jupyterToken, token);
    t.is(found?.workers, 2);
  } finally {
    await release();
  }
});

test.serial('Jupyter refuses requests without the token', async (t) => {
  for (const path of ['api/status', 'api/kernels', 'api/contents']) {
    const response = await fetch(`${jupyter}${path}`, { redirect: 'manual' });
    await response.body?.cancel();
    t.true([401, 403, 302].includes(response.status), `${path} without a token answers ${response.status}`);
  }
  const wrong = await fetch(`${jupyter}api/status`, { headers: { Authorization: 'token not-the-token' }, redirect: 'manual' });
  await wrong.body?.cancel();
  t.true([401, 403].includes(wrong.status));
  const right = await fetch(`${jupyter}api/status`, { headers: { Authorization: `token ${token}` } });
  t.is(right.status, 200);
});

test.serial("JupyterLab's Dask panel shows this cluster's dashboard; the news prompt and the IPython Parallel panel are off", async (t) => {
  const headers = { Authorization: `token ${token}` };
  const json = async (path: string) => {
    const response = await fetch(new URL(path, jupyter), { headers });
    t.is(response.status, 200, path);
    return response.json() as Promise<{ schema: { properties: Record<string, { default?: unknown }> } }>;
  };
  const record = await readRecord(clusterPaths(stateDir, user).stateFile);
  const dask = (await json('lab/api/settings/dask-labextension:plugin')).schema.properties;
  t.is(dask.defaultURL?.default, `/user/${user}/dask/`, 'a path that stays the same at the next start, whatever the port');
  t.is(dask.hideClusterManager?.default, true, 'no "new cluster" buttons');
  // What the panel asks for first: the dashboard's plots, through Jupyter's authenticated proxy.
  const plots = await fetch(new URL(`${dask.defaultURL!.default as string}individual-plots.json`, jupyter), { headers });
  t.is(plots.status, 200);
  t.true(Object.keys(await plots.json() as object).some((name) => /Task Stream/.test(name)));
  // The link a notebook's Client() shows is the same path.
  const link = (await runInKernel(jupyter, token, 'from dask.distributed import Client\nwith Client() as c: print(c.dashboard_link)')).trim();
  t.is(link, `/user/${user}/dask/status`);
  const notification = (await json('lab/api/settings/@jupyterlab/apputils-extension:notification')).schema.properties;
  t.is(notification.fetchNews?.default, 'false', 'no "Jupyter news?" prompt');
  const notebooks = (await json('lab/api/settings/@jupyterlab/notebook-extension:tracker')).schema.properties;
  t.is(notebooks.autoStartDefaultKernel?.default, true, 'no "Select Kernel" dialog for a notebook saved without a kernel');
  const lab = await (await fetch(new URL('lab', jupyter), { headers })).text();
  t.regex(lab, /"disabledExtensions": \[[^\]]*"ipyparallel-labextension:plugin"/, 'the IPython Parallel panel is not loaded');
  const ippServer = await fetch(new URL('ipyparallel/clusters', jupyter), { headers });
  await ippServer.body?.cancel();
  t.is(ippServer.status, 404, 'and its server extension, which could start competing clusters, stays off');
  const config = JSON.parse(await readFile(join(clusterPaths(stateDir, user).runtimeDir, 'jupyter_server_config.json'), 'utf8'));
  // As root the hub runs each cluster under the student's own account; Jupyter runs as its kernels do.
  const uid = Number((await runInKernel(jupyter, token, 'import os; print(os.geteuid())')).trim());
  t.is(config.ServerApp.allow_root, uid === 0, 'Jupyter may run as root only when it is root');
});

test.serial('in a notebook, Client() runs a Dask computation on the 2 workers', async (t) => {
  const out = await runInKernel(jupyter, token, [
    'from dask.distributed import Client',
    'import dask.array as da',
    'client = Client()',
    'total = int(da.ones((2000, 2000), chunks=(500, 500)).sum().compute())',
    'print(len(client.scheduler_info()["workers"]), total)',
  ].join('\n'));
  t.is(out.trim(), '2 4000000');
});

test.serial('in a notebook, ipyparallel.Client() maps over 2 engines in distinct processes', async (t) => {
  const out = await runInKernel(jupyter, token, [
    'import ipyparallel as ipp',
    'rc = ipp.Client()',
    'pids = rc[:].map_sync(lambda i: __import__("os").getpid(), range(8))',
    'print(len(rc.ids), len(set(pids)))',
  ].join('\n'));
  t.is(out.trim(), '2 2');
});

test.serial('in a notebook, SparkSession.builder.getOrCreate() runs a job on the cluster master', async (t) => {
  t.timeout(4 * 60_000);
  const record = await readRecord(clusterPaths(stateDir, user).stateFile);
  const out = await runInKernel(jupyter, token, [
    'from pyspark.sql import SparkSession',
    'spark = SparkSession.builder.getOrCreate()',
    'sc = spark.sparkContext',
    'print("master", sc.master)',
    'print("sum", sc.parallelize(range(1000), 4).map(lambda x: x * x).sum())',
    'print("executors", sc._jsc.sc().getExecutorMemoryStatus().size() - 1)',
    'spark.stop()',
  ].join('\n'), { timeoutMs: 4 * 60_000 });
  // The driver JVM's own warnings arrive on stderr too: read the labelled lines.
  const said = (label: string) => out.split('\n').find((l) => l.startsWith(`${label} `))?.slice(label.length + 1);
  t.is(said('master'), `spark://127.0.0.1:${record!.ports.spark}`);
  t.is(said('sum'), '332833500');
  t.is(said('executors'), '2', 'one executor per worker');
});

test.serial('the Dask dashboard opens through Jupyter\'s proxy with the token, and not without', async (t) => {
  const links = await backend.links(user);
  const dashboard = links['Dask dashboard'];
  t.is(dashboard, 'dask/status', 'the same path at every start: its port is not in it');
  const withToken = await fetch(`${jupyter}${dashboard}`, { headers: { Authorization: `token ${token}` } });
  t.is(withToken.status, 200);
  t.regex(await withToken.text(), /dask|bokeh/i);
  const without = await fetch(`${jupyter}${dashboard}`, { redirect: 'manual' });
  await without.body?.cancel();
  t.true([401, 403, 302].includes(without.status), `without a token: ${without.status}`);
});

test.serial('the tutorial materials were cloned into the workspace', async (t) => {
  const readme = join(clusterPaths(stateDir, user).workspace, 'materials', 'README.md');
  t.true(existsSync(readme));
  t.regex(await readFile(readme, 'utf8'), /Week 1/);
});

test.serial('scaling 2 → 4 while a Dask computation runs: the computation uses the new workers', async (t) => {
  t.timeout(6 * 60_000);
  let scaled: Promise<number> | undefined;
  const out = await runInKernel(jupyter, token, [
    'import time',
    'from dask.distributed import Client, as_completed, get_worker',
    'client = Client()',
    'def work(i):',
    '    time.sleep(0.2)',
    '    return get_worker().address',
    'futures = client.map(work, range(5000), pure=False)',
    'print("running", flush=True)',
    'seen, deadline = set(), time.time() + 300',
    'for future in as_completed(futures):',
    '    seen.add(future.result())',
    '    if len(seen) >= 4 or time.time() > deadline:',
    '        break',
    'client.cancel(futures)',
    'print("workers used", len(seen))',
  ].join('\n'), {
    timeoutMs: 6 * 60_000,
    onOutput: (text) => {
      if (!scaled && text.includes('running')) {
        const started = performance.now();
        scaled = backend.scale(user, 4).then(() => performance.now() - started);
      }
    },
  });
  t.truthy(scaled, 'the computation was running before scale()');
  const ms = await scaled!;
  t.log(`scale() 2 → 4 until every engine saw the new workers: ${(ms / 1000).toFixed(1)}s`);
  t.regex(out, /workers used 4/);
  const status = await backend.status(user);
  t.is(status.state, 'running');
  t.is(status.workers, 4);
  t.is(status.readyWorkers, 4);
});

test.serial('stop (with reset) leaves no process and removes the workspace', async (t) => {
  const paths = clusterPaths(stateDir, user);
  const record = await readRecord(paths.stateFile);
  const pgids = [record!.scheduler!.pgid, ...record!.workers.map((w) => w.pgid)];
  t.is(pgids.length, 5);
  await backend.stop(user, { removeWorkspace: true });
  for (const pgid of pgids) {
    t.throws(() => process.kill(-pgid, 0), { code: 'ESRCH' }, `process group ${pgid} is gone`);
  }
  t.deepEqual(await clusterProcesses(stateDir, user), [], 'no kernel or engine left outside the groups either');
  t.false(existsSync(paths.workspace));
  t.is((await backend.status(user)).state, 'stopped');
  t.deepEqual(await backend.list(), []);
});

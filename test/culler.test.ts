/**
 * The culler against a real Jupyter Server (from the local backend's virtualenv) behind a
 * real configurable-http-proxy: Jupyter's own activity, busy kernels, and sweeps that
 * combine both views. Time is compressed: seconds of idle timeout, and the culler's clock
 * moved forward instead of waiting.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchActivity } from '../culler/activity.ts';
import { Culler } from '../culler/job.ts';
import { candidate, captureLogger, cullerConfig, deadUrl, StandInHub, startProxy } from './helpers/culler.ts';
import type { CullCandidate, CullerConfig } from '../culler/types.ts';
import { ensureVenv, REQUIREMENTS_FILE } from '../spawner/local/venv.ts';
import { freePort, waitUntil } from './helpers/net.ts';

interface Jupyter { user: string; url: string; token: string; baseUrl: string; stop(): Promise<void> }

const cleanup: Array<() => Promise<void>> = [];
test.after.always(async () => {
  await Promise.all(cleanup.map((fn) => fn()));
});

/** `jupyter-server` of the local backend's virtualenv (where it is for this user: ~/.cache, or /var/lib as root). */
async function jupyterServerBin(): Promise<string> {
  const venv = await ensureVenv({ python: 'python3', requirementsFile: REQUIREMENTS_FILE, log: () => {} });
  return join(venv.bin, 'jupyter-server');
}

/**
 * A Jupyter Server for `user` on a free port, serving under `/user/{user}/` with a token.
 * Only the core server: the culler talks to its REST API, not to the Lab extensions.
 */
async function startJupyter(user: string): Promise<Jupyter> {
  const [bin, port, dir] = await Promise.all([jupyterServerBin(), freePort(), mkdtemp(join(tmpdir(), `culler-jupyter-${user}-`))]);
  const token = `jupyter-token-of-${user}`;
  const baseUrl = `/user/${user}/`;
  const off = ['jupyterlab', 'jupyter_lsp', 'dask_labextension', 'ipyparallel', 'jupyter_server_proxy', 'jupyter_server_terminals', 'notebook_shim'];
  const child = spawn(bin, [
    '--no-browser', ...(process.getuid?.() === 0 ? ['--allow-root'] : []),
    '--ServerApp.ip=127.0.0.1', `--ServerApp.port=${port}`, '--ServerApp.port_retries=0',
    `--ServerApp.base_url=${baseUrl}`, `--IdentityProvider.token=${token}`, `--ServerApp.root_dir=${dir}`,
    `--ServerApp.jpserver_extensions={${off.map((e) => `'${e}': False`).join(', ')}}`,
  ], {
    env: { ...process.env, JUPYTER_CONFIG_DIR: join(dir, '.config'), JUPYTER_RUNTIME_DIR: join(dir, '.runtime'), IPYTHONDIR: join(dir, '.ipython') },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  const tail: string[] = [];
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => tail.push(...chunk.split('\n').slice(-20)));
  const exited = once(child, 'exit');
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM'); // Jupyter shuts its kernels down on SIGTERM.
    const killer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, 10_000);
    await exited;
    clearTimeout(killer);
    await rm(dir, { recursive: true, force: true });
  };
  cleanup.push(stop);
  const jupyter = { user, url: `http://127.0.0.1:${port}`, token, baseUrl, stop };
  await waitUntil(`Jupyter Server of ${user} to answer`, async () => {
    if (child.exitCode !== null) throw new Error(`jupyter-server exited ${child.exitCode}: ${tail.slice(-10).join('\n')}`);
    return !('unreachable' in (await fetchActivity(asCluster(jupyter))));
  }, { timeoutMs: 90_000, intervalMs: 200 });
  return jupyter;
}

/** Start a kernel, run `code` on it over the websocket until the kernel says busy, then close the socket (no browser open). */
async function busyKernel(j: Jupyter, code: string): Promise<void> {
  const api = `${j.url}${j.baseUrl}api/kernels`;
  const res = await fetch(api, { method: 'POST', headers: { Authorization: `token ${j.token}`, 'Content-Type': 'application/json' }, body: '{"name":"python3"}' });
  const kernel = (await res.json()) as { id: string };
  cleanup.unshift(async () => { await fetch(`${api}/${kernel.id}`, { method: 'DELETE', headers: { Authorization: `token ${j.token}` } }).catch(() => {}); });
  const ws = new WebSocket(`${api.replace(/^http/, 'ws')}/${kernel.id}/channels?token=${j.token}`);
  await once(ws, 'open');
  const msgId = crypto.randomUUID();
  const busy = new Promise<void>((resolve) => {
    ws.addEventListener('message', (e) => {
      const m = JSON.parse(String(e.data)) as { msg_type: string; parent_header?: { msg_id?: string }; content?: { execution_state?: string } };
      if (m.msg_type === 'status' && m.parent_header?.msg_id === msgId && m.content?.execution_state === 'busy') resolve();
    });
  });
  ws.send(JSON.stringify({
    header: { msg_id: msgId, username: j.user, session: crypto.randomUUID(), msg_type: 'execute_request', version: '5.3', date: new Date().toISOString() },
    parent_header: {}, metadata: {}, channel: 'shell', buffers: [],
    content: { code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
  }));
  await busy;
  ws.close();
  await once(ws, 'close');
}

function asCluster(j: Jupyter, over: Partial<CullCandidate> = {}): CullCandidate {
  return { ...candidate(j.user, j.url), jupyterToken: j.token, ...over };
}

/** A proxy, the clusters' routes (unless `noRoute`), and a culler whose clock runs `skewSeconds` ahead. */
async function setup(clusters: CullCandidate[], config: Partial<CullerConfig>, noRoute: string[] = []) {
  const proxy = await startProxy();
  cleanup.push(proxy.stop);
  const hub = new StandInHub(proxy.client, clusters);
  for (const c of clusters) if (!noRoute.includes(c.user)) await proxy.client.addRoute(c.routePath, c.url!, { user: c.user });
  const clock = { skewSeconds: 0 };
  const culler = new Culler(hub.deps(captureLogger(), () => new Date(Date.now() + clock.skewSeconds * 1000)), cullerConfig(config));
  return { proxy, hub, clock, culler };
}

// Two servers for the whole file: alice stays idle, bob runs a long computation.
const alice = startJupyter('alice');
const bob = startJupyter('bob').then(async (j) => {
  await busyKernel(j, 'import time; time.sleep(600)');
  return j;
});
// Awaited by the tests; a failed start fails them there, not as an unhandled rejection.
alice.catch(() => {});
bob.catch(() => {});

test('an idle Jupyter Server reports its last activity, and asking is not activity', async (t) => {
  const j = await alice;
  const first = await fetchActivity(asCluster(j));
  if ('unreachable' in first) return t.fail(first.unreachable);
  t.deepEqual([first.kernels, first.busyKernels, first.connections], [0, 0, 0]);
  t.true(first.lastActivity.getTime() <= Date.now());
  const again = await fetchActivity(asCluster(j));
  t.deepEqual(again, first);
});

test('a kernel running time.sleep is busy even with no browser open', async (t) => {
  const activity = await fetchActivity(asCluster(await bob));
  t.like(activity, { kernels: 1, busyKernels: 1, connections: 0 });
});

test('a wrong token or a dead port makes Jupyter unreachable, with the reason', async (t) => {
  const j = await alice;
  t.like(await fetchActivity(asCluster(j, { jupyterToken: 'wrong' })), { unreachable: `${j.url}/user/alice/api/status?no_track_activity=1 answered 403 (the Jupyter token was refused)` });
  const dead = await fetchActivity(asCluster(j, { url: await deadUrl() }));
  t.regex('unreachable' in dead ? dead.unreachable : '', /^cannot reach http:\/\/127\.0\.0\.1:\d+\/user\/alice\/api\/status\?no_track_activity=1: ECONNREFUSED$/);
});

test('an idle cluster is culled and a busy one kept', async (t) => {
  const { hub, clock, culler } = await setup([asCluster(await alice), asCluster(await bob)], { idleTimeoutSeconds: 60 });
  clock.skewSeconds = 125;
  const report = await culler.sweep();
  t.deepEqual(hub.stopped, [{ user: 'alice', reason: 'idle 2 minutes' }]);
  t.like(report.clusters.find((c) => c.user === 'alice'), { action: 'cull', evidence: 'proxy+jupyter', stopped: true });
  t.like(report.clusters.find((c) => c.user === 'bob'), { action: 'keep', reason: 'a kernel is busy', evidence: 'jupyter' });
});

test('traffic through the proxy keeps a cluster that Jupyter calls idle', async (t) => {
  const j = await alice;
  const { proxy, hub, clock, culler } = await setup([asCluster(j)], { idleTimeoutSeconds: 2 });
  await waitUntil('Jupyter to report 2.5 s without activity', async () => {
    const a = await fetchActivity(asCluster(j));
    return 'lastActivity' in a && Date.now() - a.lastActivity.getTime() >= 2500;
  }, { timeoutMs: 10_000, intervalMs: 250 });
  // A status poll through the proxy: traffic for the proxy, not activity for Jupyter.
  const res = await fetch(`${proxy.publicUrl}/user/alice/api/status?no_track_activity=1`, { headers: { Authorization: `token ${j.token}` } });
  t.is(res.status, 200);
  await res.body?.cancel();

  const kept = await culler.sweep();
  t.like(kept.clusters[0], { action: 'keep', evidence: 'proxy' });
  t.deepEqual(hub.stopped, []);
  clock.skewSeconds = 3;
  const later = await culler.sweep();
  t.like(later.clusters[0], { action: 'cull', evidence: 'proxy+jupyter' });
  t.deepEqual(hub.stopped.map((s) => s.user), ['alice']);
});

test('max age culls a cluster even while its kernel is busy', async (t) => {
  const busy = asCluster(await bob, { createdAt: new Date(Date.now() - 120_000).toISOString() });
  const { hub, culler } = await setup([busy], { idleTimeoutSeconds: 3600, maxAgeSeconds: 60 });
  const report = await culler.sweep();
  t.deepEqual(hub.stopped, [{ user: 'bob', reason: 'max age' }]);
  t.is(report.clusters[0]?.evidence, 'age');
});

test('a running cluster with no route yet is judged by Jupyter alone', async (t) => {
  const { hub, clock, culler } = await setup([asCluster(await alice)], { idleTimeoutSeconds: 60 }, ['alice']);
  t.like((await culler.sweep()).clusters[0], { action: 'keep', evidence: 'jupyter' });
  clock.skewSeconds = 125;
  t.like((await culler.sweep()).clusters[0], { action: 'cull', evidence: 'jupyter' });
  t.is(hub.stopped[0]?.user, 'alice');
});

/**
 * jupyterhub-idle-culler from PyPI, unmodified, against a whole hub with real local
 * clusters (real Jupyter, real configurable-http-proxy): tom's cluster is idle, bea runs a
 * long computation in a busy kernel. The hub's own culler is off, as when an instructor
 * brings JupyterHub's; the hub writes activity every second (time is compressed: idle
 * after 8 s). Three runs in turn, each a real `python -m jupyterhub_idle_culler` process:
 *  1. plain: tom's server is culled, bea's is left, nobody is deleted;
 *  2. `--cull-users`: users without a server and idle that long are deleted (tom, old), the
 *     recently active one (sid) and bea (her server is alive) stay;
 *  3. `--max-age=1`: bea's server goes too, busy or not.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { startTestHub, type TestHub } from './helpers/hub.ts';
import { apiAs } from './helpers/hub-api.ts';
import { startBusyKernel } from './helpers/kernel.ts';
import { waitUntil } from './helpers/net.ts';
import { clientBin } from './python/clients.ts';

const IDLE = 8;
let hub: TestHub;
let admin: string;
const running: ChildProcess[] = [];

test.before(async () => {
  hub = await startTestHub({
    config: {
      hub: { activityIntervalSeconds: 1 },
      spawn: { backend: 'local', defaultWorkers: 0, startTimeoutSeconds: 240 },
      local: { spark: 'off' },
    },
  });
  admin = hub.token('teacher');
});

test.after.always(async () => {
  for (const child of running) child.kill('SIGKILL');
  for (const user of ['tom', 'bea']) await hub?.manager.stop(user, { actor: 'test' }).catch(() => {});
  await hub?.destroy();
});

const api = (path: string, init: { method?: string; json?: unknown } = {}) => apiAs(hub, admin, path, init);
type Server = { ready: boolean; last_activity: string; started: string };
const serverOf = async (user: string): Promise<Server | undefined> => ((await (await api(`/hub/api/users/${user}`)).json()) as { servers: Record<string, Server> }).servers[''];
const secondsAgo = (iso: string) => (Date.now() - Date.parse(iso)) / 1000;

/**
 * Runs the idle culler with `args` until its log shows every line of `until` and the hub shows
 * what it was asked (`done`); returns the log. Its "Culling …" line comes before its request:
 * stopped at that line, the request may never leave (as happened on a loaded machine).
 */
async function runCuller(args: string[], until: RegExp[], done: { what: string; check: () => boolean }): Promise<string> {
  const bin = await clientBin();
  const child = spawn(join(bin, 'python'), ['-m', 'jupyterhub_idle_culler', `--url=${hub.publicUrl}/hub/api`, '--cull-every=3600', '--IdleCuller.log_level=DEBUG', ...args], {
    env: { ...process.env, JUPYTERHUB_API_TOKEN: admin }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(child);
  let log = '';
  child.stdout!.on('data', (c: Buffer) => { log += c.toString(); });
  child.stderr!.on('data', (c: Buffer) => { log += c.toString(); });
  const exited = new Promise<never>((_, reject) => child.once('close', (code) => reject(new Error(`the culler exited (${code}) early`))));
  try {
    await Promise.race([exited, waitUntil(`the culler's log to show ${until.join(', ')}`, () => until.every((re) => re.test(log)), { timeoutMs: 60_000, intervalMs: 100 })]);
    await Promise.race([exited, waitUntil(done.what, done.check, { timeoutMs: 30_000, intervalMs: 100 })]);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- culler log ---\n${log}`);
  } finally {
    exited.catch(() => {});
    child.kill('SIGTERM');
  }
  return log;
}

test.serial('the idle culler stops an idle cluster, leaves a busy one, and deletes only idle users when asked', async (t) => {
  t.is((await api('/hub/api/users', { method: 'POST', json: { usernames: ['tom', 'bea', 'sid', 'old'] } })).status, 201);
  for (const user of ['tom', 'bea']) t.is((await api(`/hub/api/users/${user}/server`, { method: 'POST', json: { workers: 0 } })).status, 202);
  for (const user of ['tom', 'bea']) {
    for await (const event of hub.manager.progress(user)) if (event.failed) throw new Error(`${user}: ${event.message}`);
  }
  const bea = hub.store.getCluster('bea')!;
  await startBusyKernel(`${bea.url}/user/bea/`, bea.jupyterToken, 'import time; time.sleep(1800)');
  const busySince = Date.now();

  // The hub's activity rounds keep bea fresh while tom ages past the timeout.
  await waitUntil(`tom idle for ${IDLE} s`, async () => secondsAgo((await serverOf('tom'))!.last_activity) > IDLE + 1, { timeoutMs: 60_000, intervalMs: 500 });
  const beaServer = (await serverOf('bea'))!;
  t.true(Date.parse(beaServer.last_activity) >= busySince - 1000 && secondsAgo(beaServer.last_activity) < 4, `bea's busy kernel is activity: ${beaServer.last_activity}`);

  const first = await runCuller([`--timeout=${IDLE}`], [/Culling server tom/, /Not culling server bea/], { what: 'tom\'s cluster to stop', check: () => hub.store.getCluster('tom') === undefined });
  t.truthy(hub.store.getCluster('bea'), 'bea\'s busy cluster is left running');
  t.false(/Culling user/.test(first), 'without --cull-users nobody is deleted');
  t.truthy(hub.store.getUser('tom'));
  t.is(hub.store.listEvents({ user: 'tom', limit: 1 })[0]?.kind, 'stop');

  // Users: old has been idle for hours, sid was active a moment ago.
  hub.store.recordActivity('old', new Date(Date.now() - 2 * 3600_000));
  hub.store.recordActivity('sid', new Date());
  await runCuller([`--timeout=${IDLE}`, '--cull-users=True'], [/Culling user old/, /Culling user tom/, /Not culling user sid/], { what: 'old and tom to be deleted', check: () => !hub.store.getUser('old') && !hub.store.getUser('tom') });
  t.truthy(hub.store.getUser('sid'), 'a recently active student stays');
  t.truthy(hub.store.getUser('bea'), 'a student whose server is alive stays');
  t.truthy(hub.store.getCluster('bea'));

  await runCuller(['--timeout=3600', '--max-age=1'], [/Culling server bea \(age/], { what: 'bea\'s cluster to stop at max age', check: () => hub.store.getCluster('bea') === undefined });
  t.false('/user/bea' in await hub.proxy.getRoutes());
});

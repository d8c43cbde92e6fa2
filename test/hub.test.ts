/**
 * The hub end to end over real HTTP and a real configurable-http-proxy, with the echo
 * backend (each cluster a small real HTTP server): routes, progress, restart and repair.
 */
import test from 'ava';
import { Agent, request } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { EchoBackend } from './helpers/echo-backend.ts';
import { startTestHub, type TestHub } from './helpers/hub.ts';
import { waitUntil } from './helpers/net.ts';
import { startHub } from '../hub/main.ts';
import { silentLogger } from '../shared/log.ts';

async function readProgress(hub: TestHub, client: Awaited<ReturnType<TestHub['signIn']>>, user: string): Promise<Array<Record<string, unknown>>> {
  const res = await client.get(`/hub/api/users/${user}/cluster/progress`);
  return res.text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)) as Record<string, unknown>);
}

test('launch → progress stream → route in the proxy → traffic reaches the cluster → stop removes the route', async (t) => {
  const backend = new EchoBackend();
  const hub = await startTestHub({ backend });
  t.teardown(() => hub.destroy());
  const alice = await hub.signIn('alice');
  const csrf = (await alice.get('/hub/home')).text.match(/name="_csrf" value="([^"]+)"/)![1]!;

  const hold = Promise.withResolvers<void>();
  backend.hold = hold.promise;
  const res = await alice.post('/hub/api/users/alice/cluster', { json: { workers: 3 }, headers: { 'X-CSRF-Token': csrf } });
  t.is(res.status, 202, res.text);
  t.is(res.json<{ progress_url: string }>().progress_url, '/hub/api/users/alice/cluster/progress');
  t.like((await alice.get('/hub/api/user')).json<Record<string, unknown>>(), { pending: 'spawn', server: null });

  // Open the stream (headers arrive at once) before letting the launch go on.
  const cookie = alice.cookiesFor(hub.publicUrl).map((c) => `${c.name}=${c.value}`).join('; ');
  const stream = await fetch(`${hub.publicUrl}/hub/api/users/alice/cluster/progress`, { headers: { Cookie: cookie } });
  t.regex(stream.headers.get('content-type') ?? '', /^text\/event-stream/);
  hold.resolve();
  const events = (await stream.text()).split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)) as Record<string, unknown>);
  t.true(events.some((e) => e.message === 'starting the echo cluster'));
  t.true(events.some((e) => e.message === 'workers joined'));
  t.deepEqual(events.at(-1), { progress: 100, message: 'Your cluster is ready', ready: true, url: '/user/alice/' });
  const routes = await hub.proxy.getRoutes();
  t.is(routes['/user/alice']?.target, hub.backend instanceof EchoBackend ? backend.clusters.get('alice')!.target.url : '');
  t.is(routes['/user/alice']?.user, 'alice');

  const through = await alice.get('/user/alice/lab');
  t.is(through.status, 200);
  t.is(through.json<{ name: string }>().name, 'cluster of alice');

  const user = await alice.get('/hub/api/user');
  t.like(user.json<Record<string, unknown>>(), { name: 'alice', admin: false, server: '/user/alice/', pending: null, cluster: { phase: 'running', workers: 3 } });

  const stop = await alice.request('/hub/api/users/alice/cluster', { method: 'DELETE', headers: { 'X-CSRF-Token': csrf } });
  t.is(stop.status, 204);
  t.false('/user/alice' in await hub.proxy.getRoutes());
  t.false(backend.clusters.has('alice'));
  const after = await alice.get('/user/alice/lab');
  t.is(after.status, 302, 'with no route the hub answers and sends the student home');
});

test('a killed proxy is restarted and every route comes back', async (t) => {
  const backend = new EchoBackend();
  const hub = await startTestHub({ backend });
  t.teardown(() => hub.destroy());
  const token = hub.token('bob');
  const api = hub.anonymous();
  const auth = { Authorization: `token ${token}` };
  t.is((await api.post('/hub/api/users/bob/cluster', { json: {}, headers: auth })).status, 202);
  await hub.manager.progress('bob')[Symbol.asyncIterator]().next();
  for await (const e of hub.manager.progress('bob')) if (e.ready) break;

  const restarted = new Promise((resolve) => hub.supervisor!.once('restart', resolve));
  process.kill(hub.supervisor!.pid!, 'SIGKILL');
  await restarted;
  const route = await waitUntil('the route to be back', async () => (await hub.proxy.getRoutes())['/user/bob'], { timeoutMs: 10_000 });
  t.is(route.target, backend.clusters.get('bob')!.target.url);
  t.is((await api.get('/user/bob/')).status, 200);
  const metrics = await api.get('/hub/metrics', { headers: { Authorization: `token ${hub.token('teacher')}` } });
  t.regex(metrics.text, /clusterhub_proxy_route_repairs_total\{kind="added"\} 1/);
});

test('routes drift is repaired: missing and wrong routes fixed, stale ones removed', async (t) => {
  const backend = new EchoBackend();
  const hub = await startTestHub({ backend });
  t.teardown(() => hub.destroy());
  await hub.manager.launch((hub.store.upsertUser({ login: 'carol' }), 'carol'), 1).done;
  await hub.proxy.deleteRoute('/user/carol');
  await hub.proxy.addRoute('/user/ghost', 'http://127.0.0.1:9', {});
  await hub.repair();
  const routes = await hub.proxy.getRoutes();
  t.is(routes['/user/carol']?.target, backend.clusters.get('carol')!.target.url);
  t.false('/user/ghost' in routes);
});

test('with the culler off, route sync on its timer removes a /user/ route that leads to no cluster', async (t) => {
  const hub = await startTestHub({ backend: new EchoBackend(), config: { proxy: { checkRoutesSeconds: 0.2 }, culler: { enabled: false } } });
  t.teardown(() => hub.destroy());
  await hub.proxy.addRoute('/user/ghost', 'http://127.0.0.1:9', { user: 'ghost' });
  await hub.proxy.addRoute('/services/grader', 'http://127.0.0.1:9', {});
  await waitUntil('route sync to remove the stray route', async () => !('/user/ghost' in await hub.proxy.getRoutes()), { timeoutMs: 10_000 });
  t.true('/services/grader' in await hub.proxy.getRoutes(), 'routes outside /user/ are not route sync\'s');
});

test('a restarted hub finds its running clusters again and restores their routes', async (t) => {
  const backend = new EchoBackend();
  const first = await startTestHub({ backend });
  first.store.upsertUser({ login: 'dave' });
  await first.manager.launch('dave', 2).done;
  const stateDir = first.config.hub.stateDir;
  await first.close();

  const second = await startHub(first.config, { log: silentLogger(), backend });
  t.teardown(async () => {
    await second.close();
    await backend.destroyAll();
  });
  t.is(second.store.getCluster('dave')?.phase, 'running');
  t.is((await second.proxy.getRoutes())['/user/dave']?.target, backend.clusters.get('dave')!.target.url);
  t.is(second.manager.view('dave').workers, 2);
  t.truthy(stateDir);
});

test('a failed launch shows its reason and the student can launch again at once', async (t) => {
  const backend = new EchoBackend();
  const hub = await startTestHub({ backend });
  t.teardown(() => hub.destroy());
  const erin = await hub.signIn('erin');
  const home = await erin.get('/hub/home');
  const csrf = home.text.match(/name="_csrf" value="([^"]+)"/)![1]!;
  backend.failNext = 'Unschedulable: 0/1 nodes are available: insufficient cpu';
  t.is((await erin.post('/hub/spawn', { form: { workers: '1', _csrf: csrf } })).status, 303);
  const events = await readProgress(hub, erin, 'erin');
  t.true(events.at(-1)!.failed as boolean);
  t.regex(String(events.at(-1)!.message), /Unschedulable/);
  const page = await erin.get('/hub/home');
  t.regex(page.text, /Your last launch failed.*Unschedulable/);
  t.regex(page.text, />Launch</);
  t.is((await erin.post('/hub/spawn', { form: { workers: '1', _csrf: csrf } })).status, 303);
  for await (const e of hub.manager.progress('erin')) if (e.ready || e.failed) t.true(e.ready);
});

test('with an external proxy (as on Kubernetes) the hub uses its REST API and starts none', async (t) => {
  const { ChpSupervisor } = await import('../proxy/supervisor.ts');
  const { freePort } = await import('./helpers/net.ts');
  const hubPort = await freePort();
  const authToken = 'external-proxy-token-0123456789';
  const proxy = new ChpSupervisor({ port: await freePort(), apiPort: await freePort(), defaultTarget: `http://127.0.0.1:${hubPort}`, authToken });
  await proxy.start();
  t.teardown(() => proxy.stop());
  const backend = new EchoBackend();
  const hub = await startTestHub({ backend, config: { hub: { hubPort, publicUrl: proxy.publicUrl }, proxy: { mode: 'external', apiUrl: proxy.apiUrl, authToken } } });
  t.teardown(() => hub.destroy());
  t.is(hub.supervisor, undefined);
  hub.store.upsertUser({ login: 'ext' });
  await hub.manager.launch('ext', 1).done;
  const res = await fetch(`${proxy.publicUrl}/user/ext/tree`);
  t.is(res.status, 200);
  t.is(((await res.json()) as { name: string }).name, 'cluster of ext');
  t.is((await fetch(`${proxy.publicUrl}/hub/health`)).status, 200, 'the proxy sends /hub/ to the hub');
});

test('the hub keeps the managed proxy\'s connections open while they are idle, so a reused one is never reset', async (t) => {
  const hub = await startTestHub({ backend: new EchoBackend() });
  t.teardown(() => hub.destroy());
  const token = hub.token('teacher');
  // As the proxy talks to the hub: a keep-alive agent (CHP's), straight to the hub's port.
  const agent = new Agent({ keepAlive: true });
  t.teardown(() => agent.destroy());
  const get = () => new Promise<{ status: number; reused: boolean; keepAlive: string | undefined }>((resolve, reject) => {
    const req = request(`${hub.hubUrl}/hub/api/user`, { headers: { Authorization: `token ${token}` }, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket, keepAlive: res.headers['keep-alive'] as string | undefined }));
    });
    req.on('error', reject);
    req.end();
  });
  const first = await get();
  t.like(first, { status: 200, reused: false });
  t.is(first.keepAlive, undefined, 'no idle limit announced: the proxy need not guess when the hub closes');
  // Past Node's idle limit (5 s, and 1 s more before a server closes): a hub that closed idle
  // connections raced a busy proxy that reused one, and the request on it was reset (503).
  await delay(6_500);
  t.like(await get(), { status: 200, reused: true });
});

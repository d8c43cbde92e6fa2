/**
 * The proxy layer against real configurable-http-proxy processes on loopback.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { ChpClient, ProxyApiError } from '../proxy/client.ts';
import { ChpSupervisor, type ChpSupervisorOptions } from '../proxy/supervisor.ts';
import { syncRoutes, type WantedRoute } from '../proxy/route-sync.ts';
import { freePort, startHttpTarget, waitUntil, type HttpTarget } from './helpers/net.ts';

const TOKEN = 'test-token-0123456789abcdef';
const cleanup: Array<() => Promise<void>> = [];
test.after.always(async () => {
  await Promise.all(cleanup.map((fn) => fn()));
});

async function target(name: string): Promise<HttpTarget> {
  const t = await startHttpTarget(name);
  cleanup.push(t.close);
  return t;
}

/**
 * A supervised CHP, its hub stub as default target, and an API client. Its ports are left to
 * the supervisor unless given: tests run concurrently, and a port from freePort() can be
 * taken by another test's proxy or server before this one binds it.
 */
async function startProxy(extra: Partial<ChpSupervisorOptions> = {}) {
  const hub = await target('hub');
  const supervisor = new ChpSupervisor({
    port: 0,
    apiPort: 0,
    defaultTarget: hub.url,
    authToken: TOKEN,
    logLevel: 'warn',
    // A dozen proxies of this file boot at once; on a loaded 2-core machine that outlasts the default 15 s.
    startTimeoutMs: 60_000,
    ...extra,
  });
  await supervisor.start();
  cleanup.push(() => supervisor.stop());
  const client = new ChpClient({ apiUrl: supervisor.apiUrl, authToken: TOKEN });
  return { supervisor, client, hub };
}

async function getJson(url: string): Promise<{ status: number; body: { name?: string; url?: string } }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  return { status: res.status, body: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : {} };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const shared = startProxy();

test('a route can be added, listed with its data, and deleted', async (t) => {
  const { client } = await shared;
  const a = await target('a');
  await client.addRoute('/user/alice', a.url, { user: 'alice', cluster: true });
  const routes = await client.getRoutes();
  t.is(routes['/user/alice']?.target, a.url);
  t.is(routes['/user/alice']?.user, 'alice');
  t.is(routes['/user/alice']?.cluster, true);
  t.truthy(routes['/user/alice']?.last_activity);

  await client.deleteRoute('/user/alice');
  t.false('/user/alice' in (await client.getRoutes()));
  await t.notThrowsAsync(client.deleteRoute('/user/alice'), 'deleting a route that is gone succeeds');
});

test('traffic through the proxy reaches the route target, and the rest reaches the hub', async (t) => {
  const { client, supervisor } = await shared;
  const b = await target('bob');
  await client.addRoute('/user/bob/', b.url, { user: 'bob' });
  const routed = await getJson(`${supervisor.publicUrl}/user/bob/lab/tree?x=1`);
  t.is(routed.status, 200);
  t.deepEqual(routed.body, { name: 'bob', method: 'GET', url: '/user/bob/lab/tree?x=1' });
  const other = await getJson(`${supervisor.publicUrl}/hub/home`);
  t.is(other.body.name, 'hub');
});

test('inactive_since lists only the routes without traffic since then', async (t) => {
  const { client, supervisor } = await shared;
  const busy = await target('busy');
  const idle = await target('idle');
  await client.addRoute('/user/busy', busy.url);
  await client.addRoute('/user/idle', idle.url);
  const added = await client.getRoutes();
  const since = new Date(Math.max(...['/user/busy', '/user/idle'].map((p) => Date.parse(added[p]!.last_activity!))) + 1);
  await waitUntil('the clock to pass the cut-off', () => Date.now() > since.getTime());

  t.is((await getJson(`${supervisor.publicUrl}/user/busy/api/status`)).status, 200);
  const inactive = await waitUntil('the busy route to leave the inactive list', async () => {
    const r = await client.getRoutes(since);
    return '/user/busy' in r ? undefined : r;
  });
  t.true('/user/idle' in inactive);
  const all = await client.getRoutes();
  t.true(Date.parse(all['/user/busy']!.last_activity!) > Date.parse(all['/user/idle']!.last_activity!));
});

test('a wrong token gives an error naming the call and the status', async (t) => {
  const { supervisor } = await shared;
  const bad = new ChpClient({ apiUrl: supervisor.apiUrl, authToken: 'not-the-token' });
  const err = await t.throwsAsync(bad.getRoutes(), { instanceOf: ProxyApiError });
  t.is(err?.status, 403);
  t.regex(err?.message ?? '', /GET \/api\/routes failed: 403 Forbidden \(the auth token does not match/);
  const post = await t.throwsAsync(bad.addRoute('/user/x', 'http://127.0.0.1:1'));
  t.regex(post?.message ?? '', /POST \/api\/routes\/user\/x failed: 403/);
});

test('a proxy that is not there gives an error saying it cannot be reached', async (t) => {
  // Refused at once on loopback; the long timeout only covers this process being slow to notice under load.
  const client = new ChpClient({ apiUrl: `http://127.0.0.1:${await freePort()}`, authToken: TOKEN, timeoutMs: 20_000 });
  const err = await t.throwsAsync(client.deleteRoute('/user/x'), { instanceOf: ProxyApiError });
  t.is(err?.status, 0);
  t.regex(err?.message ?? '', /DELETE \/api\/routes\/user\/x failed: cannot reach http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/);
});

test('route sync adds missing routes, fixes wrong targets, removes stale ones and leaves the rest', async (t) => {
  const { client, supervisor } = await startProxy();
  const a = await target('a');
  const b = await target('b');
  await client.addRoute('/user/a', 'http://127.0.0.1:1', { user: 'a' });
  await client.addRoute('/user/stale', a.url, { user: 'stale' });
  await client.addRoute('/services/other', a.url);
  const wanted = new Map<string, WantedRoute>([
    ['/user/a/', { target: a.url, data: { user: 'a' } }],
    ['/user/b/', { target: b.url, data: { user: 'b' } }],
  ]);

  const { routes: before, ...first } = await syncRoutes(client, wanted);
  t.deepEqual(first, { added: 1, fixed: 1, removed: 1, errors: [] });
  t.deepEqual(Object.keys(before).sort(), ['/', '/services/other', '/user/a', '/user/stale'], 'the result carries the routes it read');
  const routes = await client.getRoutes();
  t.deepEqual(Object.keys(routes).sort(), ['/', '/services/other', '/user/a', '/user/b']);
  t.is(routes['/user/a']?.target, a.url);
  t.is(routes['/user/b']?.user, 'b');
  t.is((await getJson(`${supervisor.publicUrl}/user/b/lab`)).body.name, 'b');
  const { routes: _read, ...second } = await syncRoutes(client, () => wanted);
  t.deepEqual(second, { added: 0, fixed: 0, removed: 0, errors: [] }, 'a second sync has nothing to do');
});

test('when the wanted routes cannot be computed, route sync changes nothing', async (t) => {
  const { client } = await startProxy();
  const a = await target('a');
  await client.addRoute('/user/a', a.url, { user: 'a' });
  await t.throwsAsync(syncRoutes(client, () => { throw new Error('database is locked'); }), { message: 'database is locked' });
  t.deepEqual(Object.keys(await client.getRoutes()).sort(), ['/', '/user/a']);
});

test('a killed proxy is restarted, and after a resync its routes and traffic are back', async (t) => {
  const { client, supervisor } = await startProxy();
  const c = await target('carol');
  const wanted = new Map<string, WantedRoute>([['/user/carol', { target: c.url, data: { user: 'carol' } }]]);
  await syncRoutes(client, wanted);
  const firstPid = supervisor.pid!;

  const restarted = once(supervisor, 'restart', { signal: AbortSignal.timeout(20_000) });
  const killedAt = Date.now();
  process.kill(firstPid, 'SIGKILL');
  const [info] = await restarted;
  t.log(`proxy answering again ${Date.now() - killedAt} ms after kill -9`);
  t.not(info.pid, firstPid);
  t.is(info.reason, 'signal SIGKILL');
  t.is(supervisor.restarts, 1);
  // Its API is where it was unless another process took the port meanwhile: ask where it is.
  const again = new ChpClient({ apiUrl: info.apiUrl, authToken: TOKEN });
  t.false('/user/carol' in (await again.getRoutes()), 'a new proxy starts with an empty table');

  t.like(await syncRoutes(again, wanted), { added: 1, removed: 0 });
  t.is((await getJson(`${supervisor.publicUrl}/user/carol/`)).body.name, 'carol');
});

test('the supervisor never gives up: killed again and again, the proxy comes back', async (t) => {
  const { supervisor } = await startProxy({ restartBackoffMs: 50, maxBackoffMs: 100 });
  for (let kill = 1; kill <= 7; kill++) {
    const restarted = once(supervisor, 'restart', { signal: AbortSignal.timeout(60_000) });
    const pid = supervisor.pid!;
    process.kill(pid, 'SIGKILL');
    const [info] = await restarted;
    t.true(info.pid !== pid && alive(info.pid), `a live new child after kill ${kill}`);
    t.is((await getJson(`${supervisor.publicUrl}/hub/`)).body.name, 'hub', `the public port answers after kill ${kill}`);
  }
  t.like(supervisor.state, { state: 'running', restarts: 7, failures: 0 });
});

test('the supervisor never gives up: kept off its configured public port, the proxy comes back on it', async (t) => {
  const { supervisor } = await startProxy({ port: await freePort(), restartBackoffMs: 50, maxBackoffMs: 100 });
  const restartedOnce = once(supervisor, 'restart', { signal: AbortSignal.timeout(60_000) });
  process.kill(supervisor.pid!, 'SIGKILL');
  await restartedOnce;

  // Something takes the public port while the proxy is down: every attempt fails, none is the last.
  const port = Number(new URL(supervisor.publicUrl).port);
  const squatter = createServer();
  supervisor.once('exit', () => squatter.listen({ host: '127.0.0.1', port, exclusive: true }));
  process.kill(supervisor.pid!, 'SIGKILL');
  const down = await waitUntil('six failed restarts in a row', () => supervisor.state.failures >= 7 && supervisor.state, { timeoutMs: 60_000 });
  t.is(down.state, 'restarting');
  t.regex(down.lastError ?? '', /public port 127\.0\.0\.1:\d+ is not available \(EADDRINUSE\)/);
  t.truthy(down.nextAttemptAt);
  const restarted = once(supervisor, 'restart', { signal: AbortSignal.timeout(60_000) });
  await new Promise<void>((resolve) => squatter.close(() => resolve()));
  await restarted;
  t.like(supervisor.state, { state: 'running', failures: 0 });
  t.is(new URL(supervisor.publicUrl).port, String(port), 'on its configured port');
  t.is((await getJson(`${supervisor.publicUrl}/hub/`)).body.name, 'hub');
});

/**
 * An upstream that accepts every websocket upgrade and keeps the connection (resolves each
 * socket's close); on a path ending in /reset it resets the connection right after, as a
 * student's own server could.
 */
async function websocketUpstream() {
  const closed: Array<Promise<void>> = [];
  const server = createHttpServer((_req, res) => res.end('plain'));
  server.on('upgrade', (req, socket: Socket) => {
    closed.push(new Promise((resolve) => socket.once('close', () => resolve())));
    socket.on('error', () => {});
    socket.on('end', () => socket.end());
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    if (req.url?.endsWith('/reset')) setImmediate(() => socket.resetAndDestroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanup.push(() => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, closed };
}

/**
 * A websocket opened through the proxy, as a browser's JupyterLab opens its kernel channels.
 * A raw socket, not the global WebSocket the kernel helpers use: only a raw one can send a TCP reset.
 */
async function openWebsocket(publicUrl: string, path: string): Promise<Socket> {
  const { hostname, port } = new URL(publicUrl);
  const socket = connect(Number(port), hostname);
  await once(socket, 'connect');
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
  const [reply] = (await once(socket, 'data', { signal: AbortSignal.timeout(10_000) })) as [Buffer];
  if (!String(reply).startsWith('HTTP/1.1 101')) throw new Error(`no upgrade: ${String(reply).split('\r\n')[0]}`);
  return socket;
}

test('a browser resetting its websocket (a tab closed), or a student\'s server resetting its own, leaves the proxy up for everyone', async (t) => {
  const { client, supervisor } = await startProxy();
  const upstream = await websocketUpstream();
  await client.addRoute('/user/dora', upstream.url, { user: 'dora' });
  const pid = supervisor.pid!;

  for (let tab = 1; tab <= 3; tab++) {
    const socket = await openWebsocket(supervisor.publicUrl, '/user/dora/api/kernels/k/channels');
    socket.resetAndDestroy();
    await upstream.closed.at(-1);
  }
  // The student's own server resetting its side, over and over.
  for (let attempt = 1; attempt <= 3; attempt++) {
    const socket = await openWebsocket(supervisor.publicUrl, '/user/dora/reset');
    if (!socket.closed) await once(socket, 'close');
  }
  t.is((await getJson(`${supervisor.publicUrl}/hub/`)).body.name, 'hub', 'the proxy still answers');
  const another = await openWebsocket(supervisor.publicUrl, '/user/dora/api/events/subscribe');
  another.destroy();
  t.is(supervisor.pid, pid, 'the same proxy process');
  t.is(supervisor.restarts, 0);
});

test('stop() ends the proxy and does not restart it', async (t) => {
  const { supervisor } = await startProxy();
  const pid = supervisor.pid!;
  let restarts = 0;
  supervisor.on('restart', () => restarts++);
  await supervisor.stop();
  t.false(alive(pid));
  t.is(supervisor.pid, undefined);
  t.is(restarts, 0);
});

test('a taken API port fails the start with a message saying so', async (t) => {
  const squatter = createServer();
  squatter.listen({ host: '127.0.0.1', port: 0 });
  await once(squatter, 'listening');
  cleanup.push(() => new Promise((resolve) => squatter.close(() => resolve())));
  const apiPort = (squatter.address() as { port: number }).port;
  const supervisor = new ChpSupervisor({ port: await freePort(), apiPort, defaultTarget: 'http://127.0.0.1:1', authToken: TOKEN });
  await t.throwsAsync(supervisor.start(), { message: new RegExp(`API port 127\\.0\\.0\\.1:${apiPort} is not available \\(EADDRINUSE\\)`) });
  t.is(supervisor.pid, undefined);
});

test('the proxy goes away when the hub process dies without stopping it', async (t) => {
  const [port, apiPort] = [await freePort(), await freePort()];
  const script = `
    import { ChpSupervisor } from ${JSON.stringify(new URL('../proxy/supervisor.ts', import.meta.url).href)};
    const s = new ChpSupervisor({ port: ${port}, apiPort: ${apiPort}, defaultTarget: 'http://127.0.0.1:1', authToken: 'x', startTimeoutMs: 60_000 });
    await s.start();
    console.log(s.pid);
    setInterval(() => {}, 1000);`;
  const hub = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanup.push(async () => void hub.kill('SIGKILL'));
  // Node booting twice (the hub, then its proxy) on a loaded machine: allow for it.
  const [chunk] = (await once(hub.stdout!, 'data', { signal: AbortSignal.timeout(90_000) })) as [Buffer];
  const proxyPid = Number(String(chunk).trim());
  t.true(alive(proxyPid));
  hub.kill('SIGKILL');
  await waitUntil('the orphaned proxy to exit', () => !alive(proxyPid), { timeoutMs: 10_000 });
  t.pass();
});

/** Another process's proxy API on `port` (same token), as a concurrent test's proxy would be: it answers like CHP's. */
async function foreignApi(port: number) {
  const seen: string[] = [];
  const server = createHttpServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end('{}');
  });
  server.listen({ host: '127.0.0.1', port, exclusive: true });
  await once(server, 'listening');
  const close = () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); });
  cleanup.push(close);
  return { seen, close };
}

test('another process answering on the configured API port during a restart is not taken for the proxy: the supervisor says so and waits for the port', async (t) => {
  const { supervisor, client } = await startProxy({ port: await freePort(), apiPort: await freePort(), restartBackoffMs: 50, maxBackoffMs: 100 });
  const apiPort = Number(new URL(supervisor.apiUrl).port);
  const announced: number[] = [];
  supervisor.on('restart', (info) => announced.push(info.pid));
  // It takes the port just after the new child is spawned, before that child binds it (the race of freePort()).
  const foreign = new Promise<Awaited<ReturnType<typeof foreignApi>>>((resolve, reject) => supervisor.once('spawn', () => foreignApi(apiPort).then(resolve, reject)));
  process.kill(supervisor.pid!, 'SIGKILL');
  const other = await foreign;
  const down = await waitUntil('three failures in a row', () => supervisor.state.failures >= 3 && supervisor.state, { timeoutMs: 60_000 });
  t.deepEqual(announced, [], 'no restart is announced while another process holds the API port');
  t.is(down.state, 'restarting');
  t.is(down.pid, undefined);
  t.regex(down.lastError ?? '', /API port 127\.0\.0\.1:\d+ is not available \(EADDRINUSE\)/);
  t.deepEqual(other.seen, [], 'the supervisor never took the other process\'s answers for its own');

  const restarted = once(supervisor, 'restart', { signal: AbortSignal.timeout(60_000) });
  await other.close();
  const [info] = await restarted;
  t.true(alive(info.pid), 'the announced pid is a live process');
  t.is(supervisor.pid, info.pid);
  t.true('/' in (await client.getRoutes()), 'the API that answers is a real CHP\'s (its default route)');
  t.is((await getJson(`${supervisor.publicUrl}/hub/`)).body.name, 'hub');
});

test('with its ports left to it, a supervisor whose API port was taken while the proxy was down moves to a fresh one', async (t) => {
  const { supervisor } = await startProxy({ restartBackoffMs: 50, maxBackoffMs: 100 });
  const before = { api: supervisor.apiUrl, public: supervisor.publicUrl };
  t.notRegex(before.api, /:0$/, 'the port the child got is known once started');
  const taken = new Promise<Awaited<ReturnType<typeof foreignApi>>>((resolve, reject) => {
    supervisor.once('exit', () => foreignApi(Number(new URL(before.api).port)).then(resolve, reject));
  });
  const restarted = once(supervisor, 'restart', { signal: AbortSignal.timeout(60_000) });
  process.kill(supervisor.pid!, 'SIGKILL');
  const [info] = await restarted;
  const other = await taken;
  t.not(info.apiUrl, before.api, 'a fresh API port');
  t.is(supervisor.apiUrl, info.apiUrl);
  t.is(supervisor.publicUrl, before.public, 'the public port, still free, is kept');
  t.true('/' in (await new ChpClient({ apiUrl: info.apiUrl, authToken: TOKEN }).getRoutes()), 'its own CHP answers there');
  t.deepEqual(other.seen, [], 'the process on the old port was never asked');
  t.like(supervisor.state, { state: 'running', failures: 0, restarts: 1 });
});

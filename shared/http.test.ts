import test from 'ava';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { promisify } from 'node:util';
import { freePort } from '../test/helpers/net.ts';
import { request } from './http.ts';

const run = promisify(execFile);

/** A loopback server that counts the connections it accepted. */
async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; connections: () => number; server: Server }> {
  const server = createServer(handler);
  let connections = 0;
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => connections, server };
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

test('calls reuse one kept-alive connection and carry method, headers and body', async (t) => {
  const seen: string[] = [];
  const { url, connections, server } = await serve((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization} ${body}`);
      res.writeHead(201, { 'Content-Type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  t.teardown(() => close(server));
  for (let i = 0; i < 3; i++) {
    const reply = await request(`${url}/api/routes/user/a`, { method: 'POST', headers: { Authorization: 'token t', 'Content-Type': 'application/json' }, body: `{"n":${i}}`, timeoutMs: 5000 });
    t.like(reply, { status: 201, statusText: 'Created', text: '{"ok":true}' });
  }
  t.deepEqual(seen, [0, 1, 2].map((i) => `POST /api/routes/user/a token t {"n":${i}}`));
  t.is(connections(), 1);
});

test('a kept-alive connection the server dropped is replaced, and the call answered', async (t) => {
  const served = new WeakMap<Socket, number>();
  const { url, connections, server } = await serve((req, res) => {
    const n = (served.get(req.socket) ?? 0) + 1;
    served.set(req.socket, n);
    // The second request on a connection finds it closed (as when the server's keep-alive timeout hit it).
    if (n === 2) return req.socket.destroy();
    res.end(`answered on request ${n} of its connection`);
  });
  t.teardown(() => close(server));
  t.is((await request(url, { timeoutMs: 5000 })).text, 'answered on request 1 of its connection');
  t.is((await request(url, { timeoutMs: 5000 })).text, 'answered on request 1 of its connection');
  t.is(connections(), 2);
});

test('no answer in time is a TimeoutError; nobody listening is ECONNREFUSED', async (t) => {
  const { url, server } = await serve(() => {});
  t.teardown(() => close(server));
  const late = await t.throwsAsync(request(url, { timeoutMs: 100 }));
  t.is(late?.name, 'TimeoutError');
  const refused = await t.throwsAsync(request(`http://127.0.0.1:${await freePort()}/`, { timeoutMs: 2000 }));
  t.is((refused as NodeJS.ErrnoException | undefined)?.code, 'ECONNREFUSED');
});

test('the proxy client and the activity reader do not use fetch (its first use costs ~20 MiB: web streams, a WebAssembly HTTP parser)', async (t) => {
  const { url, server } = await serve((req, res) => {
    res.writeHead(req.method === 'POST' ? 201 : 200, { 'Content-Type': 'application/json' });
    res.end(req.url!.startsWith('/api/routes') ? '{}' : '{"last_activity":"2026-01-01T00:00:00Z","kernels":0,"connections":0}');
  });
  t.teardown(() => close(server));
  const script = `
    globalThis.fetch = () => { throw new Error('fetch was used'); };
    const { ChpClient } = await import(${JSON.stringify(new URL('../proxy/client.ts', import.meta.url).href)});
    const { fetchActivity } = await import(${JSON.stringify(new URL('../culler/activity.ts', import.meta.url).href)});
    const proxy = new ChpClient({ apiUrl: process.argv[1], authToken: 'secret-token-0123456789' });
    await proxy.addRoute('/user/a', 'http://127.0.0.1:1');
    const routes = await proxy.getRoutes();
    const activity = await fetchActivity({ url: process.argv[1], baseUrl: '/user/a/', jupyterToken: 't' });
    console.log(JSON.stringify({ routes, activity }));
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, url]);
  t.deepEqual(JSON.parse(stdout), { routes: {}, activity: { lastActivity: '2026-01-01T00:00:00.000Z', kernels: 0, busyKernels: 0, connections: 0 } });
});

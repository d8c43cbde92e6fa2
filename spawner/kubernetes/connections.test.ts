import test from 'ava';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { readFile, mkdtemp, rm, utimes } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeClusterTls, type ClusterTls } from '../local/tls.ts';
import { makeApiClient, PooledAuthentication } from './connections.ts';

/** An HTTPS server that answers every request with an empty NamespaceList and counts TLS handshakes. */
async function fakeApiServer(tls: ClusterTls): Promise<{ server: Server; url: string; handshakes: () => number; auth: string[] }> {
  let handshakes = 0;
  const auth: string[] = [];
  const server = createServer({ cert: await readFile(tls.cert), key: await readFile(tls.key) }, (req, res) => {
    auth.push(req.headers.authorization ?? '');
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ apiVersion: 'v1', kind: 'NamespaceList', metadata: {}, items: [] }));
  });
  server.on('secureConnection', () => handshakes++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, handshakes: () => handshakes, auth };
}

function kubeConfig(url: string, caFile: string, token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: url, caFile }],
    users: [{ name: 'u', token }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

async function setUp(t: { teardown: (fn: () => Promise<void>) => void }) {
  const dir = await mkdtemp(join(tmpdir(), 'clusterhub-connections-'));
  const tls = await makeClusterTls(dir, 'api');
  const api = await fakeApiServer(tls);
  const kc = kubeConfig(api.url, tls.ca, 'secret-token');
  const pool = new PooledAuthentication(kc);
  const core = makeApiClient(kc, pool, CoreV1Api);
  t.teardown(async () => {
    await pool.close();
    api.server.closeAllConnections();
    await new Promise((resolve) => api.server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });
  return { tls, api, kc, pool, core };
}

// A request can start a moment before the previous one's connection is back in the pool, so
// sequential requests may use two connections; what matters is that the count stays flat.

test('requests one after another share kept connections (the kubeconfig alone opens one per request)', async (t) => {
  const { api, kc, core } = await setUp(t);
  for (let i = 0; i < 30; i++) await core.listNamespace();
  t.true(api.handshakes() <= 2, `${api.handshakes()} TLS handshakes for 30 requests`);
  t.deepEqual(new Set(api.auth), new Set(['Bearer secret-token']), 'every request is still authenticated');

  // What the pool replaces: the KubeConfig's own client handshakes for each request.
  const before = api.handshakes();
  const plain = kc.makeApiClient(CoreV1Api);
  for (let i = 0; i < 3; i++) await plain.listNamespace();
  t.is(api.handshakes() - before, 3);
});

test('bursts of concurrent requests reuse the connections of the bursts before', async (t) => {
  const { api, core } = await setUp(t);
  for (let burst = 0; burst < 5; burst++) await Promise.all(Array.from({ length: 8 }, () => core.listNamespace()));
  t.true(api.handshakes() <= 16, `${api.handshakes()} TLS handshakes for 5 bursts of 8 requests`);
});

test('a rewritten CA file gets a new pool; requests keep working', async (t) => {
  const { tls, api, core } = await setUp(t);
  for (let i = 0; i < 5; i++) await core.listNamespace();
  const before = api.handshakes();
  const later = new Date(Date.now() + 60_000);
  await utimes(tls.ca, later, later);
  await core.listNamespace();
  t.true(api.handshakes() > before, 'the first request after the change opened a new connection');
  for (let i = 0; i < 10; i++) await core.listNamespace();
  t.true(api.handshakes() <= before + 2, 'and the new pool is kept');
});

test('after close, requests still work, each on a connection of its own', async (t) => {
  const { api, pool, core } = await setUp(t);
  await core.listNamespace();
  await pool.close();
  await core.listNamespace();
  await core.listNamespace();
  t.is(api.handshakes(), 3);
});

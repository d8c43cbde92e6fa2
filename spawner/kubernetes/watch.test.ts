/**
 * The shared informers' restart: client-node gives up on a watch that fails with anything
 * but 410, so ClusterWatch must start it again. The real API server cannot be made to fail
 * on cue, so a loopback HTTP server speaks the list/watch protocol and fails the first watch.
 */
import test from 'ava';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { configSchema } from '../../config/schema.ts';
import { silentLogger } from '../../shared/log.ts';
import { ClusterWatch } from './watch.ts';

test('a pod watch that fails is restarted and the change still arrives', async (t) => {
  let podWatches = 0;
  const streams: ServerResponse[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const kind = url.pathname.split('/').at(-1);
    if (url.searchParams.get('watch') !== 'true') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ kind: 'List', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items: [] }));
      return;
    }
    if (kind === 'pods' && ++podWatches === 1) {
      res.writeHead(500, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', code: 500, message: 'etcd hiccup' }));
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    streams.push(res);
    if (kind === 'pods') {
      const pod = { kind: 'Pod', apiVersion: 'v1', metadata: { name: 'scheduler-x', namespace: 'pfx-alice', resourceVersion: '2', labels: { 'app.kubernetes.io/managed-by': 'clusterhub' } } };
      res.write(`${JSON.stringify({ type: 'ADDED', object: pod })}\n`);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of streams) s.destroy();
    server.closeAllConnections();
    server.close(() => resolve());
  }));

  const kc = new KubeConfig();
  kc.loadFromOptions({
    // Plain HTTP is only accepted with skipTLSVerify (there is no TLS to verify).
    clusters: [{ name: 'fake', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'x' }],
    contexts: [{ name: 'c', cluster: 'fake', user: 'u' }],
    currentContext: 'c',
  });
  const config = configSchema.parse({ kubernetes: { namespacePrefix: 'pfx' } }).kubernetes;
  const watch = new ClusterWatch({ kubeConfig: kc, core: kc.makeApiClient(CoreV1Api), config, log: silentLogger(), restartDelayMs: 10 });
  t.teardown(() => watch.close());

  const changed = new Promise<void>((resolve) => watch.subscribe('pfx-alice', resolve));
  await watch.start();
  await changed;
  t.is(podWatches, 2);
  t.deepEqual(watch.pods('pfx-alice').map((p) => p.metadata?.name), ['scheduler-x']);
});

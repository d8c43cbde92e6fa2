/**
 * The API server as in-cluster clients on the real node reach it (the `kubernetes`
 * Service, 10.96.0.1:443, from KUBERNETES_SERVICE_HOST): a TCP relay on the node's bridge
 * address to the API server on loopback, and an EndpointSlice of that Service naming the
 * relay (the plane runs without the API server's endpoint reconciler). TLS passes through,
 * so pods check the API server's own certificate (it names 10.96.0.1) against their
 * ServiceAccount's CA, and authenticate with their own token.
 */
import { DiscoveryV1Api, type KubeConfig } from '@kubernetes/client-node';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { NODE_NET } from './host.ts';

const SLICE = 'kubernetes-real-node';

/** What {@link exposeApiServerToPods} set up; `close` removes it. */
export interface ApiRelay {
  /** The relay's `host:port` on the bridge. */
  address: string;
  close(): Promise<void>;
}

/** Makes the API server at `server` (https://127.0.0.1:PORT) reachable from pods as `kubernetes.default`. */
export async function exposeApiServerToPods(kc: KubeConfig, server: string): Promise<ApiRelay> {
  const target = new URL(server);
  const sockets = new Set<Socket>();
  const relay = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      // Either side failing ends both: a half-open relay would hang the client.
      s.once('error', () => { client.destroy(); upstream.destroy(); });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    relay.once('error', reject);
    relay.listen({ host: NODE_NET.gateway, port: 0 }, resolve);
  });
  const port = (relay.address() as AddressInfo).port;
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  const close = async () => {
    await discovery.deleteNamespacedEndpointSlice({ name: SLICE, namespace: 'default' }).catch(() => {});
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => relay.close(() => resolve()));
  };
  try {
    await discovery.createNamespacedEndpointSlice({
      namespace: 'default',
      body: {
        metadata: {
          name: SLICE,
          // kube-proxy finds a Service's slices by this label; the managed-by keeps the controller off it.
          labels: { 'kubernetes.io/service-name': 'kubernetes', 'endpointslice.kubernetes.io/managed-by': 'clusterhub-test-plane' },
        },
        addressType: 'IPv4',
        endpoints: [{ addresses: [NODE_NET.gateway], conditions: { ready: true } }],
        ports: [{ name: 'https', port, protocol: 'TCP' }],
      },
    });
  } catch (error) {
    await close();
    throw error;
  }
  return { address: `${NODE_NET.gateway}:${port}`, close };
}

/**
 * One pool of kept-alive connections to the API server for all of the backend's requests.
 *
 * client-node 2.0's KubeConfig authenticates each request by building a new undici Agent for
 * it (`applySecurityAuthentication` → `createDispatcher`), so every request opened a
 * connection of its own: a TLS handshake on the hub and on the API server each time. In a
 * CPU profile of 100 concurrent launches TLS set-up was the hub's largest cost after GC, and
 * the API server paid the other half of every handshake on the same two cores.
 *
 * {@link PooledAuthentication} still lets the KubeConfig authenticate every request (tokens
 * rotate, exec plugins and auth providers refresh), then hands the request one shared Agent
 * for as long as the TLS settings it was built from stay the same, as client-go keeps one
 * transport per TLS configuration. Client certificates, keys and CAs read from files are
 * compared by size and modification time, so a rotated file gets a new pool; the old one
 * closes once its requests are done.
 */
import { statSync } from 'node:fs';
import {
  ServerConfiguration, createConfiguration, setHeaderMiddleware,
  type ApiConstructor, type ApiType, type KubeConfig, type RequestContext, type SecurityAuthentication,
} from '@kubernetes/client-node';

type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>> & { close?: () => Promise<void> };

/** A file's identity for the fingerprint: its path, size and modification time (or that it is missing). */
function fileStamp(path: string | undefined): string {
  if (!path) return '';
  try {
    const st = statSync(path);
    return `${path}:${st.size}:${st.mtimeMs}`;
  } catch {
    return `${path}:missing`;
  }
}

/** Wraps a KubeConfig's authentication so its requests share kept-alive connections. */
export class PooledAuthentication implements SecurityAuthentication {
  readonly #kc: KubeConfig;
  #pool: { key: string; dispatcher: Dispatcher } | undefined;
  #closed = false;

  constructor(kc: KubeConfig) {
    this.#kc = kc;
  }

  getName(): string {
    return 'kubeconfig authentication, pooled connections';
  }

  async applySecurityAuthentication(context: RequestContext): Promise<void> {
    // Headers and a fresh Agent, exactly as the KubeConfig alone would (the Agent opens
    // nothing until it is used, and it is not used when the pool's one is kept).
    await this.#kc.applySecurityAuthentication(context);
    const fresh = context.getDispatcher() as Dispatcher | undefined;
    const key = this.#tlsKey();
    // Without a dispatcher (plain http) fetch uses undici's global pool already; an exec
    // plugin can hand out client certificates the kubeconfig does not show: not pooled.
    if (!fresh || key === undefined || this.#closed) return;
    if (this.#pool?.key !== key) {
      const old = this.#pool;
      this.#pool = { key, dispatcher: fresh };
      void old?.dispatcher.close?.().catch(() => undefined);
    }
    context.setDispatcher(this.#pool.dispatcher);
  }

  /** Closes the kept connections (after the requests in flight). */
  async close(): Promise<void> {
    this.#closed = true;
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.dispatcher.close?.().catch(() => undefined);
  }

  /** What the Agent's TLS settings are made from, or undefined when they cannot be told from the kubeconfig. */
  #tlsKey(): string | undefined {
    const cluster = this.#kc.getCurrentCluster();
    const user = this.#kc.getCurrentUser();
    if (user?.exec) return undefined;
    return JSON.stringify([
      cluster?.server, cluster?.proxyUrl, cluster?.skipTLSVerify, cluster?.tlsServerName,
      cluster?.caData, fileStamp(cluster?.caFile),
      user?.name, user?.certData, fileStamp(user?.certFile), user?.keyData, fileStamp(user?.keyFile),
    ]);
  }
}

/** An API client whose requests go through `auth` (what `KubeConfig.makeApiClient` builds, with pooled connections). */
export function makeApiClient<T extends ApiType>(kc: KubeConfig, auth: PooledAuthentication, api: ApiConstructor<T>): T {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  return new api(createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: auth },
    // The API server's audit log and request metrics then name the hub.
    middleware: [setHeaderMiddleware('User-Agent', 'clusterhub')],
  }));
}

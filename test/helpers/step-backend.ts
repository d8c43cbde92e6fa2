/** A backend the manager tests steer, and a manager wired to it and a real configurable-http-proxy. */
import type { ExecutionContext } from 'ava';
import { createMetrics } from '../../hub/metrics.ts';
import { openStore } from '../../hub/store/sqlite.ts';
import { silentLogger } from '../../shared/log.ts';
import { ChpClient } from '../../proxy/client.ts';
import { ChpSupervisor } from '../../proxy/supervisor.ts';
import { SpawnManager } from '../../spawner/manager.ts';
import { testPorts } from './ports.ts';
import { ClusterError, type Backend, type ClusterListing, type ClusterStatus, type ProgressEvent, type StartOptions } from '../../spawner/types.ts';

/** A backend the test steers: each start waits until the test lets it finish. */
export class StepBackend implements Backend {
  readonly kind = 'test';
  readonly running = new Map<string, { workers: number; url: string; token: string }>();
  readonly starts: string[] = [];
  readonly stops: string[] = [];
  readonly gates = new Map<string, PromiseWithResolvers<void>>();
  failWith: string | undefined;
  /** How many more stops fail as an unreachable backend's would. */
  stopFailures = 0;

  gate(user: string): PromiseWithResolvers<void> {
    let gate = this.gates.get(user);
    if (!gate) this.gates.set(user, (gate = Promise.withResolvers<void>()));
    return gate;
  }

  async *start(user: string, options: StartOptions): AsyncIterable<ProgressEvent> {
    this.starts.push(user);
    yield { progress: 20, message: 'scheduler starting' };
    const aborted = new Promise<never>((_, reject) => options.signal?.addEventListener('abort', () => reject(new ClusterError('aborted')), { once: true }));
    await Promise.race([this.gate(user).promise, aborted]);
    if (this.failWith) throw new ClusterError(this.failWith);
    this.running.set(user, { workers: options.workers, url: `http://127.0.0.1:9/${user}`, token: options.jupyterToken });
    yield { progress: 100, message: 'ready', ready: true, url: `http://127.0.0.1:9/${user}` };
  }

  async stop(user: string): Promise<void> {
    this.stops.push(user);
    if (this.stopFailures > 0) {
      this.stopFailures--;
      throw new ClusterError('the backend cannot be reached', 503);
    }
    this.running.delete(user);
  }

  async status(user: string): Promise<ClusterStatus> {
    const c = this.running.get(user);
    return c ? { state: 'running', workers: c.workers } : { state: 'stopped' };
  }

  async scale(user: string, workers: number): Promise<void> {
    const c = this.running.get(user);
    if (!c) throw new ClusterError('not running', 409);
    c.workers = workers;
  }

  async list(): Promise<ClusterListing[]> {
    return [...this.running].map(([user, c]) => ({ user, state: 'running' as const, workers: c.workers, url: c.url, jupyterToken: c.token }));
  }
}

/** Each test gets its own real configurable-http-proxy on free loopback ports. */
export async function setupManager(t: ExecutionContext, options: { concurrency?: number; timeout?: number; queueTimeout?: number; proxyToken?: string } = {}) {
  const [port, apiPort] = await testPorts(2);
  const authToken = 'manager-test-proxy-token-0123456789';
  const chp = new ChpSupervisor({ port: port!, apiPort: apiPort!, defaultTarget: 'http://127.0.0.1:9', authToken });
  await chp.start();
  t.teardown(() => chp.stop());
  const proxy = new ChpClient({ apiUrl: chp.apiUrl, authToken });
  // A wrong token makes the proxy refuse every change, as a misconfigured hub would see it.
  const managerProxy = options.proxyToken ? new ChpClient({ apiUrl: chp.apiUrl, authToken: options.proxyToken }) : proxy;
  const backend = new StepBackend();
  const store = openStore(':memory:');
  const metrics = createMetrics();
  const manager = new SpawnManager({
    backend, proxy: managerProxy, records: store, log: silentLogger(), metrics,
    startTimeoutSeconds: options.timeout ?? 30, queueTimeoutSeconds: options.queueTimeout, concurrency: options.concurrency ?? 4, maxWorkers: 8,
  });
  /** The proxy's `/user/*` routes, path → target. */
  const routes = async () => Object.fromEntries(Object.entries(await proxy.getRoutes()).filter(([path]) => path.startsWith('/user/')).map(([path, r]) => [path, r.target]));
  /** Failed launches by reason, as /hub/metrics shows them. */
  const failures = async () => Object.fromEntries((await (await metrics.registry()).getMetricsAsJSON())
    .find((m) => m.name === 'clusterhub_spawns_failed_total')!.values.map((v) => [v.labels['reason'], v.value]));
  return { backend, proxy, routes, store, manager, failures };
}


/**
 * A backend for tests of the hub's own logic (authorization, routing, API shapes): each
 * "cluster" is a real HTTP server on 127.0.0.1 that says whose it is. The real backends
 * are exercised in test/local-cluster.test.ts and test/kubernetes-backend.test.ts.
 */
import { ClusterError, type Backend, type ClusterListing, type ClusterStatus, type ProgressEvent, type StartOptions } from '../../spawner/types.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startHttpTarget, type HttpTarget } from './net.ts';

/** How a user's "cluster" answers, when not with the default echo (e.g. a page a student serves). */
export type ClusterHandler = (user: string) => (req: IncomingMessage, res: ServerResponse) => void;

export class EchoBackend implements Backend {
  readonly kind = 'echo';
  readonly #handler: ClusterHandler | undefined;
  readonly clusters = new Map<string, { target: HttpTarget; workers: number; token: string }>();
  /** When set, the next start fails with this reason. */
  failNext: string | undefined;
  /** When set, starts wait for this promise before becoming ready. */
  hold: Promise<void> | undefined;

  constructor(options: { handler?: ClusterHandler } = {}) {
    this.#handler = options.handler;
  }

  async *start(user: string, options: StartOptions): AsyncIterable<ProgressEvent> {
    yield { progress: 10, message: 'starting the echo cluster' };
    if (this.hold) await this.hold;
    if (this.failNext) {
      const reason = this.failNext;
      this.failNext = undefined;
      throw new ClusterError(reason);
    }
    const target = await startHttpTarget(`cluster of ${user}`, this.#handler?.(user));
    this.clusters.set(user, { target, workers: options.workers, token: options.jupyterToken });
    yield { progress: 60, message: 'workers joined' };
    yield { progress: 100, message: 'ready', ready: true, url: target.url };
  }

  async stop(user: string): Promise<void> {
    const cluster = this.clusters.get(user);
    this.clusters.delete(user);
    await cluster?.target.close();
  }

  async status(user: string): Promise<ClusterStatus> {
    const c = this.clusters.get(user);
    return c ? { state: 'running', workers: c.workers } : { state: 'stopped' };
  }

  async scale(user: string, workers: number): Promise<void> {
    const c = this.clusters.get(user);
    if (!c) throw new ClusterError(`${user} has no cluster`, 409);
    c.workers = workers;
  }

  async list(): Promise<ClusterListing[]> {
    return [...this.clusters].map(([user, c]) => ({ user, state: 'running' as const, workers: c.workers, url: c.target.url, jupyterToken: c.token }));
  }

  async close(): Promise<void> {}

  /** Stops every cluster (the test's cleanup: the hub leaves clusters running by design). */
  async destroyAll(): Promise<void> {
    await Promise.all([...this.clusters.keys()].map((u) => this.stop(u)));
  }
}

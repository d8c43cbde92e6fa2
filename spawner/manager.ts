/**
 * The spawn manager: one cluster per user, launches queued with bounded concurrency,
 * progress fanned out to watchers, the route added only when the cluster is ready, and
 * no half state on failure. Backends never see the proxy; this is where they meet.
 */
import { randomBytes } from 'node:crypto';
import { childLogger, type Logger } from '../shared/log.ts';
import { pathRoutes, type RouteScheme } from '../proxy/routes.ts';
import type { Proxy } from '../proxy/types.ts';
import { clusterView, userUrl, type ClusterView } from './cluster-view.ts';
import { removeFailedLaunch, type CleanupContext } from './launch-cleanup.ts';
import { Launch } from './launch-progress.ts';
import { runLaunch, type LaunchRunContext } from './launch-run.ts';
import { noMetrics, runningCount, type ManagerMetrics } from './manager-metrics.ts';
import { LaunchQueue } from './queue.ts';
import type { ClusterRecords, ClusterRow } from './records.ts';
import type { Removal } from './reconcile.ts';
import { ClusterError, type Backend, type ProgressEvent } from './types.ts';
import { checkWorkerCount } from './worker-count.ts';

export interface ManagerOptions {
  backend: Backend;
  proxy: Proxy;
  records: ClusterRecords;
  /** Counted from when the backend begins the launch, not from the queue. */
  startTimeoutSeconds: number;
  /** How long a launch may wait in line for a slot (default: no limit). */
  queueTimeoutSeconds?: number;
  concurrency: number;
  maxWorkers: number;
  log: Logger;
  metrics?: ManagerMetrics;
  /** How user routes are keyed in the proxy (default: by path, `/user/{login}`). */
  routes?: RouteScheme;
  /** The URL of a user's JupyterLab as the browser uses it (default: the path `/user/{login}/`). */
  serverUrl?: (user: string) => string;
}

/** Who stops a cluster and why (events and the admin log show it). */
export interface StopRequest {
  actor: string;
  reason?: string;
  removeWorkspace?: boolean;
  /** Event kind (default `stop`, or `reset` with removeWorkspace). */
  kind?: string;
  /** Ask the backend to remove it even when the hub has no record (a broken leftover). */
  evenWithoutRecord?: boolean;
}

export class SpawnManager {
  readonly backend: Backend;
  /** How this manager keys user routes (route sync and the culler use the same). */
  readonly routes: RouteScheme;
  readonly #serverUrl: (user: string) => string;
  readonly #proxy: Proxy;
  readonly #records: ClusterRecords;
  readonly #log: Logger;
  readonly #metrics: ManagerMetrics;
  readonly #maxWorkers: number;
  /** What each launch is handed (see launch-run.ts). */
  readonly #launchContext: LaunchRunContext;
  /** What the removal of a failed launch is handed (see launch-cleanup.ts). */
  readonly #cleanupContext: CleanupContext;
  readonly #launches = new Map<string, Launch>();
  readonly #positions = new Map<string, () => number>();
  readonly #stopping = new Map<string, Promise<void>>();
  /** The last failure per user, replayed to a progress watcher that comes late. */
  readonly #lastFailure = new Map<string, string>();
  /** Bumped when a launch or stop begins and ends; reconcile leaves users touched since its listing began alone. */
  #generation = 0;
  readonly #touched = new Map<string, number>();
  /** Ends the background retries of cleanups when the hub closes. */
  readonly #closed = new AbortController();

  constructor(options: ManagerOptions) {
    this.backend = options.backend;
    this.routes = options.routes ?? pathRoutes;
    this.#serverUrl = options.serverUrl ?? userUrl;
    this.#proxy = options.proxy;
    this.#records = options.records;
    this.#log = childLogger(options.log, { component: 'spawner' });
    this.#metrics = options.metrics ?? noMetrics;
    this.#maxWorkers = options.maxWorkers;
    const parts = { backend: this.backend, proxy: this.#proxy, records: this.#records, routes: this.routes, log: this.#log };
    this.#launchContext = {
      ...parts, metrics: this.#metrics, queue: new LaunchQueue(options.concurrency),
      startTimeoutMs: options.startTimeoutSeconds * 1000,
      queueTimeoutMs: (options.queueTimeoutSeconds ?? Infinity) * 1000,
      serverUrl: this.#serverUrl,
      queued: (user, position) => this.#positions.set(user, position),
      ended: (user) => {
        this.#touch(user);
        this.#launches.delete(user);
        this.#positions.delete(user);
      },
      cleanup: (user) => removeFailedLaunch(this.#cleanupContext, user),
      failed: (user, message) => this.#lastFailure.set(user, message),
    };
    this.#cleanupContext = { ...parts, closed: this.#closed.signal, retrying: (user, removal) => this.#retrying(user, removal) };
  }

  /** The worker-count rule with `spawn.maxWorkers` (a 422 otherwise), for launch, scale and the pages. */
  checkWorkers(workers: number): void {
    checkWorkerCount(workers, this.#maxWorkers);
  }

  /**
   * Starts a launch, or joins the pending one (a second click). A running cluster is a 409.
   * Returns at once; follow the launch with `progress(user)`.
   */
  launch(user: string, workers: number, actor = user): Launch {
    const pending = this.#launches.get(user);
    if (pending) return pending;
    if (this.#stopping.has(user)) throw new ClusterError(`${user}'s cluster is stopping; launch again when it has stopped`, 409);
    const record = this.#records.getCluster(user);
    if (record?.phase === 'stopping') {
      // A removal that never finished (the backend was unreachable, or a hub died during it).
      void this.stop(user, { actor: 'hub', kind: 'cleanup', reason: 'a removal that had not finished was completed' })
        .catch((err) => this.#log.warn({ user, err }, 'finishing a removal failed'));
      throw new ClusterError(`${user}'s previous cluster is still being removed; launch again when it has stopped`, 409);
    }
    if (record) throw new ClusterError(`${user}'s cluster is already ${record.phase}`, 409);
    this.checkWorkers(workers);

    this.#touch(user);
    const launch = new Launch(user, workers);
    this.#launches.set(user, launch);
    this.#lastFailure.delete(user);
    this.#records.atomically(() => {
      this.#records.putCluster({
        user, backend: this.backend.kind, phase: 'starting', workers,
        jupyterToken: randomBytes(24).toString('base64url'), url: null,
        createdAt: launch.startedAt.toISOString(), readyAt: null, lastActivity: null,
      });
      this.#records.addEvent({ actor, user, kind: 'launch', detail: { workers } });
    });
    this.#metrics.launchStarted();
    void runLaunch(this.#launchContext, launch);
    return launch;
  }

  /** A failed launch's removal goes on in the background: the user counts as stopping until it ends. */
  #retrying(user: string, removal: Promise<void>): void {
    this.#stopping.set(user, removal);
    void removal.then(() => {
      this.#touch(user);
      if (this.#stopping.get(user) === removal) this.#stopping.delete(user);
    });
  }

  /** The pending launch's progress, or one event saying where things stand. */
  async *progress(user: string, signal?: AbortSignal): AsyncGenerator<ProgressEvent> {
    const launch = this.#launches.get(user);
    if (launch) {
      yield* launch.watch(signal);
      return;
    }
    const record = this.#records.getCluster(user);
    if (record?.phase === 'running') {
      yield { progress: 100, message: 'Your cluster is ready', ready: true, url: this.#serverUrl(user) };
    } else {
      const failure = this.#lastFailure.get(user);
      yield { progress: 100, failed: true, message: failure ? `Launch failed: ${failure}` : `${user} has no cluster starting` };
    }
  }

  /**
   * Stops a cluster through the one stop path (user Stop, admin, culler): the route goes
   * first, so nobody reaches a half-stopped cluster. A pending launch is cancelled.
   */
  async stop(user: string, options: StopRequest): Promise<void> {
    const inFlight = this.#stopping.get(user);
    if (inFlight) return inFlight;
    const launch = this.#launches.get(user);
    if (!launch && !this.#records.getCluster(user) && !options.removeWorkspace && !options.evenWithoutRecord) return;
    this.#touch(user);
    const run = (async () => {
      if (launch) {
        launch.controller.abort(new ClusterError(`stopped by ${options.actor}`, 409, 'cancelled'));
        await launch.done;
      }
      if (this.#records.getCluster(user)) this.#records.updateCluster(user, { phase: 'stopping' });
      await this.#proxy.deleteRoute(this.routes.path(user));
      await this.backend.stop(user, { removeWorkspace: options.removeWorkspace });
      this.#records.atomically(() => {
        this.#records.deleteCluster(user);
        this.#records.addEvent({ actor: options.actor, user, kind: options.kind ?? (options.removeWorkspace ? 'reset' : 'stop'), detail: options.reason ? { reason: options.reason } : {} });
      });
      this.#metrics.activeClusters(runningCount(this.#records));
    })();
    this.#stopping.set(user, run);
    try {
      await run;
    } finally {
      this.#touch(user);
      this.#stopping.delete(user);
    }
  }

  /**
   * Carries out a removal reconcile decided, unless the user's cluster was launched or
   * stopped since (then that newer action stands).
   */
  async remove(removal: Removal): Promise<void> {
    if (this.changedSince(removal.user, removal.since)) return;
    await this.stop(removal.user, { actor: 'hub', kind: removal.kind, reason: removal.reason, evenWithoutRecord: true });
  }

  /** Grows with every launch and stop begun (see {@link changedSince}). */
  generation(): number {
    return this.#generation;
  }

  /** True when a launch or stop of `user` began or ended after generation `since`. */
  changedSince(user: string, since: number): boolean {
    return (this.#touched.get(user) ?? -1) > since;
  }

  #touch(user: string): void {
    this.#touched.set(user, ++this.#generation);
  }

  /** Users with a launch or a stop in flight in this process. */
  busyUsers(): string[] {
    return [...new Set([...this.#launches.keys(), ...this.#stopping.keys()])];
  }

  /** Stops every running or pending cluster ("after class"); one failure does not stop the rest. */
  async stopAll(options: { actor: string; reason: string }): Promise<{ stopped: string[]; failed: string[] }> {
    const users = [...new Set([...this.#records.listClusters().map((c) => c.user), ...this.#launches.keys()])];
    const results = await Promise.allSettled(users.map((u) => this.stop(u, options)));
    return {
      stopped: users.filter((_, i) => results[i]!.status === 'fulfilled'),
      failed: users.filter((_, i) => results[i]!.status === 'rejected'),
    };
  }

  /** Changes the worker count of a running cluster. */
  async scale(user: string, workers: number, actor = user): Promise<void> {
    this.checkWorkers(workers);
    const record = this.#records.getCluster(user);
    if (!record || record.phase !== 'running') throw new ClusterError(`${user} has no running cluster to scale`, 409);
    await this.backend.scale(user, workers);
    this.#records.updateCluster(user, { workers });
    this.#records.addEvent({ actor, user, kind: 'scale', detail: { from: record.workers, to: workers } });
  }

  /** What a client may know about the user's cluster right now. */
  view(user: string, known?: { record: ClusterRow | undefined }): ClusterView {
    // A list that already read the rows passes them in: no query per user.
    const record = known ? known.record : this.#records.getCluster(user);
    return clusterView({
      launch: this.#launches.get(user), position: this.#positions.get(user)?.() ?? 0,
      stopping: this.#stopping.has(user), record, url: this.#serverUrl(user),
    });
  }

  /** The reason of the user's last failed launch, if it failed since the hub started. */
  lastFailure(user: string): string | undefined {
    return this.#lastFailure.get(user);
  }

  /** Users with a launch in flight (queued or starting). */
  pendingUsers(): string[] {
    return [...this.#launches.keys()];
  }

  /** The routes that should exist: every running cluster's path → target. */
  wantedRoutes(): Map<string, { target: string; data: Record<string, unknown> }> {
    const wanted = new Map<string, { target: string; data: Record<string, unknown> }>();
    for (const c of this.#records.listClusters()) {
      if (c.phase === 'running' && c.url) wanted.set(this.routes.path(c.user), { target: c.url, data: { user: c.user, cluster: c.backend } });
    }
    return wanted;
  }

  /** Cancels pending launches (they clean up after themselves), waits for them and for stops in flight. */
  async close(): Promise<void> {
    const pending = [...this.#launches.values()];
    for (const launch of pending) launch.controller.abort(new ClusterError('the hub is shutting down', 503, 'cancelled'));
    await Promise.all(pending.map((l) => l.done));
    this.#closed.abort();
    await Promise.allSettled([...this.#stopping.values()]);
  }
}

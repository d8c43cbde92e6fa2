/**
 * The backend's shared view of its clusters: ONE informer for the managed pods, ONE for
 * events and one for the managed namespaces, however many launches are in flight. A
 * launch subscribes to its namespace and re-reads the caches when something changed.
 * client-node's informer stops on errors other than 410 Gone: we restart it with backoff.
 */
import {
  ListWatch, Watch, type CoreV1Api, type CoreV1Event, type KubeConfig, type KubernetesObject, type V1Namespace, type V1Pod,
} from '@kubernetes/client-node';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../../shared/log.ts';
import { instanceSelector, LABEL_MANAGED_BY, MANAGED_BY } from './labels.ts';
import type { KubernetesConfig } from './types.ts';

export interface ClusterWatchOptions {
  kubeConfig: KubeConfig;
  core: CoreV1Api;
  config: KubernetesConfig;
  log: Logger;
  /** First restart delay after an informer error (default 500 ms; doubles up to 5 s, so an API server outage ends quickly). */
  restartDelayMs?: number;
}

/** Fires when anything in a namespace changed (pods, events, the namespace itself). */
export type ChangeListener = () => void;

/** The three shared informers and the per-namespace fan-out of their changes. */
export class ClusterWatch {
  readonly #opts: ClusterWatchOptions;
  readonly #pods: ListWatch<V1Pod>;
  readonly #events: ListWatch<CoreV1Event>;
  readonly #namespaces: ListWatch<V1Namespace>;
  readonly #watch: ClosableWatch;
  readonly #listeners = new Map<string, Set<ChangeListener>>();
  readonly #prefix: string;
  #started: Promise<void> | undefined;
  readonly #closed = new AbortController();
  readonly #restarting = new Set<string>();
  /** Informers that listed once: only those are restarted in the background. */
  readonly #live = new Set<string>();
  /** Why informers are down right now (they are being restarted), by name. */
  readonly #failing = new Map<string, unknown>();

  constructor(opts: ClusterWatchOptions) {
    this.#opts = opts;
    this.#prefix = `${opts.config.namespacePrefix}-`;
    const { core, config } = opts;
    const watch = new ClosableWatch(opts.kubeConfig);
    this.#watch = watch;
    const pods = `${LABEL_MANAGED_BY}=${MANAGED_BY}`;
    const nsSelector = instanceSelector(config);
    this.#pods = new ListWatch('/api/v1/pods', watch, () => core.listPodForAllNamespaces({ labelSelector: pods }), false, pods);
    // Events cannot be selected by namespace prefix on the server: filtered here.
    this.#events = new ListWatch('/api/v1/events', watch, () => core.listEventForAllNamespaces(), false);
    this.#namespaces = new ListWatch('/api/v1/namespaces', watch, () => core.listNamespace({ labelSelector: nsSelector }), false, nsSelector);
    this.#wire('pods', this.#pods, (o) => o.metadata?.namespace);
    this.#wire('events', this.#events, (o) => o.metadata?.namespace);
    this.#wire('namespaces', this.#namespaces, (o) => o.metadata?.name);
  }

  /** Starts the informers once; resolves when each has listed (its cache is complete). */
  start(): Promise<void> {
    this.#started ??= Promise.all([
      this.#startOne('pods', this.#pods),
      this.#startOne('events', this.#events),
      this.#startOne('namespaces', this.#namespaces),
    ]).then(() => {});
    return this.#started;
  }

  /** Calls `listener` after every change in `namespace`; returns the unsubscribe function. */
  subscribe(namespace: string, listener: ChangeListener): () => void {
    let set = this.#listeners.get(namespace);
    if (!set) this.#listeners.set(namespace, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.#listeners.get(namespace) === set) this.#listeners.delete(namespace);
    };
  }

  /** Managed pods in `namespace`, from the cache. */
  pods(namespace: string): V1Pod[] {
    return [...this.#pods.list(namespace)];
  }

  /** Events in `namespace`, from the cache. */
  events(namespace: string): CoreV1Event[] {
    return [...this.#events.list(namespace)];
  }

  /** The namespace if it is one of this instance's (labelled), from the cache. */
  namespace(name: string): V1Namespace | undefined {
    return this.#namespaces.get(name);
  }

  /** Every namespace of this instance, from the cache. */
  namespaces(): V1Namespace[] {
    return [...this.#namespaces.list()];
  }

  /** The error of an informer that is down and being restarted, if any: a launch waiting on it says why. */
  failure(): unknown {
    return this.#failing.values().next().value;
  }

  /** Stops the informers (idempotent). */
  async close(): Promise<void> {
    this.#closed.abort();
    this.#watch.close();
    await Promise.all([this.#pods.stop(), this.#events.stop(), this.#namespaces.stop()]);
  }

  #wire<T extends KubernetesObject>(name: string, informer: ListWatch<T>, key: (o: T) => string | undefined): void {
    const notify = (obj: T) => {
      const ns = key(obj);
      if (!ns || !ns.startsWith(this.#prefix)) return;
      for (const listener of [...(this.#listeners.get(ns) ?? [])]) listener();
    };
    informer.on('add', notify);
    informer.on('update', notify);
    informer.on('delete', notify);
    informer.on('error', (err) => void this.#restart(name, informer, err));
  }

  async #startOne<T extends KubernetesObject>(name: string, informer: ListWatch<T>): Promise<void> {
    const failed = await startInformer(informer);
    // Only a failed first list fails start() (the cache would be empty); a watch that fails
    // after it is restarted in the background like any later failure.
    if (failed !== undefined && !informer.latestResourceVersion()) {
      this.#started = undefined;
      throw failed;
    }
    this.#live.add(name);
    this.#opts.log.debug({ informer: name }, 'informer synced');
    if (failed !== undefined) void this.#restart(name, informer, failed);
  }

  /** Restarts a stopped informer with exponential backoff until it lists and watches again. */
  async #restart<T extends KubernetesObject>(name: string, informer: ListWatch<T>, err: unknown): Promise<void> {
    if (this.#closed.signal.aborted || this.#restarting.has(name) || !this.#live.has(name)) return;
    this.#restarting.add(name);
    this.#failing.set(name, err);
    let wait = this.#opts.restartDelayMs ?? 500;
    try {
      for (;;) {
        this.#opts.log.warn({ informer: name, err, retryInMs: wait }, 'informer stopped; restarting');
        await delay(wait, undefined, { signal: this.#closed.signal });
        const failed = await startInformer(informer);
        if (failed === undefined) return;
        err = failed;
        this.#failing.set(name, err);
        wait = Math.min(wait * 2, 5_000);
      }
    } catch {
      // Aborted by close().
    } finally {
      this.#restarting.delete(name);
      this.#failing.delete(name);
    }
  }
}

/** Starts an informer; resolves with the first error it reported meanwhile (undefined: none). */
async function startInformer<T extends KubernetesObject>(informer: ListWatch<T>): Promise<unknown> {
  let failed: unknown;
  const onError = (err: unknown) => (failed ??= err);
  informer.on('error', onError);
  try {
    await informer.start();
  } finally {
    informer.off('error', onError);
  }
  return failed;
}

/**
 * client-node's ListWatch.stop() cannot abort a watch whose response has not arrived yet
 * (the request handle is set only afterwards), which leaves a connection open after close.
 * This Watch remembers its connections and aborts late ones.
 */
class ClosableWatch extends Watch {
  #closed = false;
  readonly #open = new Set<AbortController>();

  override async watch(...args: Parameters<Watch['watch']>): Promise<AbortController> {
    const [path, query, callback, done] = args;
    let controller: AbortController | undefined;
    const finished = (err: unknown) => {
      if (controller) this.#open.delete(controller);
      done(err);
    };
    controller = await super.watch(path, query, callback, finished);
    if (this.#closed) controller.abort();
    else if (!controller.signal.aborted) this.#open.add(controller);
    return controller;
  }

  /** Aborts every open watch and any that opens later. */
  close(): void {
    this.#closed = true;
    for (const c of this.#open) c.abort();
    this.#open.clear();
  }
}

/**
 * A change counter a loop can wait on without missing a change that happened while it
 * was busy: read `version`, do the work, then `await after(version)`.
 */
export class Changes {
  #version = 0;
  #wakers: Array<() => void> = [];

  get version(): number {
    return this.#version;
  }

  /** Records a change and wakes the waiters. */
  bump = (): void => {
    this.#version++;
    const wakers = this.#wakers;
    this.#wakers = [];
    for (const wake of wakers) wake();
  };

  /** Resolves once the version moved past `version`; rejects with the signal's reason on abort. */
  after(version: number, signal?: AbortSignal): Promise<void> {
    if (this.#version !== version) return Promise.resolve();
    signal?.throwIfAborted();
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal!.reason);
      this.#wakers.push(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

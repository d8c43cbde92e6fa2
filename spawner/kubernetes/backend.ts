/**
 * The Kubernetes backend: one namespace per user holding the student's workspace claim, a
 * scheduler pod, a worker Deployment and their fences (quota, limits, network
 * policy, PodSecurity `restricted`). Stop removes the workloads; reset, the namespace.
 * Waits by watching shared informers; every API call goes through one bounded gate.
 */
import type { KubeConfig, RbacV1Subject, V1Namespace } from '@kubernetes/client-node';
import type { Config } from '../../config/schema.ts';
import type { Logger } from '../../shared/log.ts';
import { ClusterError, type Backend, type ClusterListing, type ClusterStatus, type ProgressEvent, type StartOptions, type StopOptions } from '../types.ts';
import { checkWorkerCount } from '../worker-count.ts';
import { apiFailure } from './api.ts';
import { clusterRef, clusterUrl, createContext, isOurs, loginOf, orUndefined, readNamespace, type BackendContext } from './context.ts';
import { launchCluster } from './namespace-launch.ts';
import { deleteNamespace, removeCluster } from './teardown.ts';
import { instanceSelector, NAMES, TOKEN_KEY } from './labels.ts';
import { clusterStateOf, componentOf } from './progress.ts';

/** The ClusterRole (k8s/rbac/clusterrole.yaml) bound in each new namespace by default. */
export const DEFAULT_CLUSTER_ROLE = 'clusterhub-cluster';

export interface KubernetesBackendOptions {
  config: Config;
  kubeConfig: KubeConfig;
  log: Logger;
  /**
   * ClusterRole granted to the backend inside each namespace it creates (default
   * {@link DEFAULT_CLUSTER_ROLE}); null when its identity already has those rights cluster-wide.
   */
  clusterRole?: string | null;
  /** Who that RoleBinding names; default: whoever the kubeconfig authenticates as. */
  subject?: RbacV1Subject;
  /** Called for every API request sent (retries included), for metrics and benchmarks. */
  onRequest?: (what: string) => void;
}

/** Clusters as namespaces on any conformant Kubernetes. */
export class KubernetesBackend implements Backend {
  readonly kind = 'kubernetes';
  readonly #ctx: BackendContext;
  /** Users whose launch runs in this process: `list()` and `status()` say `starting`. */
  readonly #launching = new Set<string>();

  constructor(options: KubernetesBackendOptions) {
    this.#ctx = createContext({
      config: options.config,
      kubeConfig: options.kubeConfig,
      log: options.log,
      clusterRole: options.clusterRole === undefined ? DEFAULT_CLUSTER_ROLE : options.clusterRole,
      subject: options.subject,
      onRequest: options.onRequest,
    });
  }

  async *start(user: string, options: StartOptions): AsyncGenerator<ProgressEvent> {
    if (this.#launching.has(user)) throw new ClusterError(`${user}'s cluster is already starting`, 409);
    this.#launching.add(user);
    try {
      yield* launchCluster(this.#ctx, user, options);
    } finally {
      this.#launching.delete(user);
    }
  }

  /**
   * Stop (and cull) removes the cluster's workloads and keeps the namespace with the
   * workspace claim (teardown.ts says why it lives there, and when a namespace without work
   * goes whole); a reset (`removeWorkspace`) deletes the namespace, and so the claim, and
   * returns at once (a relaunch waits for it to be gone).
   */
  async stop(user: string, options: StopOptions = {}): Promise<void> {
    const ref = clusterRef(this.#ctx.kube, user);
    // A stop finds the namespace in the informer's cache (a request saved per stop); a reset,
    // which deletes it by uid, and a namespace the cache does not know are read.
    const cached = options.removeWorkspace ? undefined : this.#ctx.watch.namespace(ref.namespace);
    const ns = cached && !cached.metadata?.deletionTimestamp ? cached : await readNamespace(this.#ctx, ref.namespace);
    if (!ns || !isOurs(this.#ctx.kube, ns) || ns.metadata?.deletionTimestamp) return;
    if (options.removeWorkspace) await deleteNamespace(this.#ctx, ref.namespace, ns.metadata?.uid);
    else await removeCluster(this.#ctx, ref, ns.metadata?.uid);
  }

  async status(user: string): Promise<ClusterStatus> {
    const { namespace } = clusterRef(this.#ctx.kube, user);
    const ns = await readNamespace(this.#ctx, namespace);
    if (!ns || !isOurs(this.#ctx.kube, ns) || ns.metadata?.deletionTimestamp) return { state: 'stopped' };
    const { state, workers, readyWorkers, reason } = await this.#describe(ns);
    return { state, ...(workers !== undefined ? { workers } : {}), ...(readyWorkers !== undefined ? { readyWorkers } : {}), ...(reason ? { reason } : {}) };
  }

  async scale(user: string, workers: number): Promise<void> {
    checkWorkerCount(workers, this.#ctx.config.spawn.maxWorkers);
    const { namespace } = clusterRef(this.#ctx.kube, user);
    try {
      // A JSON patch on the scale subresource: `add` also works when replicas is 0 (omitted).
      await this.#ctx.gate.run('patch deployment scale', () => this.#ctx.clients.apps.patchNamespacedDeploymentScale({
        name: NAMES.workers, namespace, body: [{ op: 'add', path: '/spec/replicas', value: workers }],
      }));
    } catch (err) {
      if (apiFailure(err).code === 404) throw new ClusterError(`${user} has no cluster to scale`, 404);
      throw err;
    }
  }

  /**
   * Every cluster of this instance: namespaces not terminating, with what can be read from
   * them. A namespace that holds only a workspace (a stopped cluster) is no cluster, so
   * reconcile never forgets a student's work and the orphan sweep never removes it.
   */
  async list(): Promise<ClusterListing[]> {
    const { clients, gate, kube } = this.#ctx;
    const all = await gate.run('list namespaces', () => clients.core.listNamespace({ labelSelector: instanceSelector(kube) }));
    const live = all.items.filter((ns) => !ns.metadata?.deletionTimestamp && isOurs(kube, ns));
    const listings = await Promise.all(live.map((ns) => this.#describe(ns)));
    return listings.filter((l): l is ClusterListing => l.user !== '' && l.state !== 'stopped');
  }

  async close(): Promise<void> {
    await this.#ctx.watch.close();
    await this.#ctx.connections.close();
  }

  /** One namespace's cluster: the Deployment and Secret read from the API, the pods from the informer. */
  async #describe(ns: V1Namespace): Promise<ClusterListing> {
    const { clients, gate, kube, watch } = this.#ctx;
    const namespace = ns.metadata?.name ?? '';
    const user = loginOf(ns) ?? '';
    await watch.start();
    const created = ns.metadata?.creationTimestamp;
    const createdAt = created ? { createdAt: new Date(created).toISOString() } : {};
    // A launch of this process owns it: nothing to read (a reconcile pass during a class's
    // launch would otherwise cost two requests per namespace and slow every launch).
    if (this.#launching.has(user)) return { user, state: 'starting', readyWorkers: clusterStateOf(watch.pods(namespace)).readyWorkers, ...createdAt };
    let parts;
    try {
      parts = await Promise.all([
        orUndefined(gate.run('get deployment', () => clients.apps.readNamespacedDeployment({ name: NAMES.workers, namespace }))),
        orUndefined(gate.run('get secret', () => clients.core.readNamespacedSecret({ name: NAMES.tokenSecret, namespace }))),
      ]);
    } catch (err) {
      // No RoleBinding (a launch cut short right after the namespace): a broken cluster to remove, not a reason to fail.
      if (apiFailure(err).code !== 403) throw err;
      if (this.#launching.has(user)) return { user, state: 'starting', ...createdAt };
      return { user, state: 'failed', reason: `the hub cannot read namespace ${namespace} (its RoleBinding is missing: the launch did not finish)`, ...createdAt };
    }
    const [workers, secret] = parts;
    const pods = watch.pods(namespace);
    const scheduler = pods.find((p) => p.metadata?.name === NAMES.scheduler && componentOf(p) === 'scheduler' && !p.metadata?.deletionTimestamp);
    const encoded = secret?.data?.[TOKEN_KEY];
    const base: ClusterListing = {
      user,
      state: 'starting',
      ...(workers ? { workers: workers.spec?.replicas ?? 0 } : {}),
      ...(encoded ? { jupyterToken: Buffer.from(encoded, 'base64').toString('utf8') } : {}),
      ...createdAt,
    };
    const observed = clusterStateOf(pods);
    if (this.#launching.has(user)) return { ...base, readyWorkers: observed.readyWorkers };
    // Stopped: the namespace keeps only the workspace (and its fences). A stop deletes the
    // Deployment, the Secret and the pod at once: a scheduler pod still in the informer's
    // cache without the other two is on its way out (the cache hears of it a moment later).
    if (!workers && !secret) return { user, state: 'stopped', ...createdAt };
    // A scheduler pod lost with its node or to an eviction is not brought back: the cluster is failed (and removed).
    const missing = [!scheduler && 'scheduler pod', !workers && 'worker Deployment', !secret && 'token Secret'].filter(Boolean);
    if (missing.length === 1 && !scheduler) {
      return { ...base, state: 'failed', reason: 'the scheduler pod is gone (lost with its node, evicted or deleted); the workspace is kept: launch again', readyWorkers: observed.readyWorkers };
    }
    if (missing.length) {
      return { ...base, state: 'failed', reason: `the launch did not finish (no ${missing.join(', no ')})`, readyWorkers: observed.readyWorkers };
    }
    return {
      ...base,
      state: observed.state,
      readyWorkers: observed.readyWorkers,
      ...(observed.reason ? { reason: observed.reason } : {}),
      ...(observed.state === 'running' ? { url: await clusterUrl(this.#ctx, namespace) } : {}),
    };
  }
}

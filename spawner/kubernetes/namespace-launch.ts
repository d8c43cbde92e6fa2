/**
 * One launch on Kubernetes: wait out a namespace being reset, reuse one that holds the
 * student's workspace, create the objects, then follow the shared informers until the
 * scheduler and every worker are Ready. A failure removes what the launch made (a relaunch's
 * workloads, never its workspace), so nothing runs on and the student can press Launch again.
 */
import { randomBytes } from 'node:crypto';
import { ClusterError, type ProgressEvent, type StartOptions } from '../types.ts';
import { checkWorkerCount } from '../worker-count.ts';
import { apiFailure, isAlreadyExists, isRbacDenial, isRetryable, isUnreachable, unreachableDetail } from './api.ts';
import { clusterRef, clusterUrl, isOurs, readNamespace, type BackendContext } from './context.ts';
import { NAMES } from './labels.ts';
import { renderWorkspaceClaim } from './workspace.ts';
import type { ClusterRef, LaunchSpec } from './types.ts';
import {
  renderLimitRange, renderNamespace, renderNetworkPolicy, renderQuota, renderRoleBinding, renderSchedulerDeployment,
  renderSchedulerService, renderServiceAccount, renderTokenSecret, renderWorkerDeployment,
} from './objects.ts';
import { assessLaunch, launchEvents, launchOf } from './progress.ts';
import { Changes } from './watch.ts';

/** Starts `login`'s cluster; yields progress and ends with the ready event, or throws a ClusterError. */
export async function* launchCluster(ctx: BackendContext, login: string, options: StartOptions): AsyncGenerator<ProgressEvent> {
  const { kube } = ctx;
  checkWorkerCount(options.workers, ctx.config.spawn.maxWorkers);
  const signal = options.signal;
  const ref = clusterRef(kube, login);
  const spec: LaunchSpec = { ...ref, workers: options.workers, baseUrl: options.baseUrl, launchId: randomBytes(6).toString('hex') };
  // The watch is subscribed before anything is created, so no change is missed.
  const changes = new Changes();
  const unsubscribe = ctx.watch.subscribe(ref.namespace, changes.bump);
  let created = false;
  let reused = false;
  try {
    await ctx.gate.run('start informers', () => ctx.watch.start(), { signal });
    let since: Date | undefined;
    for (let first = true; !since; first = false) {
      const previous = await readNamespace(ctx, ref.namespace, signal);
      if (previous && !isOurs(kube, previous)) {
        throw new ClusterError(`namespace ${ref.namespace} exists and is not managed by this clusterhub`, 409);
      }
      if (previous && !previous.metadata?.deletionTimestamp) {
        // A stopped cluster's namespace keeps the workspace claim: launch into it. The hub only
        // starts what it believes stopped, so workloads found here are stale (their token is not the new one).
        await removeWorkloads(ctx, ref.namespace);
        since = new Date();
        reused = true;
        yield { progress: 10, message: 'Your workspace is kept: starting in it' };
        break;
      }
      if (previous) {
        if (first) yield { progress: 2, message: 'Waiting for the previous cluster to finish terminating' };
        await namespaceGone(ctx, ref.namespace, changes, signal);
        continue;
      }
      try {
        const ns = await ctx.gate.run('create namespace', () => ctx.clients.core.createNamespace({ body: renderNamespace(kube, ref) }), { signal });
        since = ns.metadata?.creationTimestamp ? new Date(ns.metadata.creationTimestamp) : new Date();
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
        // Someone (a lagging cache, a second hub) got there first: look again.
      }
    }
    created = true;
    if (!reused) yield { progress: 10, message: `Namespace ${ref.namespace} created` };

    await createObjects(ctx, ref, options.jupyterToken, signal);
    yield { progress: 20, message: 'Quota, limits, network policy, identity and token created' };
    await Promise.all([
      create(ctx, 'service', () => ctx.clients.core.createNamespacedService({ namespace: ref.namespace, body: renderSchedulerService(kube, ref) }), signal),
      create(ctx, 'scheduler deployment', () => ctx.clients.apps.createNamespacedDeployment({ namespace: ref.namespace, body: renderSchedulerDeployment(kube, spec) }), signal),
      create(ctx, 'worker deployment', () => ctx.clients.apps.createNamespacedDeployment({ namespace: ref.namespace, body: renderWorkerDeployment(kube, spec) }), signal),
    ]);
    const plural = options.workers === 1 ? '' : 's';
    yield { progress: 30, message: `Scheduler and ${options.workers} worker${plural} requested` };

    const emitted = new Set<string>();
    let progress = 30;
    for (;;) {
      const version = changes.version;
      const ns = ctx.watch.namespace(ref.namespace);
      if (ns?.metadata?.deletionTimestamp) throw new ClusterError('the cluster was stopped during the launch', 409, 'cancelled');
      const pods = ctx.watch.pods(ref.namespace).filter((p) => launchOf(p) === spec.launchId);
      const events = launchEvents(ctx.watch.events(ref.namespace), pods, since);
      const a = assessLaunch({ pods, events, workers: options.workers });
      for (const step of a.steps) {
        // The event informer may lag the pod informer: a step already overtaken is news no more.
        if (emitted.has(step.message) || step.progress < progress) continue;
        emitted.add(step.message);
        progress = step.progress;
        yield step;
      }
      if (a.failure) throw new ClusterError(a.failure.message, a.failure.status);
      if (a.ready) break;
      await changes.after(version, signal);
    }
    yield { progress: 100, message: 'Cluster ready', ready: true, url: await clusterUrl(ctx, ref.namespace, signal) };
  } catch (err) {
    // A failed first launch leaves nothing (its workspace is still empty); a failed relaunch
    // keeps the namespace and its claim: it must not cost the student their work.
    const cleanup = reused ? removeWorkloads(ctx, ref.namespace) : created ? deleteNamespace(ctx, ref.namespace) : undefined;
    await cleanup?.catch((e) => ctx.log.error({ user: login, err: e }, 'cleanup after a failed launch failed'));
    // Cut short while the informers could not reach the API server: that is the reason to give.
    const trouble = signal?.aborted && !(err instanceof ClusterError && err !== signal.reason) ? ctx.watch.failure() : undefined;
    throw asClusterError(trouble !== undefined && isUnreachable(trouble) ? trouble : err, signal);
  } finally {
    unsubscribe();
  }
}

/** Deletes a namespace (and so everything in it); a missing one is fine. */
export async function deleteNamespace(ctx: BackendContext, name: string, uid?: string): Promise<void> {
  try {
    await ctx.gate.run('delete namespace', () => ctx.clients.core.deleteNamespace({
      name, propagationPolicy: 'Background', ...(uid ? { body: { preconditions: { uid } } } : {}),
    }));
  } catch (err) {
    const f = apiFailure(err);
    if (f.code === 404 || f.code === 409) return;
    throw err;
  }
}

/**
 * What stop and cull delete: the cluster's workloads (scheduler and worker Deployments, and
 * so their pods), its Service and its per-launch Secret (Jupyter token, IPython key). The
 * namespace stays with the workspace claim and the fences (quota, limits, network policy,
 * identity, RoleBinding), which the next launch reuses. Missing objects are fine.
 */
export async function removeWorkloads(ctx: BackendContext, namespace: string): Promise<void> {
  const { apps, core } = ctx.clients;
  const gone = (what: string, fn: () => Promise<unknown>) => ctx.gate.run(`delete ${what}`, fn).then(() => undefined, (err) => {
    if (apiFailure(err).code === 404) return;
    throw err;
  });
  // Background: the Deployment goes at once and the garbage collector takes its pods.
  const propagationPolicy = 'Background';
  await Promise.all([
    gone('deployment', () => apps.deleteNamespacedDeployment({ name: NAMES.scheduler, namespace, propagationPolicy })),
    gone('deployment', () => apps.deleteNamespacedDeployment({ name: NAMES.workers, namespace, propagationPolicy })),
    gone('service', () => core.deleteNamespacedService({ name: NAMES.scheduler, namespace })),
    gone('secret', () => core.deleteNamespacedSecret({ name: NAMES.tokenSecret, namespace })),
  ]);
}

/** Resolves when the namespace no longer exists, by watching (the informer cache, confirmed once by a read). */
async function namespaceGone(ctx: BackendContext, name: string, changes: Changes, signal?: AbortSignal): Promise<void> {
  for (;;) {
    const version = changes.version;
    if (!ctx.watch.namespace(name) && !(await readNamespace(ctx, name, signal))) return;
    await changes.after(version, signal);
  }
}

/** The RoleBinding first (it makes the rest allowed), then the namespace's fixed objects. */
async function createObjects(ctx: BackendContext, ref: ClusterRef, token: string, signal?: AbortSignal): Promise<void> {
  const { kube, clients } = ctx;
  const namespace = ref.namespace;
  // A new IPython Parallel key per launch: it lives only in this namespace's Secret.
  const secrets = { jupyterToken: token, ippKey: randomBytes(32).toString('hex') };
  if (ctx.clusterRole) {
    const subject = await ctx.subject();
    await create(ctx, 'rolebinding', () => clients.rbac.createNamespacedRoleBinding({ namespace, body: renderRoleBinding(kube, ref, ctx.clusterRole!, subject) }), signal);
  }
  await Promise.all([
    create(ctx, 'resourcequota', () => clients.core.createNamespacedResourceQuota({ namespace, body: renderQuota(kube, ref) }), signal),
    create(ctx, 'limitrange', () => clients.core.createNamespacedLimitRange({ namespace, body: renderLimitRange(kube, ref) }), signal),
    create(ctx, 'networkpolicy', () => clients.networking.createNamespacedNetworkPolicy({ namespace, body: renderNetworkPolicy(kube, ref) }), signal),
    create(ctx, 'serviceaccount', () => clients.core.createNamespacedServiceAccount({ namespace, body: renderServiceAccount(kube, ref) }), signal),
    create(ctx, 'secret', () => clients.core.createNamespacedSecret({ namespace, body: renderTokenSecret(kube, ref, secrets) }), signal),
    // Already there when the namespace was reused: the same claim, the same files.
    create(ctx, 'workspace claim', () => clients.core.createNamespacedPersistentVolumeClaim({ namespace, body: renderWorkspaceClaim(kube, ref) }), signal),
  ]);
}

/**
 * Creates one object: RBAC denials are retried briefly (the new RoleBinding reaches the
 * authorizer's cache a moment later); an admission refusal (quota, PodSecurity, limits)
 * becomes a ClusterError with Kubernetes' own words.
 */
async function create(ctx: BackendContext, what: string, fn: () => Promise<unknown>, signal?: AbortSignal): Promise<void> {
  try {
    await ctx.gate.run(`create ${what}`, fn, { signal, retry: (e) => isRetryable(e) || isRbacDenial(e), attempts: 12 });
  } catch (err) {
    if (isAlreadyExists(err)) return;
    const f = apiFailure(err);
    if (f.code === 403 || f.code === 422 || f.code === 400) throw new ClusterError(`Kubernetes refused the ${what}: ${f.message}`, 422, 'refused');
    throw err;
  }
}

function asClusterError(err: unknown, signal?: AbortSignal): Error {
  if (err instanceof ClusterError) return err;
  if (isUnreachable(err)) return new ClusterError(`the cluster's Kubernetes API server is unreachable (${unreachableDetail(err)})`, 503, 'unavailable');
  if (signal?.aborted) return signal.reason instanceof Error ? signal.reason : new ClusterError(String(signal.reason), 409, 'cancelled');
  const f = apiFailure(err);
  return new ClusterError(`the Kubernetes API failed: ${f.message}`, 503);
}

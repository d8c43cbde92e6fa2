/**
 * One launch on Kubernetes: wait out a namespace being reset, reuse one that holds the
 * student's workspace, create the objects, then follow the shared informers until the
 * scheduler and every worker are Ready. A failure removes what the launch made but a bound
 * workspace claim, so nothing runs on and the student can press Launch again.
 */
import { randomBytes } from 'node:crypto';
import { ClusterError, type ProgressEvent, type StartOptions } from '../types.ts';
import { checkWorkerCount } from '../worker-count.ts';
import { apiFailure, isAdmissionCatchingUp, isAlreadyExists, isRbacDenial, isRetryable, isUnreachable, unreachableDetail } from './api.ts';
import { clusterRef, clusterUrl, isOurs, readNamespace, type BackendContext } from './context.ts';
import { removeCluster } from './teardown.ts';
import { renderWorkspaceClaim } from './workspace.ts';
import type { ClusterRef, LaunchSpec } from './types.ts';
import {
  renderLimitRange, renderNamespace, renderNetworkPolicy, renderQuota, renderRoleBinding, renderSchedulerPod,
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
    let waited = false;
    // A first launch is the common case: create straight away, and read what is there only
    // when the create says the namespace exists (a stopped cluster's, one terminating, another's).
    let exists = ctx.watch.namespace(ref.namespace) !== undefined;
    while (!since) {
      if (!exists) {
        try {
          const ns = await ctx.gate.run('create namespace', () => ctx.clients.core.createNamespace({ body: renderNamespace(kube, ref) }), { signal });
          since = ns.metadata?.creationTimestamp ? new Date(ns.metadata.creationTimestamp) : new Date();
          break;
        } catch (err) {
          if (!isAlreadyExists(err)) throw err;
        }
      }
      const previous = await readNamespace(ctx, ref.namespace, signal);
      exists = previous !== undefined;
      if (previous && !isOurs(kube, previous)) {
        throw new ClusterError(`namespace ${ref.namespace} exists and is not managed by this clusterhub`, 409);
      }
      if (previous && !previous.metadata?.deletionTimestamp) {
        // A stopped cluster's namespace: launch into it when it holds the workspace, else it is
        // replaced. The hub only starts what it believes stopped, so workloads found here are
        // stale (their token is not the new one) and go either way.
        if (await removeCluster(ctx, ref, previous.metadata?.uid) === 'namespace') continue;
        reused = true;
        yield { progress: 10, message: 'Your workspace is kept: starting in it' };
        if (ctx.watch.pods(ref.namespace).length) yield { progress: 12, message: 'Waiting for the previous cluster\'s pods to stop' };
        await podsGone(ctx, ref.namespace, changes, signal);
        since = new Date();
        break;
      }
      if (previous) {
        if (!waited) yield { progress: 2, message: 'Waiting for the previous cluster to finish terminating' };
        waited = true;
        await namespaceGone(ctx, ref.namespace, changes, signal);
        exists = false;
      }
      // Gone between the create and the read: create again.
    }
    created = true;
    if (!reused) yield { progress: 10, message: `Namespace ${ref.namespace} created` };

    await createObjects(ctx, ref, options.jupyterToken, signal);
    yield { progress: 20, message: 'Quota, limits, network policy, identity and token created' };
    await Promise.all([
      create(ctx, 'service', () => ctx.clients.core.createNamespacedService({ namespace: ref.namespace, body: renderSchedulerService(kube, ref) }), signal),
      create(ctx, 'scheduler pod', () => ctx.clients.core.createNamespacedPod({ namespace: ref.namespace, body: renderSchedulerPod(kube, spec) }), signal),
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
    // Nothing runs on; a bound workspace claim stays (see removeCluster), so a failure never costs the student their work.
    if (created) await removeCluster(ctx, ref).catch((e) => ctx.log.error({ user: login, err: e }, 'cleanup after a failed launch failed'));
    // Cut short while the informers could not reach the API server: that is the reason to give.
    const trouble = signal?.aborted && !(err instanceof ClusterError && err !== signal.reason) ? ctx.watch.failure() : undefined;
    throw asClusterError(trouble !== undefined && isUnreachable(trouble) ? trouble : err, signal);
  } finally {
    unsubscribe();
  }
}

/** Resolves when the namespace no longer exists, by watching (the informer cache, confirmed once by a read). */
async function namespaceGone(ctx: BackendContext, name: string, changes: Changes, signal?: AbortSignal): Promise<void> {
  for (;;) {
    const version = changes.version;
    if (!ctx.watch.namespace(name) && !(await readNamespace(ctx, name, signal))) return;
    await changes.after(version, signal);
  }
}

/**
 * Resolves when the namespace has no pods left, by watching: a previous cluster's pods still
 * count against the quota and may still hold a ReadWriteOnce workspace on another node.
 */
async function podsGone(ctx: BackendContext, namespace: string, changes: Changes, signal?: AbortSignal): Promise<void> {
  for (;;) {
    const version = changes.version;
    if (ctx.watch.pods(namespace).length === 0) return;
    await changes.after(version, signal);
  }
}

/** The RoleBinding first (it makes the rest allowed), then the namespace's fixed objects. */
async function createObjects(ctx: BackendContext, ref: ClusterRef, token: string, signal?: AbortSignal): Promise<void> {
  const { kube, clients } = ctx;
  const namespace = ref.namespace;
  // A new IPython Parallel key per launch: it lives only in this namespace's Secret.
  const secrets = { jupyterToken: token, ippKey: randomBytes(32).toString('hex') };
  const quota = () => create(ctx, 'resourcequota', () => clients.core.createNamespacedResourceQuota({ namespace, body: renderQuota(kube, ref) }), signal);
  // Already there when the namespace was reused: the same claim, the same files.
  const claim = () => create(ctx, 'workspace claim', () => clients.core.createNamespacedPersistentVolumeClaim({ namespace, body: renderWorkspaceClaim(kube, ref) }), signal);
  const rest = () => [
    create(ctx, 'limitrange', () => clients.core.createNamespacedLimitRange({ namespace, body: renderLimitRange(kube, ref) }), signal),
    create(ctx, 'networkpolicy', () => clients.networking.createNamespacedNetworkPolicy({ namespace, body: renderNetworkPolicy(kube, ref) }), signal),
    create(ctx, 'serviceaccount', () => clients.core.createNamespacedServiceAccount({ namespace, body: renderServiceAccount(kube, ref) }), signal),
    create(ctx, 'secret', () => clients.core.createNamespacedSecret({ namespace, body: renderTokenSecret(kube, ref, secrets) }), signal),
  ];
  if (!ctx.clusterRole) {
    await Promise.all([quota(), claim(), ...rest()]);
    return;
  }
  const subject = await ctx.subject();
  await create(ctx, 'rolebinding', () => clients.rbac.createNamespacedRoleBinding({ namespace, body: renderRoleBinding(kube, ref, ctx.clusterRole!, subject) }), signal);
  // Until the new RoleBinding reaches the authorizer's cache, creates are denied (and retried):
  // two go first, the ones with the longest way to go after them (the quota controller must
  // fill in the quota's usage before any pod is admitted; the claim waits for a volume), and
  // once they pass, the binding is known and the rest cost one request each.
  await Promise.all([quota(), claim()]);
  await Promise.all(rest());
}

/**
 * Creates one object: RBAC denials are retried briefly (the new RoleBinding reaches the
 * authorizer's cache a moment later), and so is the scheduler pod while admission has not
 * caught up with the namespace's new quota and ServiceAccount; an admission refusal (quota,
 * PodSecurity, limits) becomes a ClusterError with Kubernetes' own words.
 */
async function create(ctx: BackendContext, what: string, fn: () => Promise<unknown>, signal?: AbortSignal): Promise<void> {
  try {
    // The RoleBinding made a moment ago reaches the authorizer's cache within milliseconds: retried quickly.
    // Until the quota controller has filled in the new quota's usage, the pod is retried for as
    // long as the launch may take (the ReplicaSet controller would do the same for a Deployment).
    await ctx.gate.run(`create ${what}`, fn, {
      signal, retry: (e) => isRetryable(e) || isRbacDenial(e) || isAdmissionCatchingUp(e), quick: (e) => isRbacDenial(e) || isAdmissionCatchingUp(e),
      attempts: 12, untilAborted: isAdmissionCatchingUp,
    });
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

/**
 * What stop, cull, reset and a failed launch remove on Kubernetes, and what they keep.
 *
 * The student's workspace claim lives in their namespace because a pod can mount only a
 * claim of its own namespace; keeping it elsewhere would mean re-binding volumes across
 * namespaces (cluster-wide rights over PersistentVolumes, and a Delete reclaim policy would
 * lose the data). So the namespace outlives the cluster whenever it holds the student's work.
 */
import { apiFailure, isNotFound, isRbacDenial, isRetryable } from './api.ts';
import type { BackendContext } from './context.ts';
import { NAMES } from './labels.ts';
import { renderRoleBinding } from './objects.ts';
import type { ClusterRef } from './types.ts';

/** Deletes a namespace (and so everything in it, the claim too); a missing one is fine. */
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
 * The cluster's workloads: the scheduler pod, the worker Deployment (and so its pods), the
 * `scheduler` Service and the per-launch token Secret (Jupyter token, IPython key). The
 * claim and the fences (quota, limits, network policy, identity, RoleBinding) stay for the
 * next launch. Missing objects are fine.
 */
export async function removeWorkloads(ctx: BackendContext, namespace: string): Promise<void> {
  const { apps, core } = ctx.clients;
  const gone = (what: string, fn: () => Promise<unknown>) => ctx.gate.run(`delete ${what}`, fn).then(() => undefined, (err) => {
    if (isNotFound(err)) return;
    throw err;
  });
  // Background: the Deployment goes at once and the garbage collector takes its pods.
  const propagationPolicy = 'Background';
  await Promise.all([
    gone('scheduler pod', () => core.deleteNamespacedPod({ name: NAMES.scheduler, namespace })),
    // A hub before the scheduler became a bare pod ran it as a Deployment: a cluster it
    // launched is stopped whole after an upgrade too (one 404 otherwise).
    gone('deployment', () => apps.deleteNamespacedDeployment({ name: NAMES.scheduler, namespace, propagationPolicy })),
    gone('deployment', () => apps.deleteNamespacedDeployment({ name: NAMES.workers, namespace, propagationPolicy })),
    gone('service', () => core.deleteNamespacedService({ name: NAMES.scheduler, namespace })),
    gone('secret', () => core.deleteNamespacedSecret({ name: NAMES.tokenSecret, namespace })),
  ]);
}

/**
 * Stop, cull, a failed launch and the removal of one a hub restart cut short, first launch
 * or not: a namespace whose workspace claim is bound (files may be in it) loses only its
 * workloads. One without a bound claim holds nothing of the student's (the launch never got
 * to its claim, or the claim was never bound, so never mounted) and is deleted whole, so a
 * failure leaves nothing and a corrected storage class applies to the next claim. The same
 * rule in a running hub and after a restart, where nobody can tell a first launch any more.
 */
export async function removeCluster(ctx: BackendContext, ref: ClusterRef, uid?: string): Promise<'workloads' | 'namespace'> {
  // The workloads go either way: deleted while the claim is read, not after.
  const [bound, workloads] = await Promise.allSettled([claimBound(ctx, ref), removeWorkloads(ctx, ref.namespace)]);
  if (bound.status === 'rejected') throw bound.reason;
  if (bound.value) {
    if (workloads.status === 'rejected') throw workloads.reason;
    return 'workloads';
  }
  // Without a bound claim the namespace goes whole (a denial of the workloads' deletion, no RoleBinding, included).
  await deleteNamespace(ctx, ref.namespace, uid);
  return 'namespace';
}

/** True when the namespace's workspace claim exists and is bound. */
async function claimBound(ctx: BackendContext, ref: ClusterRef): Promise<boolean> {
  const read = (retry: (err: unknown) => boolean) => ctx.gate.run('get workspace claim', () =>
    ctx.clients.core.readNamespacedPersistentVolumeClaim({ name: NAMES.workspaceClaim, namespace: ref.namespace }), { retry, attempts: 12 });
  const bound = (claim: { status?: { phase?: string } }) => claim.status?.phase === 'Bound';
  try {
    return bound(await read(isRetryable));
  } catch (err) {
    if (isNotFound(err)) return false;
    if (!isRbacDenial(err) || !(await bindSelf(ctx, ref))) throw err;
  }
  // The RoleBinding was missing (a launch cut short right after the namespace): bound again, look once more.
  try {
    return bound(await read((e) => isRetryable(e) || isRbacDenial(e)));
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/** Binds the backend's in-namespace role; false when that RoleBinding already exists (the denial has another cause). */
async function bindSelf(ctx: BackendContext, ref: ClusterRef): Promise<boolean> {
  if (!ctx.clusterRole) return false;
  const body = renderRoleBinding(ctx.kube, ref, ctx.clusterRole, await ctx.subject());
  try {
    await ctx.gate.run('create rolebinding', () => ctx.clients.rbac.createNamespacedRoleBinding({ namespace: ref.namespace, body }));
    return true;
  } catch (err) {
    if (apiFailure(err).code === 409) return false;
    throw err;
  }
}

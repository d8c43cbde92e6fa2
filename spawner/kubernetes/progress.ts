/**
 * What Kubernetes says about a launch, in a student's words: pure translation of pod
 * status and events into progress steps, failures and cluster states (no I/O).
 */
import type { CoreV1Event, V1Pod } from '@kubernetes/client-node';
import type { ClusterState, ProgressEvent } from '../types.ts';
import { LABEL_COMPONENT, LABEL_LAUNCH } from './labels.ts';

/** Why a launch cannot succeed, with the HTTP status the ClusterError carries. */
export interface Failure {
  message: string;
  status: number;
}

/** Everything known about one launch at one moment. */
export interface LaunchSnapshot {
  /** Pods carrying the launch's label. */
  pods: readonly V1Pod[];
  /** Events of the namespace that concern this launch (see {@link launchEvents}). */
  events: readonly CoreV1Event[];
  workers: number;
}

/** The steps a snapshot shows (in order), a failure if any, and whether the cluster is ready. */
export interface LaunchAssessment {
  steps: ProgressEvent[];
  failure?: Failure;
  ready: boolean;
  readyWorkers: number;
}

/** Container waiting reasons that do not fix themselves. */
const FATAL_WAITING = new Set([
  'ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull',
  'CreateContainerConfigError', 'CreateContainerError', 'CrashLoopBackOff', 'RunContainerError',
]);

/**
 * Emitted while a fresh ResourceQuota has no usage yet: the ReplicaSet controller retries,
 * so it is not a failure.
 */
const TRANSIENT_CREATE = /status unknown for quota/;

/**
 * The scheduler waits for the workspace claim to be bound (a provisioner is making the
 * volume), or for its cache to see a volume just made: it retries by itself, so this is not
 * a failure; the launch timeout still applies.
 */
const TRANSIENT_SCHEDULING = /unbound immediate PersistentVolumeClaims|persistentvolume(?:claim)? "[^"]*" not found/i;

/** `scheduler`, `workers` or undefined for a pod that is not ours. */
export function componentOf(pod: V1Pod): string | undefined {
  return pod.metadata?.labels?.[LABEL_COMPONENT];
}

/** Ready per Kubernetes (for kwok's fake nodes too) and not on its way out. */
export function isPodReady(pod: V1Pod): boolean {
  if (pod.metadata?.deletionTimestamp) return false;
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** A failure visible in the pod's own status: unschedulable, image or start errors, Failed phase. */
export function podFailure(pod: V1Pod): Failure | undefined {
  if (pod.metadata?.deletionTimestamp) return undefined;
  const who = componentOf(pod) === 'scheduler' ? 'the scheduler' : 'a worker';
  const unschedulable = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable');
  if (unschedulable && !TRANSIENT_SCHEDULING.test(unschedulable.message ?? '')) return { message: `${who} cannot be scheduled (Unschedulable): ${unschedulable.message ?? ''}`.trim(), status: 503 };
  for (const cs of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const waiting = cs.state?.waiting;
    if (waiting?.reason && FATAL_WAITING.has(waiting.reason)) {
      return { message: `${who} cannot start (${waiting.reason}): ${waiting.message ?? cs.image ?? ''}`.trim(), status: 503 };
    }
  }
  if (pod.status?.phase === 'Failed') {
    return { message: `${who} failed (${pod.status.reason ?? 'Failed'}): ${pod.status.message ?? ''}`.trim(), status: 503 };
  }
  return undefined;
}

/** A failure announced by an event: FailedScheduling, FailedCreate (quota, limits, admission), a missing storage class, image pulls. */
export function eventFailure(event: CoreV1Event): Failure | undefined {
  const reason = event.reason ?? '';
  const message = event.message ?? '';
  const kind = event.involvedObject?.kind;
  if (reason === 'FailedScheduling' && !TRANSIENT_SCHEDULING.test(message)) return { message: `a pod cannot be scheduled (Unschedulable): ${message}`, status: 503 };
  if (reason === 'FailedCreate' && (kind === 'ReplicaSet' || kind === 'Deployment') && !TRANSIENT_CREATE.test(message)) {
    return { message: `Kubernetes refused to create a pod (FailedCreate): ${message}`, status: 422 };
  }
  // A class that does not exist never provisions (other provisioning failures are retried by the provisioner).
  if (kind === 'PersistentVolumeClaim' && reason === 'ProvisioningFailed' && /storageclass\S* "[^"]*" not found/i.test(message)) {
    return { message: `the workspace volume cannot be made (ProvisioningFailed): ${message}`, status: 503 };
  }
  if (kind === 'Pod' && reason === 'Failed') return { message: `a pod cannot start: ${message}`, status: 503 };
  if (kind === 'Pod' && reason === 'BackOff' && /pulling image|restarting failed container/i.test(message)) {
    return { message: `a pod cannot start (BackOff): ${message}`, status: 503 };
  }
  return undefined;
}

/**
 * The events that concern one launch: those about its pods (by uid), and those about its
 * ReplicaSets, Deployments and workspace claim since the namespace was created (a previous namespace of the
 * same name may still have events in the cache).
 */
export function launchEvents(events: readonly CoreV1Event[], pods: readonly V1Pod[], since: Date): CoreV1Event[] {
  const podUids = new Set(pods.map((p) => p.metadata?.uid).filter(Boolean));
  return events.filter((e) => {
    const kind = e.involvedObject?.kind;
    if (kind === 'Pod') return podUids.has(e.involvedObject.uid);
    return (kind === 'ReplicaSet' || kind === 'Deployment' || kind === 'PersistentVolumeClaim') && eventTime(e) >= since.getTime();
  });
}

/** When an event last happened (the watch gives strings, the list gives Dates). */
export function eventTime(event: CoreV1Event): number {
  const time = event.lastTimestamp ?? event.eventTime ?? event.metadata?.creationTimestamp;
  // Timestamps have second precision: count the whole second as "since".
  return time ? Math.floor(new Date(time as unknown as string).getTime() / 1000) * 1000 + 999 : 0;
}

/** The progress step an event about the scheduler pod stands for. */
export function eventStep(event: CoreV1Event, schedulerPods: ReadonlySet<string>): ProgressEvent | undefined {
  if (event.involvedObject?.kind !== 'Pod' || !schedulerPods.has(event.involvedObject.uid ?? '')) return undefined;
  switch (event.reason) {
    case 'Scheduled': {
      const node = /\bto (\S+)$/.exec(event.message ?? '')?.[1];
      return { progress: 40, message: node ? `Scheduler pod scheduled on ${node}` : 'Scheduler pod scheduled' };
    }
    case 'Pulling': return { progress: 45, message: `Pulling the cluster image: ${event.message ?? ''}`.trim() };
    // The kubelet reports an image it did not need to pull as Pulled too, "already present on machine".
    case 'Pulled': return { progress: 55, message: /already present/.test(event.message ?? '') ? 'Cluster image already present on the node' : 'Cluster image pulled' };
    case 'Started': return { progress: 60, message: 'Scheduler container started' };
    default: return undefined;
  }
}

/** Where a launch stands: the steps so far, the first failure, whether everything is ready. */
export function assessLaunch(s: LaunchSnapshot): LaunchAssessment {
  const live = s.pods.filter((p) => !p.metadata?.deletionTimestamp);
  const schedulers = live.filter((p) => componentOf(p) === 'scheduler');
  const workers = live.filter((p) => componentOf(p) === 'workers');
  const schedulerUids = new Set(schedulers.map((p) => p.metadata?.uid ?? ''));
  const steps: ProgressEvent[] = [];
  for (const e of [...s.events].sort((a, b) => eventTime(a) - eventTime(b))) {
    const step = eventStep(e, schedulerUids);
    if (step) steps.push(step);
  }
  const scheduler = schedulers[0];
  if (scheduler?.spec?.nodeName) steps.push({ progress: 40, message: `Scheduler pod scheduled on ${scheduler.spec.nodeName}` });
  if (scheduler?.status?.phase === 'Running') steps.push({ progress: 65, message: 'Scheduler running; waiting for Jupyter to answer' });
  const schedulerReady = scheduler !== undefined && isPodReady(scheduler);
  if (schedulerReady) steps.push({ progress: 80, message: 'Scheduler ready' });
  const readyWorkers = workers.filter(isPodReady).length;
  // Workers are counted once the scheduler is ready: they often win the race, and progress only goes forward.
  if (s.workers > 0 && schedulerReady) {
    const ready = Math.min(readyWorkers, s.workers);
    steps.push({ progress: 80 + Math.floor((15 * ready) / s.workers), message: `${ready} of ${s.workers} worker${s.workers === 1 ? '' : 's'} ready` });
  }
  const failure = live.map(podFailure).find(Boolean) ?? s.events.map(eventFailure).find(Boolean);
  return { steps, failure, ready: schedulerReady && readyWorkers >= s.workers, readyWorkers };
}

/** What `status()`/`list()` report for an existing namespace, from its pods (any launch). */
export function clusterStateOf(pods: readonly V1Pod[]): { state: ClusterState; readyWorkers: number; reason?: string } {
  const live = pods.filter((p) => !p.metadata?.deletionTimestamp);
  const scheduler = live.find((p) => componentOf(p) === 'scheduler' && isPodReady(p)) ?? live.find((p) => componentOf(p) === 'scheduler');
  const readyWorkers = live.filter((p) => componentOf(p) === 'workers' && isPodReady(p)).length;
  if (scheduler && isPodReady(scheduler)) return { state: 'running', readyWorkers };
  const failure = scheduler ? podFailure(scheduler) : undefined;
  if (failure) return { state: 'failed', readyWorkers, reason: failure.message };
  return { state: 'starting', readyWorkers };
}

/** The launch a pod belongs to. */
export function launchOf(pod: V1Pod): string | undefined {
  return pod.metadata?.labels?.[LABEL_LAUNCH];
}

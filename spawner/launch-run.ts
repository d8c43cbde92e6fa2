/**
 * One launch, from its place in line to ready or failed: the line's own time limit, the start
 * timeout from when the backend begins, the backend's progress, the route once the cluster is
 * ready, and on failure a cleanup before the failure is announced (no half state).
 */
import { childLogger, type Logger } from '../shared/log.ts';
import type { RouteScheme } from '../proxy/routes.ts';
import type { Proxy } from '../proxy/types.ts';
import { userUrl } from './cluster-view.ts';
import type { Launch } from './launch-progress.ts';
import { aborted, queueMessage, throwIfAborted, timeoutMessage } from './launch-limits.ts';
import { runningCount, type ManagerMetrics } from './manager-metrics.ts';
import type { LaunchQueue } from './queue.ts';
import type { ClusterRecords } from './records.ts';
import { ClusterError, type Backend, type ProgressEvent } from './types.ts';

/** What a launch needs from the manager that runs it. */
export interface LaunchRunContext {
  backend: Backend;
  proxy: Proxy;
  records: ClusterRecords;
  routes: RouteScheme;
  metrics: ManagerMetrics;
  log: Logger;
  queue: LaunchQueue;
  startTimeoutMs: number;
  queueTimeoutMs: number;
  /** The URL of the user's JupyterLab as the browser uses it. */
  serverUrl(user: string): string;
  /** The launch waits in line; `position` tells where (for the manager's view). */
  queued(user: string, position: () => number): void;
  /** The launch is over: forget it (called before its last event, so a retry right after starts afresh). */
  ended(user: string): void;
  /** Remove what the failed launch left: route, backend objects, record. */
  cleanup(user: string): Promise<void>;
  /** Remember why it failed, for a progress watcher that comes late. */
  failed(user: string, message: string): void;
}

/** Run `launch` to its end; never rejects (a failure is its last progress event). */
export async function runLaunch(context: LaunchRunContext, launch: Launch): Promise<void> {
  const { user } = launch;
  const log = childLogger(context.log, { user });
  const slot = context.queue.enter((position) => launch.push({ progress: 0, message: `Waiting in line: position ${position}` }));
  context.queued(user, () => slot.position());
  if (slot.position() > 0) launch.push({ progress: 0, message: `Waiting in line: position ${slot.position()}` });
  // Ref'd timers (AbortSignal.timeout's are not): a launch keeps the process alive.
  const line = new AbortController();
  const inLine = setTimeout(() => line.abort(new ClusterError(queueMessage(context.queueTimeoutMs, slot.position()), 503)), Math.min(context.queueTimeoutMs, 2 ** 31 - 1));
  const timer = new AbortController();
  const timeout = timer.signal;
  let deadline: NodeJS.Timeout | undefined;
  const signal = AbortSignal.any([launch.controller.signal, timeout]);
  const finish = (event: ProgressEvent) => {
    context.ended(user);
    launch.push(event);
  };
  const started = performance.now();
  try {
    await Promise.race([slot.ready, aborted(AbortSignal.any([launch.controller.signal, line.signal]))]);
    clearTimeout(inLine);
    // The start timeout runs from here: time spent in line is the queue's own limit.
    deadline = setTimeout(() => timer.abort(new ClusterError('launch timed out', 504)), context.startTimeoutMs);
    launch.push({ progress: 1, message: `Starting your cluster with ${launch.workers} worker${launch.workers === 1 ? '' : 's'}` });
    const record = context.records.getCluster(user)!;
    let target: string | undefined;
    for await (const event of context.backend.start(user, { workers: launch.workers, jupyterToken: record.jupyterToken, baseUrl: userUrl(user), signal })) {
      if (signal.aborted) break;
      if (event.ready) {
        target = event.url;
        break;
      }
      launch.push({ progress: Math.min(event.progress, 99), message: event.message });
    }
    throwIfAborted(signal, timeout, context.startTimeoutMs, launch);
    if (!target) throw new ClusterError('the backend finished without reporting where the cluster is');
    launch.push({ progress: 99, message: 'Adding the route to your cluster' });
    await context.proxy.addRoute(context.routes.path(user), target, { user, cluster: context.backend.kind });
    const readyAt = new Date().toISOString();
    const seconds = (performance.now() - started) / 1000;
    context.records.atomically(() => {
      context.records.updateCluster(user, { phase: 'running', url: target, readyAt, lastActivity: readyAt });
      context.records.addEvent({ actor: 'hub', user, kind: 'ready', detail: { seconds: Math.round(seconds * 10) / 10 } });
    });
    context.metrics.launchSucceeded(seconds);
    context.metrics.activeClusters(runningCount(context.records));
    log.info({ seconds }, 'cluster ready');
    finish({ progress: 100, message: 'Your cluster is ready', ready: true, url: context.serverUrl(user) });
  } catch (err) {
    const message = timeout.aborted ? timeoutMessage(context.startTimeoutMs, launch, err === timeout.reason ? undefined : err) : err instanceof Error ? err.message : String(err);
    log.warn({ reason: message }, 'launch failed; cleaning up');
    await context.cleanup(user);
    context.failed(user, message);
    context.records.addEvent({ actor: 'hub', user, kind: 'launch-failed', detail: { reason: message } });
    // A stop or shutdown says why in the abort; the backend then throws whatever it threw.
    const cause = launch.controller.signal.aborted ? launch.controller.signal.reason : err;
    context.metrics.launchFailed((performance.now() - started) / 1000, timeout.aborted ? 'timeout' : cause instanceof ClusterError ? cause.reason : 'failed');
    finish({ progress: 100, message: `Launch failed: ${message}`, failed: true });
  } finally {
    clearTimeout(inLine);
    clearTimeout(deadline);
    slot.release();
  }
}

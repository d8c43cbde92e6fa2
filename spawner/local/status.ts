/** What a recorded cluster's state is, given which process groups are alive (pure). */
import type { ClusterStatus } from '../types.ts';
import type { ClusterRecord } from './state.ts';

/** JupyterHub `poll` semantics for a cluster this process is not starting right now. */
export function recordStatus(record: ClusterRecord | undefined, alive: (pgid: number) => boolean): ClusterStatus {
  if (!record) return { state: 'stopped' };
  const workers = record.workers.length;
  const dead = record.workers.filter((w) => !alive(w.pgid)).map((w) => `worker-${w.index}`);
  const readyWorkers = workers - dead.length;
  if (record.phase === 'starting') return { state: 'failed', workers, readyWorkers, reason: 'The launch was interrupted (the hub restarted)' };
  if (!record.scheduler || !alive(record.scheduler.pgid)) {
    return { state: 'failed', workers, readyWorkers, reason: 'The scheduler (Jupyter, Dask, Spark, IPython Parallel) stopped unexpectedly' };
  }
  if (dead.length > 0) return { state: 'failed', workers, readyWorkers, reason: `${dead.join(', ')} stopped unexpectedly` };
  return { state: 'running', workers, readyWorkers };
}

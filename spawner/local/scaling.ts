/**
 * Changing the number of workers of a running local cluster: new worker groups that every
 * engine must see joining (or none stay), and a graceful retirement for those that leave.
 */
import type { LaunchContext } from './options.ts';
import { killGroups, signalProcess, waitGroupsGone } from './processes.ts';
import { StatusWatcher } from './readiness.ts';
import { writeRecord, type ClusterRecord } from './state.ts';
import { startWorkers } from './workers.ts';

/** Start workers up to `target`; resolves once Dask, IPython Parallel and Spark see them all. */
export async function scaleUp(context: LaunchContext, record: ClusterRecord, target: number): Promise<void> {
  const { paths, scheduler } = context.env(record);
  const before = [...record.workers];
  const watcher = new StatusWatcher(context.entrypoint, scheduler, paths.workspace, record.account);
  try {
    // Nothing aborts a scale but its own deadline and its workers' exits.
    const joins = await startWorkers(context, record, target - before.length, { watcher, signal: new AbortController().signal, tripwires: [] });
    await Promise.all(joins.map((join) => join.joined));
    context.options.log.info({ user: record.user, workers: target }, 'local cluster scaled up');
  } catch (err) {
    // No half-scaled cluster: the new workers go, the old ones stay.
    await killGroups(record.workers.slice(before.length).map((worker) => worker.pgid), context.timeouts.stopGraceMs);
    record.workers = before;
    await writeRecord(paths.stateFile, record);
    throw err;
  } finally {
    watcher.close();
  }
}

/** Stop the highest-numbered workers down to `target`, each retiring its Dask worker first. */
export async function scaleDown(context: LaunchContext, record: ClusterRecord, target: number): Promise<void> {
  const paths = context.tenancy.paths(record.user);
  const sorted = [...record.workers].sort((a, b) => a.index - b.index);
  const leaving = sorted.slice(target);
  // SIGTERM to the supervisor alone: it retires its Dask worker (data moves away) first.
  for (const worker of leaving) signalProcess(worker.pgid, 'SIGTERM');
  const pgids = leaving.map((worker) => worker.pgid);
  if (!(await waitGroupsGone(pgids, 30_000 + context.timeouts.stopGraceMs))) await killGroups(pgids, 1000);
  record.workers = sorted.slice(0, target);
  await writeRecord(paths.stateFile, record);
  context.options.log.info({ user: record.user, workers: target }, 'local cluster scaled down');
}

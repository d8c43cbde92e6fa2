/**
 * Changing the number of workers of a running local cluster: new worker groups that every
 * engine must see joining (or none stay), and a graceful retirement for those that leave.
 */
import type { LaunchContext } from './process-launch.ts';
import { killGroups, signalProcess, waitGroupsGone } from './processes.ts';
import { groupTripwire, joined, StatusWatcher, within, type Tripwire } from './readiness.ts';
import { nextWorkerIndices, writeRecord, type ClusterRecord } from './state.ts';

/** Start workers up to `n`; resolves once Dask, IPython Parallel and Spark see them all. */
export async function scaleUp(ctx: LaunchContext, record: ClusterRecord, n: number): Promise<void> {
  const { paths, scheduler } = ctx.env(record);
  const before = [...record.workers];
  const tripwires: Tripwire[] = [];
  for (const index of nextWorkerIndices(record.workers, n - record.workers.length)) {
    tripwires.push(groupTripwire(`worker-${index}`, ctx.spawnWorker(record, index), paths.workerLog(index)));
  }
  await writeRecord(paths.stateFile, record);
  const added = record.workers.slice(before.length);
  const watcher = new StatusWatcher(ctx.entrypoint, scheduler, paths.workspace, record.account);
  const want = joined(record, n);
  const signal = new AbortController().signal;
  try {
    const opts = { timeoutMs: ctx.t.workersMs, signal, tripwires, timeoutLog: paths.workerLog(added[0]!.index) };
    await within('new workers joining', watcher.until((s) => want.dask(s) && want.ipp(s) && (!record.spark || want.spark(s))), opts);
    ctx.o.log.info({ user: record.user, workers: n }, 'local cluster scaled up');
  } catch (err) {
    // No half-scaled cluster: the new workers go, the old ones stay.
    await killGroups(added.map((w) => w.pgid), ctx.t.stopGraceMs);
    record.workers = before;
    await writeRecord(paths.stateFile, record);
    throw err;
  } finally {
    watcher.close();
  }
}

/** Stop the highest-numbered workers down to `n`, each retiring its Dask worker first. */
export async function scaleDown(ctx: LaunchContext, record: ClusterRecord, n: number): Promise<void> {
  const paths = ctx.tenancy.paths(record.user);
  const sorted = [...record.workers].sort((a, b) => a.index - b.index);
  const leaving = sorted.slice(n);
  // SIGTERM to the supervisor alone: it retires its Dask worker (data moves away) first.
  for (const w of leaving) signalProcess(w.pgid, 'SIGTERM');
  const pgids = leaving.map((w) => w.pgid);
  if (!(await waitGroupsGone(pgids, 30_000 + ctx.t.stopGraceMs))) await killGroups(pgids, 1000);
  record.workers = sorted.slice(0, n);
  await writeRecord(paths.stateFile, record);
  ctx.o.log.info({ user: record.user, workers: n }, 'local cluster scaled down');
}

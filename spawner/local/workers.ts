/**
 * Starting workers of a local cluster, the same way at launch and on scale-up: one process
 * group per worker, recorded at once, then a wait per engine until it sees them all.
 */
import { workerEnv } from './env.ts';
import type { LaunchContext } from './options.ts';
import { spawnGroup, type GroupHandle } from './processes.ts';
import { groupTripwire, joined, within, type EngineStatus, type StatusWatcher, type Tripwire } from './readiness.ts';
import { nextWorkerIndices, writeRecord, type ClusterRecord } from './state.ts';

/** One engine's wait for the new workers: its name, its progress message, and the wait. */
export interface WorkerJoin {
  what: string;
  done: string;
  /** Rejects with a WaitFailure on timeout, abort, or when a watched group exits. */
  joined: Promise<EngineStatus>;
}

/** Spawn worker `index` of the cluster and add it to the record (not yet written). */
function spawnWorker(context: LaunchContext, record: ClusterRecord, index: number): GroupHandle {
  const { paths, common } = context.env(record);
  const handle = spawnGroup({
    command: context.entrypoint, args: ['worker'], env: workerEnv(common, index),
    cwd: paths.workspace, logFile: paths.workerLog(index), account: record.account,
  });
  record.workers.push({ index, pgid: handle.pid });
  return handle;
}

/**
 * Start `count` more workers, write the record, and return one wait per engine (Dask,
 * IPython Parallel, Spark when on) for all of the cluster's workers to have joined within
 * `timeouts.workersMs`. A wait fails early when a new worker or a group of `tripwires` exits.
 */
export async function startWorkers(
  context: LaunchContext,
  record: ClusterRecord,
  count: number,
  wait: { watcher: StatusWatcher; signal: AbortSignal; tripwires: readonly Tripwire[] },
): Promise<WorkerJoin[]> {
  const { paths } = context.env(record);
  const tripwires = [...wait.tripwires];
  const indices = nextWorkerIndices(record.workers, count);
  for (const index of indices) {
    tripwires.push(groupTripwire(`worker-${index}`, spawnWorker(context, record, index), paths.workerLog(index)));
  }
  await writeRecord(paths.stateFile, record);
  const total = record.workers.length;
  const want = joined(record, total);
  const plural = total === 1 ? '' : 's';
  const options = { timeoutMs: context.timeouts.workersMs, signal: wait.signal, tripwires, timeoutLog: paths.workerLog(indices[0]!) };
  const join = (what: string, done: string, test: (status: EngineStatus) => boolean): WorkerJoin => {
    const waited = within(what, wait.watcher.until(test), options);
    waited.catch(() => {}); // the caller sees the first failure; the others have nobody to tell
    return { what, done, joined: waited };
  };
  return [
    join('Dask workers joining', `Dask: ${total} worker${plural} joined`, want.dask),
    join('IPython engines joining', `IPython Parallel: ${total * record.enginesPerWorker} engines joined`, want.ipp),
    ...(record.spark ? [join('Spark workers joining', `Spark: ${total} worker${plural} joined`, want.spark)] : []),
  ];
}

/**
 * Workers of a local cluster: one way to start them and wait for every engine to see them
 * (a launch and a scale-up both use `startWorkers`), and the retirement of a scale-down.
 */
import { spawnWorker, clusterEnvs } from './groups.ts';
import type { LocalSettings } from './options.ts';
import { killGroups, signalProcess, waitGroupsGone } from './processes.ts';
import { failureOf, groupTripwire, joined, StatusWatcher, within, type Tripwire } from './readiness.ts';
import { clusterPaths, nextWorkerIndices, writeRecord, type ClusterRecord } from './state.ts';

/** One engine seeing the new workers: what is awaited, the progress message once it has, and the wait. */
export interface WorkerJoin {
  what: string;
  done: string;
  /** Resolves to `what`; rejects with a WaitFailure (timeout, a group died, aborted). */
  joined: Promise<string>;
}

/** What a wait for workers watches: the status probe, the abort signal, and what may die meanwhile. */
export interface WorkerWait {
  watcher: StatusWatcher;
  signal: AbortSignal;
  /** Groups whose exit ends the wait; the new workers are added to it. */
  tripwires: Tripwire[];
}

/**
 * Spawns workers until the record has `total`, writes the record, and returns one wait per
 * engine (Dask, IPython Parallel, Spark when on) for all `total` to have joined.
 */
export async function startWorkers(settings: LocalSettings, record: ClusterRecord, total: number, wait: WorkerWait): Promise<WorkerJoin[]> {
  const paths = clusterPaths(settings.stateDir, record.user);
  const indices = nextWorkerIndices(record.workers, total - record.workers.length);
  for (const index of indices) {
    wait.tripwires.push(groupTripwire(`worker-${index}`, spawnWorker(settings, record, index), paths.workerLog(index)));
  }
  await writeRecord(paths.stateFile, record);
  const want = joined(record, total);
  const plural = total === 1 ? '' : 's';
  const options = { timeoutMs: settings.timeouts.workersMs, signal: wait.signal, tripwires: wait.tripwires, timeoutLog: paths.workerLog(indices[0]!) };
  const join = (what: string, done: string, test: typeof want.dask): WorkerJoin => {
    const waited = within(what, wait.watcher.until(test), options).then(() => what);
    waited.catch(() => {}); // the caller sees the first failure; later ones have nobody to tell
    return { what, done, joined: waited };
  };
  return [
    join('Dask workers joining', `Dask: ${total} worker${plural} joined`, want.dask),
    join('IPython engines joining', `IPython Parallel: ${total * record.enginesPerWorker} engines joined`, want.ipp),
    ...(record.spark ? [join('Spark workers joining', `Spark: ${total} worker${plural} joined`, want.spark)] : []),
  ];
}

/** Scale up to `total` workers; on failure the new workers go and the old ones stay (no half-scaled cluster). */
export async function addWorkers(settings: LocalSettings, record: ClusterRecord, total: number): Promise<void> {
  const { paths, scheduler } = clusterEnvs(settings, record);
  const before = [...record.workers];
  const watcher = new StatusWatcher(settings.entrypoint, scheduler, paths.workspace);
  try {
    const joins = await startWorkers(settings, record, total, { watcher, signal: new AbortController().signal, tripwires: [] });
    await Promise.all(joins.map((j) => j.joined));
    settings.log.info({ user: record.user, workers: total }, 'local cluster scaled up');
  } catch (err) {
    await killGroups(record.workers.slice(before.length).map((w) => w.pgid), settings.timeouts.stopGraceMs);
    record.workers = before;
    await writeRecord(paths.stateFile, record);
    throw await failureOf(err);
  } finally {
    watcher.close();
  }
}

/** Scale down to `total` workers, highest indices first. */
export async function removeWorkers(settings: LocalSettings, record: ClusterRecord, total: number): Promise<void> {
  const paths = clusterPaths(settings.stateDir, record.user);
  const sorted = [...record.workers].sort((a, b) => a.index - b.index);
  const leaving = sorted.slice(total);
  // SIGTERM to the supervisor alone: it retires its Dask worker (data moves away) first.
  for (const w of leaving) signalProcess(w.pgid, 'SIGTERM');
  const pgids = leaving.map((w) => w.pgid);
  if (!(await waitGroupsGone(pgids, 30_000 + settings.timeouts.stopGraceMs))) await killGroups(pgids, 1000);
  record.workers = sorted.slice(0, total);
  await writeRecord(paths.stateFile, record);
  settings.log.info({ user: record.user, workers: total }, 'local cluster scaled down');
}

/**
 * The small JSON file a local cluster leaves in `{stateDir}/clusters/{login}/cluster.json`,
 * so a restarted hub can find, adopt or clean up what is running, and what it says of the
 * cluster's state.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClusterStatus } from '../types.ts';
import type { Account } from './accounts.ts';

export interface WorkerRecord {
  /** 1-based; names the log file and the Dask worker (`worker-{index}`). */
  index: number;
  /** Leader pid = process group id. */
  pgid: number;
}

export interface ClusterRecord {
  version: 1;
  user: string;
  /** `starting` until every engine and worker answered. */
  phase: 'starting' | 'running';
  createdAt: string;
  jupyterToken: string;
  baseUrl: string;
  ports: { jupyter: number; dask: number; dashboard: number; spark: number; sparkUi: number };
  spark: boolean;
  enginesPerWorker: number;
  scheduler?: { pgid: number };
  workers: WorkerRecord[];
  /** The student's OS account the processes run as (when the hub is root). */
  account?: Account;
  /** Spark's `spark.authenticate.secret` for this cluster. */
  sparkSecret?: string;
  /** Dask speaks TLS with the cluster's own CA (files in the runtime dir). */
  tls?: boolean;
}

/**
 * Where the per-user pieces live: the hub's (record, logs) under `{stateDir}/clusters/`,
 * closed to students; the student's (workspace, runtime files) under `workspaces/` and
 * `runtime/` of `studentDir` (stateDir, unless students could not reach it; see tenancy.ts).
 */
export function clusterPaths(stateDir: string, user: string, studentDir = stateDir) {
  const dir = join(stateDir, 'clusters', user);
  return {
    dir,
    stateFile: join(dir, 'cluster.json'),
    runtimeDir: join(studentDir, 'runtime', user),
    schedulerLog: join(dir, 'scheduler.log'),
    workerLog: (index: number) => join(dir, `worker-${index}.log`),
    workspace: join(studentDir, 'workspaces', user),
  };
}

export async function readRecord(stateFile: string): Promise<ClusterRecord | undefined> {
  try {
    const record = JSON.parse(await readFile(stateFile, 'utf8')) as ClusterRecord;
    return record.version === 1 ? record : undefined;
  } catch {
    return undefined;
  }
}

/** Atomic write, readable by the hub's user only (it holds the Jupyter token). */
export async function writeRecord(stateFile: string, record: ClusterRecord): Promise<void> {
  await mkdir(join(stateFile, '..'), { recursive: true });
  const tmp = `${stateFile}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(record, null, 2), { mode: 0o600 });
  await rename(tmp, stateFile);
}

export async function removeRecord(stateFile: string): Promise<void> {
  await rm(stateFile, { force: true });
}

/** Every process group the record owns. */
export function recordGroups(record: ClusterRecord): number[] {
  return [...(record.scheduler ? [record.scheduler.pgid] : []), ...record.workers.map((w) => w.pgid)];
}

/** Lowest unused worker indices, so names stay small across scale-downs. */
export function nextWorkerIndices(workers: WorkerRecord[], count: number): number[] {
  const used = new Set(workers.map((w) => w.index));
  const out: number[] = [];
  for (let i = 1; out.length < count; i++) if (!used.has(i)) out.push(i);
  return out;
}

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

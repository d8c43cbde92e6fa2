/**
 * One launch of a local cluster, step by step: environment check, the scheduler group,
 * each engine answering, the workers, each engine seeing them. Yields progress as things
 * happen; the caller (LocalBackend.start) owns cleanup when it throws.
 */
import { randomBytes } from 'node:crypto';
import { access, constants } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ClusterError } from '../types.ts';
import type { ProgressEvent, StartOptions } from '../types.ts';
import type { LocalBackendOptions, LocalTimeouts } from './options.ts';
import { decideSpark, findJava } from './env.ts';
import { freePorts, groupAlive, spawnGroup, type GroupHandle } from './processes.ts';
import { groupTripwire, joined, StatusWatcher, WaitFailure, within, type EngineStatus } from './readiness.ts';
import { clusterPaths, nextWorkerIndices, readRecord, writeRecord, type ClusterRecord } from './state.ts';
import type { Tenancy } from './tenancy.ts';
import { makeClusterTls } from './tls.ts';

/** What a launch needs from the backend that runs it. */
export interface LaunchContext {
  o: LocalBackendOptions;
  t: LocalTimeouts;
  entrypoint: string;
  tenancy: Tenancy;
  env(record: ClusterRecord): { paths: ReturnType<typeof clusterPaths>; common: Record<string, string>; scheduler: Record<string, string> };
  spawnWorker(record: ClusterRecord, index: number): GroupHandle;
  teardown(user: string, record: ClusterRecord | undefined): Promise<void>;
}

/** Start `user`'s cluster; `box.record` is set as soon as there is something to clean up. */
export async function* launchCluster(ctx: LaunchContext, user: string, options: StartOptions, signal: AbortSignal, box: { record?: ClusterRecord }): AsyncGenerator<ProgressEvent> {
  yield { progress: 2, message: 'Checking the environment' };
  const existing = await readRecord(ctx.tenancy.paths(user).stateFile);
  if (existing && existing.scheduler && groupAlive(existing.scheduler.pgid)) {
    throw new ClusterError(`${user} already has a running cluster`, 409);
  }
  if (existing) await ctx.teardown(user, existing);
  try {
    await access(ctx.entrypoint, constants.X_OK);
    await access(resolve(ctx.o.venvBin, 'python'), constants.X_OK);
  } catch (err) {
    throw new ClusterError(`the local cluster environment is incomplete: ${(err as Error).message}`);
  }
  if (signal.aborted) throw new WaitFailure('launch cancelled');
  let spark: { spark: boolean; note: string };
  try {
    spark = decideSpark(ctx.o.config.spark, findJava(ctx.o.env ?? process.env));
  } catch (err) {
    throw new ClusterError((err as Error).message);
  }
  const record: ClusterRecord = box.record = {
    version: 1, user, phase: 'starting', createdAt: new Date().toISOString(),
    jupyterToken: options.jupyterToken, baseUrl: options.baseUrl,
    ports: { jupyter: 0, dask: 0, dashboard: 0, spark: 0, sparkUi: 0 },
    spark: spark.spark, enginesPerWorker: ctx.o.config.enginesPerWorker, workers: [],
    sparkSecret: randomBytes(24).toString('hex'),
  };
  const account = await ctx.tenancy.prepare(user);
  if (account) record.account = account;
  // Dask's certificates: the student's alone, like every runtime file.
  const tls = await makeClusterTls(ctx.tenancy.paths(user).runtimeDir, user);
  await ctx.tenancy.give([dirname(tls.ca), tls.ca, tls.cert, tls.key], account);
  record.tls = true;
  // Ports last: the shorter the time between picking and binding, the rarer another program takes one.
  const [jupyter, dask, dashboard, sparkPort, sparkUi] = (await (ctx.o.ports ?? freePorts)(5)) as [number, number, number, number, number];
  record.ports = { jupyter, dask, dashboard, spark: sparkPort, sparkUi };
  const { paths, scheduler } = ctx.env(record);
  const n = options.workers;
  const steps = 4 + (spark.spark ? 1 : 0) + (n > 0 ? 3 + (spark.spark ? 1 : 0) : 0);
  let step = 0;
  const progress = (message: string): ProgressEvent => ({ progress: 5 + Math.round((90 * ++step) / steps), message });
  yield { progress: 4, message: spark.note };

  const sched = spawnGroup({ command: ctx.entrypoint, args: ['scheduler'], env: scheduler, cwd: paths.workspace, logFile: paths.schedulerLog, account: record.account });
  record.scheduler = { pgid: sched.pid };
  await writeRecord(paths.stateFile, record);
  yield progress('Scheduler starting: JupyterLab, Dask, IPython Parallel' + (spark.spark ? ', Spark' : ''));

  const watcher = new StatusWatcher(ctx.entrypoint, scheduler, paths.workspace, record.account);
  try {
    const tripwires = [groupTripwire('the scheduler', sched, paths.schedulerLog)];
    const schedulerBy = Date.now() + ctx.t.schedulerMs;
    // Each wait resolves to its progress message; events are yielded as they happen.
    const pending = new Map<string, Promise<string>>();
    const expect = (what: string, done: string, test: (s: EngineStatus) => boolean, by: number, timeoutLog: string) => {
      const waited = within(what, watcher.until(test), { timeoutMs: Math.max(1, by - Date.now()), signal, tripwires, timeoutLog });
      const named = waited.then(() => what);
      named.catch(() => {}); // the loop sees the first failure; later ones have nobody to tell
      pending.set(what, named);
      messages.set(what, done);
    };
    const messages = new Map<string, string>();
    const engines = ['the Dask scheduler', 'the IPython Parallel controller', ...(spark.spark ? ['the Spark master'] : [])];
    expect('JupyterLab answering', 'JupyterLab is answering', (s) => s.jupyter === true, schedulerBy, paths.schedulerLog);
    expect(engines[0]!, 'Dask scheduler ready', (s) => s.dask.up, schedulerBy, paths.schedulerLog);
    expect(engines[1]!, 'IPython Parallel controller ready', (s) => s.ipp.up, schedulerBy, paths.schedulerLog);
    if (spark.spark) expect(engines[2]!, 'Spark master ready', (s) => s.spark?.up === true, schedulerBy, paths.schedulerLog);
    let enginesUp = 0;
    while (pending.size > 0) {
      const what = await Promise.race(pending.values());
      pending.delete(what);
      yield progress(messages.get(what)!);
      if (!engines.includes(what) || ++enginesUp < engines.length || n === 0) continue;
      // Workers start once the engines they connect to are up, while Jupyter may still be loading.
      const indices = nextWorkerIndices(record.workers, n);
      for (const index of indices) {
        const handle = ctx.spawnWorker(record, index);
        tripwires.push(groupTripwire(`worker-${index}`, handle, paths.workerLog(index)));
      }
      await writeRecord(paths.stateFile, record);
      yield progress(`Starting ${n} worker${n === 1 ? '' : 's'}`);
      const want = joined(record, n);
      const workersBy = Date.now() + ctx.t.workersMs;
      const workerLog = paths.workerLog(indices[0]!);
      const plural = n === 1 ? '' : 's';
      expect('Dask workers joining', `Dask: ${n} worker${plural} joined`, want.dask, workersBy, workerLog);
      expect('IPython engines joining', `IPython Parallel: ${n * record.enginesPerWorker} engines joined`, want.ipp, workersBy, workerLog);
      if (spark.spark) expect('Spark workers joining', `Spark: ${n} worker${plural} joined`, want.spark, workersBy, workerLog);
    }
  } finally {
    watcher.close();
  }
}

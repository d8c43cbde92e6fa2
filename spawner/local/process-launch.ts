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
import type { LaunchContext } from './options.ts';
import { decideSpark, findJava } from './env.ts';
import { freePorts, groupAlive, spawnGroup } from './processes.ts';
import { groupTripwire, StatusWatcher, WaitFailure, within, type EngineStatus } from './readiness.ts';
import { readRecord, writeRecord, type ClusterRecord } from './state.ts';
import { makeClusterTls } from './tls.ts';
import { startWorkers } from './workers.ts';

/** Start `user`'s cluster; `box.record` is set as soon as there is something to clean up. */
export async function* launchCluster(context: LaunchContext, user: string, options: StartOptions, signal: AbortSignal, box: { record?: ClusterRecord }): AsyncGenerator<ProgressEvent> {
  yield { progress: 2, message: 'Checking the environment' };
  const existing = await readRecord(context.tenancy.paths(user).stateFile);
  if (existing && existing.scheduler && groupAlive(existing.scheduler.pgid)) {
    throw new ClusterError(`${user} already has a running cluster`, 409);
  }
  if (existing) await context.teardown(user, existing);
  try {
    await access(context.entrypoint, constants.X_OK);
    await access(resolve(context.options.venvBin, 'python'), constants.X_OK);
  } catch (err) {
    throw new ClusterError(`the local cluster environment is incomplete: ${(err as Error).message}`);
  }
  if (signal.aborted) throw new WaitFailure('launch cancelled');
  let spark: { spark: boolean; note: string };
  try {
    spark = decideSpark(context.options.config.spark, findJava(context.options.env ?? process.env));
  } catch (err) {
    throw new ClusterError((err as Error).message);
  }
  const record: ClusterRecord = box.record = {
    version: 1, user, phase: 'starting', createdAt: new Date().toISOString(),
    jupyterToken: options.jupyterToken, baseUrl: options.baseUrl,
    ports: { jupyter: 0, dask: 0, dashboard: 0, spark: 0, sparkUi: 0 },
    spark: spark.spark, enginesPerWorker: context.options.config.enginesPerWorker, workers: [],
    sparkSecret: randomBytes(24).toString('hex'),
  };
  const account = await context.tenancy.prepare(user);
  if (account) record.account = account;
  // Dask's certificates: the student's alone, like every runtime file.
  const tls = await makeClusterTls(context.tenancy.paths(user).runtimeDir, user);
  await context.tenancy.give([dirname(tls.ca), tls.ca, tls.cert, tls.key], account);
  record.tls = true;
  // Ports last: the shorter the time between picking and binding, the rarer another program takes one.
  const [jupyter, dask, dashboard, sparkPort, sparkUi] = (await (context.options.ports ?? freePorts)(5)) as [number, number, number, number, number];
  record.ports = { jupyter, dask, dashboard, spark: sparkPort, sparkUi };
  const { paths, scheduler } = context.env(record);
  const workerCount = options.workers;
  const steps = 4 + (spark.spark ? 1 : 0) + (workerCount > 0 ? 3 + (spark.spark ? 1 : 0) : 0);
  let step = 0;
  const progress = (message: string): ProgressEvent => ({ progress: 5 + Math.round((90 * ++step) / steps), message });
  yield { progress: 4, message: spark.note };

  const schedulerGroup = spawnGroup({ command: context.entrypoint, args: ['scheduler'], env: scheduler, cwd: paths.workspace, logFile: paths.schedulerLog, account: record.account });
  record.scheduler = { pgid: schedulerGroup.pid };
  await writeRecord(paths.stateFile, record);
  yield progress('Scheduler starting: JupyterLab, Dask, IPython Parallel' + (spark.spark ? ', Spark' : ''));

  const watcher = new StatusWatcher(context.entrypoint, scheduler, paths.workspace, record.account);
  try {
    const tripwires = [groupTripwire('the scheduler', schedulerGroup, paths.schedulerLog)];
    const schedulerBy = Date.now() + context.timeouts.schedulerMs;
    // Each wait resolves to its name, then its progress message is yielded: events as they happen.
    const pending = new Map<string, Promise<string>>();
    const messages = new Map<string, string>();
    const track = (what: string, done: string, waited: Promise<unknown>) => {
      const named = waited.then(() => what);
      named.catch(() => {}); // the loop sees the first failure; later ones have nobody to tell
      pending.set(what, named);
      messages.set(what, done);
    };
    const expect = (what: string, done: string, test: (s: EngineStatus) => boolean) => {
      track(what, done, within(what, watcher.until(test), { timeoutMs: Math.max(1, schedulerBy - Date.now()), signal, tripwires, timeoutLog: paths.schedulerLog }));
    };
    const engines = ['the Dask scheduler', 'the IPython Parallel controller', ...(spark.spark ? ['the Spark master'] : [])];
    expect('JupyterLab answering', 'JupyterLab is answering', (s) => s.jupyter === true);
    expect(engines[0]!, 'Dask scheduler ready', (s) => s.dask.up);
    expect(engines[1]!, 'IPython Parallel controller ready', (s) => s.ipp.up);
    if (spark.spark) expect(engines[2]!, 'Spark master ready', (s) => s.spark?.up === true);
    let enginesUp = 0;
    while (pending.size > 0) {
      const what = await Promise.race(pending.values());
      pending.delete(what);
      yield progress(messages.get(what)!);
      if (!engines.includes(what) || ++enginesUp < engines.length || workerCount === 0) continue;
      // Workers start once the engines they connect to are up, while Jupyter may still be loading.
      const joins = await startWorkers(context, record, workerCount, { watcher, signal, tripwires });
      yield progress(`Starting ${workerCount} worker${workerCount === 1 ? '' : 's'}`);
      for (const join of joins) track(join.what, join.done, join.joined);
    }
  } finally {
    watcher.close();
  }
}

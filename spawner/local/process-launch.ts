/**
 * One launch of a local cluster, step by step: environment check, the scheduler group,
 * each engine answering, the workers, each engine seeing them. Yields progress as things
 * happen; the caller (LocalBackend.start) owns cleanup when it throws.
 */
import { access, constants, mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ClusterError } from '../types.ts';
import type { ProgressEvent, StartOptions } from '../types.ts';
import { decideSpark, findJava } from './env.ts';
import { clusterEnvs, spawnScheduler, teardown } from './groups.ts';
import type { LocalSettings } from './options.ts';
import { groupAlive } from './processes.ts';
import { groupTripwire, StatusWatcher, WaitFailure, within, type EngineStatus } from './readiness.ts';
import { clusterPaths, readRecord, writeRecord, type ClusterRecord } from './state.ts';
import { startWorkers } from './workers.ts';

/** Start `user`'s cluster; `box.record` is set as soon as there is something to clean up. */
export async function* launchCluster(settings: LocalSettings, user: string, options: StartOptions, signal: AbortSignal, box: { record?: ClusterRecord }): AsyncGenerator<ProgressEvent> {
  yield { progress: 2, message: 'Checking the environment' };
  const existing = await readRecord(clusterPaths(settings.stateDir, user).stateFile);
  if (existing && existing.scheduler && groupAlive(existing.scheduler.pgid)) {
    throw new ClusterError(`${user} already has a running cluster`, 409);
  }
  if (existing) await teardown(settings, user, existing);
  try {
    await access(settings.entrypoint, constants.X_OK);
    await access(resolve(settings.venvBin, 'python'), constants.X_OK);
  } catch (err) {
    throw new ClusterError(`the local cluster environment is incomplete: ${(err as Error).message}`);
  }
  if (signal.aborted) throw new WaitFailure('launch cancelled');
  let spark: { spark: boolean; note: string };
  try {
    spark = decideSpark(settings.config.spark, findJava(settings.env));
  } catch (err) {
    throw new ClusterError((err as Error).message);
  }
  const [jupyter, dask, dashboard, sparkPort, sparkUi] = (await settings.ports(5)) as [number, number, number, number, number];
  const record: ClusterRecord = box.record = {
    version: 1, user, phase: 'starting', createdAt: new Date().toISOString(),
    jupyterToken: options.jupyterToken, baseUrl: options.baseUrl,
    ports: { jupyter, dask, dashboard, spark: sparkPort, sparkUi },
    spark: spark.spark, enginesPerWorker: settings.config.enginesPerWorker, workers: [],
  };
  const { paths, scheduler } = clusterEnvs(settings, record);
  await mkdir(paths.workspace, { recursive: true });
  await mkdir(paths.runtimeDir, { recursive: true, mode: 0o700 });
  const workers = options.workers;
  const steps = 4 + (spark.spark ? 1 : 0) + (workers > 0 ? 3 + (spark.spark ? 1 : 0) : 0);
  let step = 0;
  const progress = (message: string): ProgressEvent => ({ progress: 5 + Math.round((90 * ++step) / steps), message });
  yield { progress: 4, message: spark.note };

  const schedulerGroup = spawnScheduler(settings, record);
  await writeRecord(paths.stateFile, record);
  yield progress('Scheduler starting: JupyterLab, Dask, IPython Parallel' + (spark.spark ? ', Spark' : ''));

  const watcher = new StatusWatcher(settings.entrypoint, scheduler, paths.workspace);
  try {
    const tripwires = [groupTripwire('the scheduler', schedulerGroup, paths.schedulerLog)];
    const schedulerBy = Date.now() + settings.timeouts.schedulerMs;
    // Each wait resolves to its name; its progress message is yielded as it happens.
    const pending = new Map<string, Promise<string>>();
    const messages = new Map<string, string>();
    const expect = (what: string, done: string, test: (s: EngineStatus) => boolean) => {
      const waited = within(what, watcher.until(test), { timeoutMs: Math.max(1, schedulerBy - Date.now()), signal, tripwires, timeoutLog: paths.schedulerLog });
      const named = waited.then(() => what);
      named.catch(() => {}); // the loop sees the first failure; later ones have nobody to tell
      pending.set(what, named);
      messages.set(what, done);
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
      if (!engines.includes(what) || ++enginesUp < engines.length || workers === 0) continue;
      // Workers start once the engines they connect to are up, while Jupyter may still be loading.
      const joins = await startWorkers(settings, record, workers, { watcher, signal, tripwires });
      yield progress(`Starting ${workers} worker${workers === 1 ? '' : 's'}`);
      for (const join of joins) {
        pending.set(join.what, join.joined);
        messages.set(join.what, join.done);
      }
    }
  } finally {
    watcher.close();
  }
}

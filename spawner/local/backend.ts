/**
 * The local backend: a cluster is a scheduler process group plus one process group
 * per worker, all running images/cluster/bin/start on 127.0.0.1, with a state file
 * so a restarted hub can adopt or clean up what it finds.
 */
import { readFile, readdir, rm } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { LOGIN_PATTERN } from '../../config/schema.ts';
import { ClusterError } from '../types.ts';
import { checkWorkerCount } from '../worker-count.ts';
import type { Backend, ClusterListing, ClusterStatus, ProgressEvent, StartOptions, StopOptions } from '../types.ts';
import { teardown } from './groups.ts';
import { localSettings, type LocalBackendOptions, type LocalSettings } from './options.ts';
import { launchCluster } from './process-launch.ts';
import { groupAlive } from './processes.ts';
import { failureOf, WaitFailure } from './readiness.ts';
import { clusterPaths, readRecord, recordStatus, writeRecord, type ClusterRecord } from './state.ts';
import { addWorkers, removeWorkers } from './workers.ts';

/** Launch attempts when a port was taken between picking it and binding it (a race nobody can close). */
const PORT_ATTEMPTS = 3;
const PORT_TAKEN = /Address already in use|EADDRINUSE|BindException/;

/** Whether a failed launch died of a taken port (the error, or anywhere in the log it points at). */
async function portTaken(err: unknown, failure: Error): Promise<boolean> {
  if (PORT_TAKEN.test(failure.message)) return true;
  if (!(err instanceof WaitFailure) || !err.logFile) return false;
  const log = await readFile(err.logFile, 'utf8').catch(() => '');
  return PORT_TAKEN.test(log);
}

function checkUser(user: string): void {
  // The login becomes a directory name: never let it climb out of stateDir.
  if (!LOGIN_PATTERN.test(user)) throw new ClusterError(`not a valid login: ${JSON.stringify(user)}`, 400);
}

/** Local process-group clusters; see spawner/types.ts for the contract. */
export class LocalBackend implements Backend {
  readonly kind = 'local';
  readonly #settings: LocalSettings;
  readonly #starting = new Map<string, { abort: AbortController; done: Promise<void> }>();
  readonly #locks = new Map<string, Promise<unknown>>();

  constructor(options: LocalBackendOptions) {
    // Children run in their workspaces: a relative path would point somewhere else for each.
    for (const [key, path] of Object.entries({ stateDir: options.stateDir, venvBin: options.venvBin })) {
      if (!isAbsolute(path)) throw new Error(`LocalBackend: ${key} must be an absolute path, got ${JSON.stringify(path)}`);
    }
    this.#settings = localSettings(options);
  }

  /** One operation per user at a time (scale and stop must not interleave). */
  async #locked<T>(user: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(user) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(fn);
    this.#locks.set(user, next);
    try {
      return await next;
    } finally {
      if (this.#locks.get(user) === next) this.#locks.delete(user);
    }
  }

  async *start(user: string, options: StartOptions): AsyncGenerator<ProgressEvent> {
    checkUser(user);
    checkWorkerCount(options.workers, this.#settings.maxWorkers);
    if (this.#starting.has(user)) throw new ClusterError(`a launch for ${user} is already in progress`, 409);
    const abort = new AbortController();
    const onAbort = () => abort.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) abort.abort(options.signal.reason);
    let finished!: () => void;
    this.#starting.set(user, { abort, done: new Promise<void>((r) => { finished = r; }) });
    const paths = clusterPaths(this.#settings.stateDir, user);
    const box: { record?: ClusterRecord } = {};
    let ready = false;
    const started = Date.now();
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          yield* launchCluster(this.#settings, user, options, abort.signal, box);
          break;
        } catch (err) {
          const failure = await failureOf(err);
          if (attempt >= PORT_ATTEMPTS || abort.signal.aborted || !await portTaken(err, failure)) throw failure;
          this.#settings.log.warn({ user, attempt, err: failure }, 'a port was taken before the cluster bound it; starting again');
          await teardown(this.#settings, user, box.record);
          box.record = undefined;
          yield { progress: 3, message: 'A port was taken by another program in the meantime: starting again on other ports' };
        }
      }
      box.record!.phase = 'running';
      await writeRecord(paths.stateFile, box.record!);
      ready = true;
      this.#settings.log.info({ user, seconds: (Date.now() - started) / 1000 }, 'local cluster ready');
      yield { progress: 100, message: 'Your cluster is ready', ready: true, url: `http://127.0.0.1:${box.record!.ports.jupyter}` };
    } catch (err) {
      const failure = await failureOf(err);
      this.#settings.log.warn({ user, err: failure }, 'local cluster launch failed');
      throw failure;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      // Failed, cancelled or abandoned by the consumer: leave nothing behind.
      if (!ready) await teardown(this.#settings, user, box.record).catch((err: unknown) => this.#settings.log.error({ user, err }, 'cleanup failed'));
      this.#starting.delete(user);
      finished();
    }
  }

  async stop(user: string, options: StopOptions = {}): Promise<void> {
    checkUser(user);
    const starting = this.#starting.get(user);
    if (starting) {
      starting.abort.abort(new Error('stopped'));
      await starting.done;
    }
    await this.#locked(user, async () => {
      const paths = clusterPaths(this.#settings.stateDir, user);
      const record = await readRecord(paths.stateFile);
      await teardown(this.#settings, user, record);
      if (options.removeWorkspace) await rm(paths.workspace, { recursive: true, force: true });
      if (record) this.#settings.log.info({ user, removeWorkspace: !!options.removeWorkspace }, 'local cluster stopped');
    });
  }

  async status(user: string): Promise<ClusterStatus> {
    checkUser(user);
    const record = await readRecord(clusterPaths(this.#settings.stateDir, user).stateFile);
    if (this.#starting.has(user)) return { state: 'starting', ...(record ? { workers: record.workers.length } : {}) };
    return recordStatus(record, groupAlive);
  }

  async scale(user: string, workers: number): Promise<void> {
    checkUser(user);
    checkWorkerCount(workers, this.#settings.maxWorkers);
    if (this.#starting.has(user)) throw new ClusterError(`${user}'s cluster is still starting`, 409);
    await this.#locked(user, async () => {
      const paths = clusterPaths(this.#settings.stateDir, user);
      const record = await readRecord(paths.stateFile);
      if (!record || record.phase !== 'running') throw new ClusterError(`${user} has no running cluster`, 409);
      const current = record.workers.length;
      if (workers > current) await addWorkers(this.#settings, record, workers);
      else if (workers < current) await removeWorkers(this.#settings, record, workers);
    });
  }

  async list(): Promise<ClusterListing[]> {
    const dir = resolve(this.#settings.stateDir, 'clusters');
    const users = await readdir(dir).catch(() => [] as string[]);
    const out: ClusterListing[] = [];
    for (const user of users.filter((u) => LOGIN_PATTERN.test(u))) {
      if (this.#starting.has(user)) {
        out.push({ user, state: 'starting' });
        continue;
      }
      const record = await readRecord(clusterPaths(this.#settings.stateDir, user).stateFile);
      if (!record) continue;
      const status = await this.status(user);
      if (status.state === 'running' && (await this.#answers(record))) {
        out.push({
          user, ...status, url: `http://127.0.0.1:${record.ports.jupyter}`,
          jupyterToken: record.jupyterToken, createdAt: record.createdAt,
        });
      } else {
        this.#settings.log.warn({ user, state: status.state, reason: status.reason }, 'removing a dead local cluster');
        await this.#locked(user, () => teardown(this.#settings, user, record));
      }
    }
    return out;
  }

  /** Nothing to release: clusters are detached process groups and waits end with their calls. */
  async close(): Promise<void> {}

  /** Dashboards, as paths under the user's Jupyter base URL (Jupyter's authenticated proxy). */
  async links(user: string): Promise<Record<string, string>> {
    checkUser(user);
    const record = await readRecord(clusterPaths(this.#settings.stateDir, user).stateFile);
    if (!record) return {};
    return {
      'Dask dashboard': `proxy/${record.ports.dashboard}/status`,
      ...(record.spark ? { 'Spark master': `proxy/${record.ports.sparkUi}/` } : {}),
    };
  }

  /** Jupyter answers its status API with the cluster's token. */
  async #answers(record: ClusterRecord): Promise<boolean> {
    try {
      const response = await fetch(`http://127.0.0.1:${record.ports.jupyter}${record.baseUrl}api/status`, {
        headers: { Authorization: `token ${record.jupyterToken}` },
        signal: AbortSignal.timeout(5000),
      });
      await response.body?.cancel();
      return response.ok;
    } catch {
      return false;
    }
  }
}

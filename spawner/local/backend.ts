/**
 * The local backend: a cluster is a scheduler process group plus one process group
 * per worker, all running images/cluster/bin/start on 127.0.0.1, with a state file
 * so a restarted hub can adopt or clean up what it finds.
 */
import { readFile, readdir, rm } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { LOGIN_PATTERN, type Config } from '../../config/schema.ts';
import type { Logger } from '../../shared/log.ts';
import { request } from '../../shared/http.ts';
import { ClusterError } from '../types.ts';
import { checkWorkerCount } from '../worker-count.ts';
import type { Backend, ClusterListing, ClusterStatus, ProgressEvent, StartOptions, StopOptions } from '../types.ts';
import { clusterEnv, schedulerEnv } from './env.ts';
import { launchCluster } from './process-launch.ts';
import { groupAlive, killGroups, tailFile } from './processes.ts';
import { WaitFailure } from './readiness.ts';
import { readRecord, recordGroups, recordStatus, removeRecord, writeRecord, type ClusterRecord } from './state.ts';
import { installEntrypoint } from './install.ts';
import { scaleDown, scaleUp } from './scaling.ts';
import { defaultMode, Tenancy, type TenancyMode } from './tenancy.ts';
import { ENTRYPOINT, type LaunchContext, type LocalBackendOptions, type LocalTimeouts } from './options.ts';
import { tlsPaths } from './tls.ts';
import { SHARED_DIR } from './venv.ts';

export { ENTRYPOINT, type LocalBackendOptions, type LocalTimeouts } from './options.ts';

/** Launch attempts when a port was taken between picking it and binding it (a race nobody can close). */
const PORT_ATTEMPTS = 3;
const PORT_TAKEN = /Address already in use|EADDRINUSE|BindException|port \d+ is already in use/;

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
  readonly #options: LocalBackendOptions;
  readonly #timeouts: LocalTimeouts;
  readonly #tenancy: Tenancy;
  #installed: Promise<void> | undefined;
  readonly #starting = new Map<string, { abort: AbortController; done: Promise<void> }>();
  readonly #locks = new Map<string, Promise<unknown>>();
  /** What the launch and scaling steps are handed (the entrypoint is replaced by setup as root). */
  readonly #context: LaunchContext;

  constructor(options: LocalBackendOptions) {
    // Children run in their workspaces: a relative path would point somewhere else for each.
    for (const [key, path] of Object.entries({ stateDir: options.stateDir, venvBin: options.venvBin })) {
      if (!isAbsolute(path)) throw new Error(`LocalBackend: ${key} must be an absolute path, got ${JSON.stringify(path)}`);
    }
    this.#options = options;
    this.#timeouts = { schedulerMs: 180_000, workersMs: 180_000, stopGraceMs: 20_000, ...options.timeouts };
    this.#tenancy = new Tenancy({
      mode: options.mode ?? defaultMode(), stateDir: options.stateDir, admins: options.admins ?? [],
      userPrefix: options.config.userPrefix, sharedAccount: options.config.sharedAccount,
    });
    this.#context = {
      options, timeouts: this.#timeouts, entrypoint: options.entrypoint ?? ENTRYPOINT, tenancy: this.#tenancy,
      env: (record) => this.#env(record),
      teardown: (user, record) => this.#teardown(user, record),
    };
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

  /** Warnings for the start log and the admin page (shared mode: students are not isolated). */
  warnings(): string[] {
    return this.#tenancy.warnings();
  }

  /** Check and prepare what clusters need (directory modes, firewall, entrypoint copy); rejects naming the config key. */
  async setup(): Promise<void> {
    await this.#ready();
  }

  /** Directory modes and the firewall; as root, the entrypoint copy students can run. */
  #ready(): Promise<void> {
    this.#installed ??= (async () => {
      await this.#tenancy.setup();
      if (this.#tenancy.mode === 'accounts' && !this.#options.entrypoint) {
        this.#context.entrypoint = await installEntrypoint(join(ENTRYPOINT, '..', '..'), SHARED_DIR);
      }
    })();
    return this.#installed;
  }

  #env(record: ClusterRecord) {
    const paths = this.#tenancy.paths(record.user);
    const common = clusterEnv({
      base: this.#options.env ?? process.env, venvBin: this.#options.venvBin, config: this.#options.config,
      record, workspace: paths.workspace, runtimeDir: paths.runtimeDir,
      ...(record.tls ? { tls: tlsPaths(paths.runtimeDir) } : {}),
    });
    return { paths, common, scheduler: schedulerEnv(common, record, this.#options.config) };
  }

  async *start(user: string, options: StartOptions): AsyncGenerator<ProgressEvent> {
    checkUser(user);
    checkWorkerCount(options.workers, this.#options.maxWorkers ?? Infinity);
    if (this.#starting.has(user)) throw new ClusterError(`a launch for ${user} is already in progress`, 409);
    const abort = new AbortController();
    const onAbort = () => abort.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) abort.abort(options.signal.reason);
    let finished!: () => void;
    this.#starting.set(user, { abort, done: new Promise<void>((r) => { finished = r; }) });
    const paths = this.#tenancy.paths(user);
    const box: { record?: ClusterRecord } = {};
    let ready = false;
    const started = Date.now();
    try {
      await this.#ready();
      await this.#tenancy.checkLaunch(user);
      for (let attempt = 1; ; attempt++) {
        try {
          yield* launchCluster(this.#context, user, options, abort.signal, box);
          break;
        } catch (err) {
          const failure = await this.#describe(err);
          if (attempt >= PORT_ATTEMPTS || abort.signal.aborted || !await portTaken(err, failure)) throw failure;
          this.#options.log.warn({ user, attempt, err: failure }, 'a port was taken before the cluster bound it; starting again');
          await this.#teardown(user, box.record);
          box.record = undefined;
          yield { progress: 3, message: 'A port was taken by another program in the meantime: starting again on other ports' };
        }
      }
      box.record!.phase = 'running';
      await writeRecord(paths.stateFile, box.record!);
      ready = true;
      this.#options.log.info({ user, seconds: (Date.now() - started) / 1000 }, 'local cluster ready');
      yield { progress: 100, message: 'Your cluster is ready', ready: true, url: `http://127.0.0.1:${box.record!.ports.jupyter}` };
    } catch (err) {
      const failure = await this.#describe(err);
      this.#options.log.warn({ user, err: failure }, 'local cluster launch failed');
      throw failure;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      // Failed, cancelled or abandoned by the consumer: leave nothing behind.
      if (!ready) await this.#teardown(user, box.record).catch((err: unknown) => this.#options.log.error({ user, err }, 'cleanup failed'));
      this.#starting.delete(user);
      finished();
    }
  }

  /** A ClusterError with the reason and the tail of the log that tells why. */
  async #describe(err: unknown): Promise<ClusterError> {
    if (err instanceof ClusterError) return err;
    const message = err instanceof Error ? err.message : String(err);
    const log = err instanceof WaitFailure && err.logFile ? await tailFile(err.logFile, 25) : '';
    return new ClusterError(log ? `${message}. Last lines of ${err instanceof WaitFailure ? err.logFile : 'the log'}:\n${log}` : message);
  }

  /** Kill every group of the record, remove the state file and runtime files (logs stay). */
  async #teardown(user: string, record: ClusterRecord | undefined): Promise<void> {
    const paths = this.#tenancy.paths(user);
    if (record) await killGroups(recordGroups(record), this.#timeouts.stopGraceMs);
    await this.#tenancy.release(record);
    await removeRecord(paths.stateFile);
    await rm(paths.runtimeDir, { recursive: true, force: true });
  }

  async stop(user: string, options: StopOptions = {}): Promise<void> {
    checkUser(user);
    const starting = this.#starting.get(user);
    if (starting) {
      starting.abort.abort(new Error('stopped'));
      await starting.done;
    }
    await this.#locked(user, async () => {
      const paths = this.#tenancy.paths(user);
      const record = await readRecord(paths.stateFile);
      await this.#teardown(user, record);
      if (options.removeWorkspace) await rm(paths.workspace, { recursive: true, force: true });
      if (record) this.#options.log.info({ user, removeWorkspace: !!options.removeWorkspace }, 'local cluster stopped');
    });
  }

  async status(user: string): Promise<ClusterStatus> {
    checkUser(user);
    const record = await readRecord(this.#tenancy.paths(user).stateFile);
    if (this.#starting.has(user)) return { state: 'starting', ...(record ? { workers: record.workers.length } : {}) };
    return recordStatus(record, groupAlive);
  }

  async scale(user: string, workers: number): Promise<void> {
    checkUser(user);
    checkWorkerCount(workers, this.#options.maxWorkers ?? Infinity);
    if (this.#starting.has(user)) throw new ClusterError(`${user}'s cluster is still starting`, 409);
    await this.#ready();
    await this.#locked(user, async () => {
      const paths = this.#tenancy.paths(user);
      const record = await readRecord(paths.stateFile);
      if (!record || record.phase !== 'running') throw new ClusterError(`${user} has no running cluster`, 409);
      const current = record.workers.length;
      if (workers > current) await scaleUp(this.#context, record, workers).catch(async (err: unknown) => { throw await this.#describe(err); });
      else if (workers < current) await scaleDown(this.#context, record, workers);
    });
  }

  async list(): Promise<ClusterListing[]> {
    const dir = resolve(this.#options.stateDir, 'clusters');
    const users = await readdir(dir).catch(() => [] as string[]);
    const out: ClusterListing[] = [];
    for (const user of users.filter((u) => LOGIN_PATTERN.test(u))) {
      if (this.#starting.has(user)) {
        out.push({ user, state: 'starting' });
        continue;
      }
      const record = await readRecord(this.#tenancy.paths(user).stateFile);
      if (!record) continue;
      const status = await this.status(user);
      if (status.state === 'running' && (await this.#answers(record))) {
        await this.#ready();
        await this.#tenancy.adopt(record);
        out.push({
          user, ...status, url: `http://127.0.0.1:${record.ports.jupyter}`,
          jupyterToken: record.jupyterToken, createdAt: record.createdAt,
        });
      } else {
        this.#options.log.warn({ user, state: status.state, reason: status.reason }, 'removing a dead local cluster');
        await this.#locked(user, () => this.#teardown(user, record));
      }
    }
    return out;
  }

  /** Nothing to release: clusters are detached process groups and waits end with their calls. */
  async close(): Promise<void> {}

  /** Dashboards, as paths under the user's Jupyter base URL (Jupyter's authenticated proxy). */
  async links(user: string): Promise<Record<string, string>> {
    checkUser(user);
    const record = await readRecord(this.#tenancy.paths(user).stateFile);
    if (!record) return {};
    return {
      'Dask dashboard': 'dask/status',
      ...(record.spark ? { 'Spark master': `proxy/${record.ports.sparkUi}/` } : {}),
    };
  }

  /** Jupyter answers its status API with the cluster's token. */
  async #answers(record: ClusterRecord): Promise<boolean> {
    try {
      const response = await request(`http://127.0.0.1:${record.ports.jupyter}${record.baseUrl}api/status`, {
        headers: { Authorization: `token ${record.jupyterToken}` },
        timeoutMs: 5000,
      });
      return response.status >= 200 && response.status < 300;
    } catch {
      return false;
    }
  }
}

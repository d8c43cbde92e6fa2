/**
 * Runs configurable-http-proxy as a child process of the hub (proxy mode `managed`) and
 * restarts it when it dies, with capped exponential backoff and without ever giving up
 * (its `state` tells an outside process manager when it keeps failing). CHP keeps routes
 * in memory, so every restart is announced with a `restart` event once the API answers
 * again: the hub then puts every route back.
 */
import { EventEmitter } from 'node:events';
import { assertPortFree, spawnChp, waitForApi, type ChpProcessOptions, type ChpRun } from './chp-process.ts';
import { silentLogger, type Logger } from '../shared/log.ts';

export interface ChpSupervisorOptions extends ChpProcessOptions {
  /** Receives the child's log lines. */
  logger?: Logger;
  /** How long one start may take until the API answers (default 15 s). */
  startTimeoutMs?: number;
  /** Delay before the first restart, doubled for each death within `restartWindowMs` (default 250 ms). */
  restartBackoffMs?: number;
  /** Longest delay between restart attempts (default 5 s). */
  maxBackoffMs?: number;
  /** Deaths older than this no longer lengthen the backoff (default 60 s). */
  restartWindowMs?: number;
}

export interface ChpRestartInfo {
  pid: number;
  /** Restarts so far, this one included. */
  restarts: number;
  /** Why the previous child ended, e.g. `signal SIGKILL`. */
  reason: string;
}

/** Events: `restart` (the API answers again; re-add every route), `exit` (a child ended). */
export type ChpSupervisorEvents = {
  restart: [ChpRestartInfo];
  exit: [{ pid: number; code: number | null; signal: NodeJS.Signals | null; expected: boolean }];
};

/** Where the supervised proxy stands, for `/hub/health` and whoever watches it. */
export interface ChpState {
  state: 'starting' | 'running' | 'restarting' | 'stopped';
  pid?: number;
  /** Since when it is in this state (ISO 8601). */
  since: string;
  restarts: number;
  /** Failed starts and deaths in a row since it last ran; 0 while running. */
  failures: number;
  /** Why the last child ended, or why the last start failed. */
  lastError?: string;
  /** When the next start is attempted, while restarting. */
  nextAttemptAt?: string;
}

const STOP_GRACE_MS = 5000;

/** Starts, watches and restarts one configurable-http-proxy child process. */
export class ChpSupervisor extends EventEmitter<ChpSupervisorEvents> {
  /** REST API base URL, for `ChpClient`. */
  readonly apiUrl: string;
  /** Where the proxy listens for students. */
  readonly publicUrl: string;
  readonly #options: ChpSupervisorOptions;
  readonly #log: Logger;
  #run: ChpRun | undefined;
  #stopping = false;
  #restartTimer: NodeJS.Timeout | undefined;
  #recentRestarts: number[] = [];
  #restarts = 0;
  #state: ChpState = { state: 'stopped', since: new Date().toISOString(), restarts: 0, failures: 0 };

  constructor(options: ChpSupervisorOptions) {
    super();
    this.#options = options;
    this.#log = options.logger ?? silentLogger();
    this.apiUrl = `http://${hostForUrl(options.apiIp ?? '127.0.0.1')}:${options.apiPort}`;
    this.publicUrl = `http://${hostForUrl(options.ip ?? '127.0.0.1')}:${options.port}`;
  }

  /** Pid of the running child, if any. */
  get pid(): number | undefined {
    return this.#run?.pid;
  }

  /** How often the child has been restarted. */
  get restarts(): number {
    return this.#restarts;
  }

  /** What the proxy is doing right now. */
  get state(): ChpState {
    return { ...this.#state, restarts: this.#restarts, ...(this.#run?.ready ? { pid: this.#run.pid } : {}) };
  }

  #enter(state: ChpState['state'], more: Partial<ChpState> = {}): void {
    const { lastError, failures } = this.#state;
    this.#state = { state, since: new Date().toISOString(), restarts: this.#restarts, failures, ...(lastError ? { lastError } : {}), ...more };
  }

  /** Start the proxy and wait until its API answers. Rejects with the child's last output on failure. */
  async start(): Promise<void> {
    if (this.#run) throw new Error('configurable-http-proxy is already running');
    this.#stopping = false;
    this.#enter('starting');
    try {
      await this.#launch();
    } catch (err) {
      this.#enter('stopped', { lastError: (err as Error).message });
      throw err;
    }
  }

  /** Stop the proxy (SIGTERM, SIGKILL after 5 s) and wait until it has exited. No more restarts. */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    this.#enter('stopped');
    const run = this.#run;
    if (!run) return;
    if (!run.ended) {
      run.child.kill('SIGTERM');
      const killer = setTimeout(() => run.child.kill('SIGKILL'), STOP_GRACE_MS);
      await run.exited;
      clearTimeout(killer);
    }
    if (this.#run === run) this.#run = undefined;
  }

  async #launch(): Promise<void> {
    const options = this.#options;
    await assertPortFree(options.ip ?? '127.0.0.1', options.port, 'public');
    await assertPortFree(options.apiIp ?? '127.0.0.1', options.apiPort, 'API');
    if (this.#stopping) throw new Error('configurable-http-proxy start cancelled: the supervisor was stopped');
    const run = spawnChp(options, this.#log, (ended, code, signal) => {
      this.emit('exit', { pid: ended.pid, code, signal, expected: this.#stopping || !ended.ready });
      if (ended.ready && this.#run === ended && !this.#stopping) this.#onUnexpectedExit(ended);
    });
    this.#run = run;
    try {
      await waitForApi(run, { url: this.apiUrl, authToken: options.authToken, timeoutMs: options.startTimeoutMs ?? 15_000, cancelled: () => this.#stopping });
      run.ready = true;
      this.#enter('running', { failures: 0 });
      this.#log.info({ pid: run.pid, api: this.apiUrl, public: this.publicUrl }, 'configurable-http-proxy is up');
    } catch (err) {
      if (this.#run === run) this.#run = undefined;
      if (!run.ended) {
        run.child.kill('SIGKILL');
        await run.exited;
      }
      throw err;
    }
  }

  #onUnexpectedExit(run: ChpRun): void {
    this.#run = undefined;
    this.#log.error({ pid: run.pid, reason: run.ended }, `configurable-http-proxy died (${run.ended}); restarting`);
    this.#scheduleRestart(run.ended ?? 'unknown');
  }

  /** Never gives up: the public port is the hub's front door. The delay doubles with recent deaths, up to a cap. */
  #scheduleRestart(reason: string): void {
    if (this.#stopping) return;
    const window = this.#options.restartWindowMs ?? 60_000;
    const now = Date.now();
    this.#recentRestarts = this.#recentRestarts.filter((t) => now - t < window);
    const exponent = Math.min(this.#recentRestarts.length, 20);
    const backoff = Math.min(this.#options.maxBackoffMs ?? 5000, (this.#options.restartBackoffMs ?? 250) * 2 ** exponent);
    this.#recentRestarts.push(now);
    this.#enter('restarting', { failures: this.#state.failures + 1, lastError: reason, nextAttemptAt: new Date(now + backoff).toISOString() });
    this.#restartTimer = setTimeout(() => void this.#restart(reason), backoff);
  }

  async #restart(reason: string): Promise<void> {
    if (this.#stopping) return;
    try {
      await this.#launch();
    } catch (err) {
      this.#log.error({ err }, 'restarting configurable-http-proxy failed');
      this.#scheduleRestart((err as Error).message);
      return;
    }
    this.#restarts++;
    this.emit('restart', { pid: this.#run?.pid ?? -1, restarts: this.#restarts, reason });
  }
}

function hostForUrl(ip: string): string {
  return ip.includes(':') ? `[${ip}]` : ip;
}

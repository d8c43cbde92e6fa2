/**
 * Runs configurable-http-proxy as a child process of the hub (proxy mode `managed`) and
 * restarts it when it dies, with capped exponential backoff and without ever giving up
 * (its `state` tells an outside process manager when it keeps failing). CHP keeps routes
 * in memory, so every restart is announced with a `restart` event once the API answers
 * again: the hub then puts every route back.
 *
 * The API that answers must be the child's own (chp-process.ts): a port taken by another
 * process fails that start. A configured port is waited for (each attempt logs why it
 * failed); a port left to the supervisor (0) is the one the child got last time while it is
 * free, else a fresh one.
 */
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { urlOf, assertPortFree, spawnChp, waitForApi, type BoundPorts, type ChpProcessOptions, type ChpRun } from './chp-process.ts';
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
  /** A process from `prestartChp`, used for the first start (restarts spawn their own); killed by `stop` if unused. */
  prestarted?: ChildProcess;
}

export interface ChpRestartInfo {
  pid: number;
  /** Restarts so far, this one included. */
  restarts: number;
  /** Why the previous child ended, e.g. `signal SIGKILL`. */
  reason: string;
  /** Where the new child's API and public port are (they move only when left to the supervisor and taken). */
  apiUrl: string;
  publicUrl: string;
}

/**
 * Events: `spawn` (a child was started; its API is not checked yet), `restart` (the API answers
 * again; re-add every route), `exit` (a child ended).
 */
export type ChpSupervisorEvents = {
  spawn: [{ pid: number }];
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
  readonly #options: ChpSupervisorOptions;
  /** The ports the last child held (port 0 before a child picked one). */
  #ports: BoundPorts;
  readonly #log: Logger;
  #run: ChpRun | undefined;
  #stopping = false;
  #restartTimer: NodeJS.Timeout | undefined;
  #recentRestarts: number[] = [];
  #restarts = 0;
  #state: ChpState = { state: 'stopped', since: new Date().toISOString(), restarts: 0, failures: 0 };
  #prestarted: ChildProcess | undefined;

  constructor(options: ChpSupervisorOptions) {
    super();
    this.#options = options;
    this.#prestarted = options.prestarted;
    this.#log = options.logger ?? silentLogger();
    this.#ports = { port: options.port, apiPort: options.apiPort };
  }

  /** REST API base URL, for `ChpClient` (with `apiPort: 0`, known once started; it moves if the port was taken). */
  get apiUrl(): string {
    return urlOf(this.#options.apiIp ?? '127.0.0.1', this.#ports.apiPort);
  }

  /** Where the proxy listens for students (with `port: 0`, known once started). */
  get publicUrl(): string {
    return urlOf(this.#options.ip ?? '127.0.0.1', this.#ports.port);
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
    this.#prestarted?.kill('SIGKILL');
    this.#prestarted = undefined;
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

  /**
   * The ports for the next child. A configured one must be free (else this start fails, saying
   * so); one left to the supervisor is the last child's while free, else 0: a fresh one.
   */
  async #choosePorts(): Promise<BoundPorts> {
    const options = this.#options;
    const choose = async (what: 'public' | 'API', ip: string, configured: number, last: number): Promise<number> => {
      if (configured !== 0) {
        await assertPortFree(ip, configured, what).catch((err: Error) => {
          throw new Error(`${err.message}; it is the configured port, so the proxy keeps trying it until it is free`);
        });
        return configured;
      }
      if (last === 0) return 0;
      try {
        await assertPortFree(ip, last, what);
        return last;
      } catch (err) {
        this.#log.warn({ err }, `the proxy's ${what} port ${last} was taken by another process while it was down; moving to a fresh port`);
        return 0;
      }
    };
    return {
      port: await choose('public', options.ip ?? '127.0.0.1', options.port, this.#ports.port),
      apiPort: await choose('API', options.apiIp ?? '127.0.0.1', options.apiPort, this.#ports.apiPort),
    };
  }

  async #launch(): Promise<void> {
    const options = this.#options;
    const ports = await this.#choosePorts();
    if (this.#stopping) throw new Error('configurable-http-proxy start cancelled: the supervisor was stopped');
    const prestarted = this.#prestarted;
    this.#prestarted = undefined;
    const run = spawnChp({ ...options, ...ports }, this.#log, (ended, code, signal) => {
      this.emit('exit', { pid: ended.pid, code, signal, expected: this.#stopping || !ended.ready });
      if (ended.ready && this.#run === ended && !this.#stopping) this.#onUnexpectedExit(ended);
    }, prestarted);
    this.#run = run;
    this.emit('spawn', { pid: run.pid });
    try {
      const bound = await waitForApi(run, { ip: options.apiIp ?? '127.0.0.1', authToken: options.authToken, timeoutMs: options.startTimeoutMs ?? 15_000, cancelled: () => this.#stopping });
      for (const key of ['port', 'apiPort'] as const) {
        if (ports[key] !== 0 && bound[key] !== ports[key]) throw new Error(`configurable-http-proxy holds port ${bound[key]}, not the ${ports[key]} it was given`);
      }
      this.#ports = bound;
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
    this.emit('restart', { pid: this.#run?.pid ?? -1, restarts: this.#restarts, reason, apiUrl: this.apiUrl, publicUrl: this.publicUrl });
  }
}

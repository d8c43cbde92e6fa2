/**
 * Runs configurable-http-proxy as a child process of the hub (proxy mode `managed`) and
 * restarts it when it dies, with capped exponential backoff and without ever giving up
 * (its `state` tells an outside process manager when it keeps failing). CHP keeps routes
 * in memory, so every restart is announced with a `restart` event once the API answers
 * again: the hub then puts every route back.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ChpClient, ProxyApiError } from './client.ts';
import { silentLogger, type Logger, type LogLevel } from '../shared/log.ts';

export interface ChpSupervisorOptions {
  /** Public address (default `127.0.0.1`). */
  ip?: string;
  /** Public port: students' traffic. */
  port: number;
  /** Address of the REST API (default `127.0.0.1`; keep it off the network). */
  apiIp?: string;
  apiPort: number;
  /** Where unrouted requests go: the hub, e.g. `http://127.0.0.1:8081`. */
  defaultTarget: string;
  /** Where CHP sends requests it could not proxy, for a friendly error page. */
  errorTarget?: string;
  /** CONFIGPROXY_AUTH_TOKEN. */
  authToken: string;
  /** CHP's own log level (default `info`). */
  logLevel?: LogLevel;
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
  /** The child exits when the hub's end of its stdin closes, so a crashed hub leaves no proxy behind (default true). */
  exitWithHub?: boolean;
  /** More CHP command-line flags. */
  extraArgs?: string[];
  /** The proxy's script (default: `front.ts`, CHP behind a front that refuses malformed URLs). */
  bin?: string;
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

interface Run {
  child: ChildProcess;
  pid: number;
  /** Set once the API answered; only then is an exit unexpected. */
  ready: boolean;
  ended?: string;
  exited: Promise<void>;
}

const STOP_GRACE_MS = 5000;
const PROBE_INTERVAL_MS = 50;

/** CHP through its library API, behind the hub's own front (proxy/front.ts). */
const FRONT_SCRIPT = fileURLToPath(new URL('./front.ts', import.meta.url));

/** Path of configurable-http-proxy's bin script in the installed npm package. */
export function resolveChpBin(): string {
  const main = fileURLToPath(import.meta.resolve('configurable-http-proxy'));
  return join(dirname(main), 'bin', 'configurable-http-proxy');
}

/** Starts, watches and restarts one configurable-http-proxy child process. */
export class ChpSupervisor extends EventEmitter<ChpSupervisorEvents> {
  /** REST API base URL, for `ChpClient`. */
  readonly apiUrl: string;
  /** Where the proxy listens for students. */
  readonly publicUrl: string;
  readonly #opts: ChpSupervisorOptions;
  readonly #log: Logger;
  #run: Run | undefined;
  #stopping = false;
  #restartTimer: NodeJS.Timeout | undefined;
  #recentRestarts: number[] = [];
  #restarts = 0;
  #tail: string[] = [];
  #state: ChpState = { state: 'stopped', since: new Date().toISOString(), restarts: 0, failures: 0 };

  constructor(options: ChpSupervisorOptions) {
    super();
    this.#opts = options;
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
    const o = this.#opts;
    const apiIp = o.apiIp ?? '127.0.0.1';
    await assertPortFree(o.ip ?? '127.0.0.1', o.port, 'public');
    await assertPortFree(apiIp, o.apiPort, 'API');
    if (this.#stopping) throw new Error('configurable-http-proxy start cancelled: the supervisor was stopped');

    const args = [
      '--ip', o.ip ?? '127.0.0.1', '--port', String(o.port),
      '--api-ip', apiIp, '--api-port', String(o.apiPort),
      '--default-target', o.defaultTarget,
      '--log-level', o.logLevel ?? 'info',
      ...(o.errorTarget ? ['--error-target', o.errorTarget] : []),
      ...(o.extraArgs ?? []),
    ];
    // Reading stdin to its end means: the hub is gone (even after SIGKILL), so go too.
    const watchParent = o.exitWithHub === false ? [] : ["--import=data:text/javascript,process.stdin.on('end',()=>process.exit(0)).resume()"];
    const child = spawn(process.execPath, [...watchParent, o.bin ?? FRONT_SCRIPT, ...args], {
      env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: o.authToken },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let fatal: string | undefined;
    const run: Run = {
      child,
      pid: child.pid ?? -1,
      ready: false,
      exited: new Promise((resolve) => {
        child.once('error', (err) => { run.ended ??= `could not start: ${err.message}`; resolve(); });
        child.once('exit', (code, signal) => {
          run.ended ??= signal ? `signal ${signal}` : `exit code ${code}`;
          resolve();
          this.emit('exit', { pid: run.pid, code, signal, expected: this.#stopping || !run.ready });
          if (run.ready && this.#run === run && !this.#stopping) this.#onUnexpectedExit(run);
        });
      }),
    };
    this.#run = run;
    this.#tail = [];
    this.#forward(child, run.pid, (line) => {
      // CHP logs listen errors instead of exiting, and would sit there serving nothing.
      if (!run.ready && /EADDRINUSE|EADDRNOTAVAIL|EACCES/.test(line)) fatal ??= line;
    });

    try {
      await this.#waitForApi(run, () => fatal);
      run.ready = true;
      this.#enter('running', { failures: 0 });
      this.#log.info({ pid: run.pid, api: this.apiUrl, public: this.publicUrl }, 'configurable-http-proxy is up');
    } catch (err) {
      if (this.#run === run) this.#run = undefined;
      if (!run.ended) {
        child.kill('SIGKILL');
        await run.exited;
      }
      throw err;
    }
  }

  async #waitForApi(run: Run, fatal: () => string | undefined): Promise<void> {
    const timeoutMs = this.#opts.startTimeoutMs ?? 15_000;
    const deadline = Date.now() + timeoutMs;
    const client = new ChpClient({ apiUrl: this.apiUrl, authToken: this.#opts.authToken, timeoutMs: 2000 });
    for (;;) {
      if (this.#stopping) throw new Error('configurable-http-proxy start cancelled: the supervisor was stopped');
      if (run.ended) throw new Error(`configurable-http-proxy ended (${run.ended}) before its API answered${this.#lastOutput()}`);
      const failure = fatal();
      if (failure) throw new Error(`configurable-http-proxy could not listen: ${failure}`);
      try {
        await client.getRoutes();
        return;
      } catch (err) {
        if (!(err instanceof ProxyApiError) || err.status !== 0) throw err;
      }
      if (Date.now() >= deadline) {
        throw new Error(`configurable-http-proxy API at ${this.apiUrl} did not answer within ${timeoutMs} ms${this.#lastOutput()}`);
      }
      await Promise.race([delay(PROBE_INTERVAL_MS), run.exited]);
    }
  }

  #onUnexpectedExit(run: Run): void {
    this.#run = undefined;
    this.#log.error({ pid: run.pid, reason: run.ended }, `configurable-http-proxy died (${run.ended}); restarting`);
    this.#scheduleRestart(run.ended ?? 'unknown');
  }

  /** Never gives up: the public port is the hub's front door. The delay doubles with recent deaths, up to a cap. */
  #scheduleRestart(reason: string): void {
    if (this.#stopping) return;
    const window = this.#opts.restartWindowMs ?? 60_000;
    const now = Date.now();
    this.#recentRestarts = this.#recentRestarts.filter((t) => now - t < window);
    const exponent = Math.min(this.#recentRestarts.length, 20);
    const backoff = Math.min(this.#opts.maxBackoffMs ?? 5000, (this.#opts.restartBackoffMs ?? 250) * 2 ** exponent);
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

  /** Send the child's log lines to the logger at their own level; keep the last few for errors. */
  #forward(child: ChildProcess, pid: number, inspect: (line: string) => void): void {
    const onLine = (raw: string): void => {
      const line = raw.replace(/\x1b\[[0-9;]*m/g, '').trimEnd();
      if (!line) return;
      this.#tail.push(line);
      if (this.#tail.length > 20) this.#tail.shift();
      inspect(line);
      const m = /^\S+ \[ConfigProxy\] (\w+): (.*)$/.exec(line);
      const level = m && ['debug', 'info', 'warn', 'error'].includes(m[1]!) ? (m[1] as LogLevel) : 'info';
      this.#log[level]({ component: 'proxy', pid }, m ? m[2]! : line);
    };
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream, crlfDelay: Infinity }).on('line', onLine);
    }
  }

  #lastOutput(): string {
    return this.#tail.length ? `; last output:\n${this.#tail.slice(-8).join('\n')}` : '';
  }
}

/** Fail early with a clear message when something (an old proxy?) already holds the port. */
async function assertPortFree(host: string, port: number, what: string): Promise<void> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new Error(`cannot start configurable-http-proxy: its ${what} port ${host}:${port} is not available (${err.code ?? err.message})`));
    });
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve()));
  });
}

function hostForUrl(ip: string): string {
  return ip.includes(':') ? `[${ip}]` : ip;
}

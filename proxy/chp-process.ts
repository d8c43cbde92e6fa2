/**
 * One configurable-http-proxy child process, as the supervisor starts it: its command line,
 * its log lines forwarded at their own level, and the wait until its REST API answers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ChpClient, ProxyApiError } from './client.ts';
import type { Logger, LogLevel } from '../shared/log.ts';

/** What the child's command line and environment are made of. */
export interface ChpProcessOptions {
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
  /** The child exits when the hub's end of its stdin closes, so a crashed hub leaves no proxy behind (default true). */
  exitWithHub?: boolean;
  /** More CHP command-line flags. */
  extraArgs?: string[];
  /** The proxy's script (default: `front.ts`, CHP behind a front that refuses malformed URLs). */
  bin?: string;
}

/** One child, from spawn to exit. */
export interface ChpRun {
  child: ChildProcess;
  pid: number;
  /** Set once the API answered; only then is an exit unexpected. */
  ready: boolean;
  /** Why it ended (`signal SIGKILL`, `exit code 1`), once it has. */
  ended?: string;
  exited: Promise<void>;
  /** A line saying it cannot listen: CHP logs listen errors instead of exiting, and would sit there serving nothing. */
  fatal?: string;
  /** Its last log lines, for errors. */
  tail: string[];
}

const PROBE_INTERVAL_MS = 50;

/** CHP through its library API, behind the hub's own front (proxy/front.ts). */
const FRONT_SCRIPT = fileURLToPath(new URL('./front.ts', import.meta.url));

/**
 * Spawn the proxy; its log lines go to `log`. `onExit` runs after `exited` settles, for every
 * exit, whether the API ever answered or not.
 */
export function spawnChp(options: ChpProcessOptions, log: Logger, onExit: (run: ChpRun, code: number | null, signal: NodeJS.Signals | null) => void): ChpRun {
  const args = [
    '--ip', options.ip ?? '127.0.0.1', '--port', String(options.port),
    '--api-ip', options.apiIp ?? '127.0.0.1', '--api-port', String(options.apiPort),
    '--default-target', options.defaultTarget,
    '--log-level', options.logLevel ?? 'info',
    ...(options.errorTarget ? ['--error-target', options.errorTarget] : []),
    ...(options.extraArgs ?? []),
  ];
  // Reading stdin to its end means: the hub is gone (even after SIGKILL), so go too.
  const watchParent = options.exitWithHub === false ? [] : ["--import=data:text/javascript,process.stdin.on('end',()=>process.exit(0)).resume()"];
  const child = spawn(process.execPath, [...watchParent, options.bin ?? FRONT_SCRIPT, ...args], {
    env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: options.authToken },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const run: ChpRun = {
    child,
    pid: child.pid ?? -1,
    ready: false,
    tail: [],
    exited: new Promise((resolve) => {
      child.once('error', (err) => { run.ended ??= `could not start: ${err.message}`; resolve(); });
      child.once('exit', (code, signal) => {
        run.ended ??= signal ? `signal ${signal}` : `exit code ${code}`;
        resolve();
        onExit(run, code, signal);
      });
    }),
  };
  forwardLines(run, log);
  return run;
}

/** Send the child's log lines to the logger at their own level; keep the last few for errors. */
function forwardLines(run: ChpRun, log: Logger): void {
  const onLine = (raw: string): void => {
    const line = raw.replace(/\x1b\[[0-9;]*m/g, '').trimEnd();
    if (!line) return;
    run.tail.push(line);
    if (run.tail.length > 20) run.tail.shift();
    if (!run.ready && /EADDRINUSE|EADDRNOTAVAIL|EACCES/.test(line)) run.fatal ??= line;
    const parsed = /^\S+ \[ConfigProxy\] (\w+): (.*)$/.exec(line);
    const level = parsed && ['debug', 'info', 'warn', 'error'].includes(parsed[1]!) ? (parsed[1] as LogLevel) : 'info';
    log[level]({ component: 'proxy', pid: run.pid }, parsed ? parsed[2]! : line);
  };
  for (const stream of [run.child.stdout, run.child.stderr]) {
    if (stream) createInterface({ input: stream, crlfDelay: Infinity }).on('line', onLine);
  }
}

/** Resolves once the child's API answers; rejects when it ends, cannot listen, is cancelled or `timeoutMs` passes. */
export async function waitForApi(run: ChpRun, api: { url: string; authToken: string; timeoutMs: number; cancelled: () => boolean }): Promise<void> {
  const deadline = Date.now() + api.timeoutMs;
  const client = new ChpClient({ apiUrl: api.url, authToken: api.authToken, timeoutMs: 2000 });
  for (;;) {
    if (api.cancelled()) throw new Error('configurable-http-proxy start cancelled: the supervisor was stopped');
    if (run.ended) throw new Error(`configurable-http-proxy ended (${run.ended}) before its API answered${lastOutput(run)}`);
    if (run.fatal) throw new Error(`configurable-http-proxy could not listen: ${run.fatal}`);
    try {
      await client.getRoutes();
      return;
    } catch (err) {
      if (!(err instanceof ProxyApiError) || err.status !== 0) throw err;
    }
    if (Date.now() >= deadline) {
      throw new Error(`configurable-http-proxy API at ${api.url} did not answer within ${api.timeoutMs} ms${lastOutput(run)}`);
    }
    await Promise.race([delay(PROBE_INTERVAL_MS), run.exited]);
  }
}

function lastOutput(run: ChpRun): string {
  return run.tail.length ? `; last output:\n${run.tail.slice(-8).join('\n')}` : '';
}

/** Fail early with a clear message when something (an old proxy?) already holds the port. */
export async function assertPortFree(host: string, port: number, what: string): Promise<void> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new Error(`cannot start configurable-http-proxy: its ${what} port ${host}:${port} is not available (${err.code ?? err.message})`));
    });
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve()));
  });
}

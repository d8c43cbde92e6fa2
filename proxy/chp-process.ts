/**
 * One configurable-http-proxy child process, as the supervisor starts it: its command line,
 * its log lines forwarded at their own level, and the wait until its REST API answers.
 *
 * An answer on the API port proves nothing by itself: another process (another proxy with the
 * same token, say) may hold that port, and the child then fails to bind it. So the child
 * writes one line once it holds both ports (proxy/front.ts), and the API counts as the
 * child's only after that line, while the child still runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ChpClient, ProxyApiError } from './client.ts';
import type { Logger, LogLevel } from '../shared/log.ts';

/** What the child's command line and environment are made of. */
export interface ChpProcessOptions {
  /** Public address (default `127.0.0.1`). */
  ip?: string;
  /** Public port: students' traffic. 0: a free one, picked by the system when the child binds. */
  port: number;
  /** Address of the REST API (default `127.0.0.1`; keep it off the network). */
  apiIp?: string;
  /** 0: a free one, picked by the system when the child binds. */
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
  /**
   * The proxy's script (default: `front.ts`, CHP behind a front that refuses malformed URLs).
   * It must write front.ts's `clusterhub-proxy listening: …` line once it holds both ports.
   */
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
  /** The ports it holds, from its own line saying so; until then, whatever answers on the API port is not this child. */
  bound?: BoundPorts;
  /** Its last log lines, for errors. */
  tail: string[];
}

/** The ports one child holds. */
export interface BoundPorts {
  port: number;
  apiPort: number;
}

const PROBE_INTERVAL_MS = 50;
/** What front.ts writes once both servers listen (on stdout, whatever the log level). */
const BOUND_LINE = /^clusterhub-proxy listening: public port (\d+), API port (\d+)$/;

/** CHP through its library API, behind the hub's own front (proxy/front.ts). */
const FRONT_SCRIPT = fileURLToPath(new URL('./front.ts', import.meta.url));

/** Reading stdin to its end means: the hub is gone (even after SIGKILL), so go too. */
const WATCH_PARENT = "--import=data:text/javascript,process.stdin.on('end',()=>process.exit(0)).resume()";

/**
 * Starts the proxy's process before its flags are known (the hub has not read its config yet):
 * it loads configurable-http-proxy meanwhile and waits for its flags on fd 3 (proxy/front.ts).
 * Give it to `spawnChp` (through the supervisor's `prestarted`), which sends them; a process
 * that is not used must be killed. It exits with the hub like any other.
 */
export function prestartChp(bin: string = FRONT_SCRIPT): ChildProcess {
  const child = spawn(process.execPath, [WATCH_PARENT, bin, '--flags-on-fd3'], { env: { ...process.env }, stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
  // Until spawnChp watches it: a failed spawn shows as its exit there.
  child.on('error', () => {});
  return child;
}

/**
 * Spawn the proxy (or hand a prestarted one its flags); its log lines go to `log`. `onExit` runs
 * after `exited` settles, for every exit, whether the API ever answered or not.
 */
export function spawnChp(options: ChpProcessOptions, log: Logger, onExit: (run: ChpRun, code: number | null, signal: NodeJS.Signals | null) => void, prestarted?: ChildProcess): ChpRun {
  const args = [
    '--ip', options.ip ?? '127.0.0.1', '--port', String(options.port),
    '--api-ip', options.apiIp ?? '127.0.0.1', '--api-port', String(options.apiPort),
    '--default-target', options.defaultTarget,
    '--log-level', options.logLevel ?? 'info',
    ...(options.errorTarget ? ['--error-target', options.errorTarget] : []),
    ...(options.extraArgs ?? []),
  ];
  const watchParent = options.exitWithHub === false ? [] : [WATCH_PARENT];
  let child: ChildProcess;
  if (prestarted) {
    child = prestarted;
    // The token goes with the flags, as CONFIGPROXY_AUTH_TOKEN would have.
    const flags = child.stdio[3] as Writable;
    flags.on('error', () => {}); // it ended before it was used: its exit says so below
    flags.end(`${JSON.stringify({ args, authToken: options.authToken })}\n`);
  } else {
    child = spawn(process.execPath, [...watchParent, options.bin ?? FRONT_SCRIPT, ...args], {
      env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: options.authToken },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  }
  const run: ChpRun = {
    child,
    pid: child.pid ?? -1,
    ready: false,
    tail: [],
    exited: new Promise((resolve) => {
      const exit = (code: number | null, signal: NodeJS.Signals | null) => {
        run.ended ??= signal ? `signal ${signal}` : `exit code ${code}`;
        resolve();
        onExit(run, code, signal);
      };
      // A prestarted child may have ended before it was used.
      if (child.exitCode !== null || child.signalCode !== null) return void setImmediate(() => exit(child.exitCode, child.signalCode));
      child.once('error', (err) => { run.ended ??= `could not start: ${err.message}`; resolve(); });
      child.once('exit', exit);
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
    const bound = BOUND_LINE.exec(line);
    if (bound) {
      run.bound ??= { port: Number(bound[1]), apiPort: Number(bound[2]) };
      log.debug({ component: 'proxy', pid: run.pid, ...run.bound }, 'configurable-http-proxy holds its ports');
      return;
    }
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

/**
 * Resolves with the ports the child holds once its own API answers: after the child said it
 * holds both ports, and while it still runs. Rejects when it ends, cannot listen, is
 * cancelled or `timeoutMs` passes.
 */
export async function waitForApi(run: ChpRun, api: { ip: string; authToken: string; timeoutMs: number; cancelled: () => boolean }): Promise<BoundPorts> {
  const deadline = Date.now() + api.timeoutMs;
  let client: ChpClient | undefined;
  for (;;) {
    if (api.cancelled()) throw new Error('configurable-http-proxy start cancelled: the supervisor was stopped');
    if (run.ended) throw new Error(`configurable-http-proxy ended (${run.ended}) before its API answered${lastOutput(run)}`);
    if (run.fatal) throw new Error(`configurable-http-proxy could not listen: ${run.fatal}`);
    // Not asked before the child holds the port: until then an answer there is another process's.
    if (run.bound) {
      client ??= new ChpClient({ apiUrl: urlOf(api.ip, run.bound.apiPort), authToken: api.authToken, timeoutMs: 2000 });
      try {
        await client.getRoutes();
        // It held the port when it said so; it must still be there for the answer to be its.
        if (run.ended) throw new Error(`configurable-http-proxy ended (${run.ended}) as its API answered${lastOutput(run)}`);
        return run.bound;
      } catch (err) {
        if (!(err instanceof ProxyApiError) || err.status !== 0) throw err;
      }
    }
    if (Date.now() >= deadline) {
      const what = run.bound ? `API at ${client!.apiUrl} did not answer` : 'did not say it holds its ports';
      throw new Error(`configurable-http-proxy ${what} within ${api.timeoutMs} ms${lastOutput(run)}`);
    }
    await Promise.race([delay(PROBE_INTERVAL_MS), run.exited]);
  }
}

/** `http://127.0.0.1:8001`, `http://[::1]:8001`: a URL of one of the proxy's ports. */
export function urlOf(ip: string, port: number): string {
  return `http://${ip.includes(':') ? `[${ip}]` : ip}:${port}`;
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

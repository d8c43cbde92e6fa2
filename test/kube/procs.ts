import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** One supervised component: its process, log file and exit. */
export interface Component {
  name: string;
  child: ChildProcess;
  logPath: string;
  /** Set once the process has exited. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  exited: Promise<void>;
}

const EXIT_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * Starts the plane's processes with their output in `logsDir/<name>.log` and guarantees
 * they die with us: on stop(), on normal exit, and on SIGINT/SIGTERM/SIGHUP.
 */
export class Supervisor {
  readonly logsDir: string;
  readonly components: Component[] = [];
  #removeOnExit: string | undefined;
  #onExit = () => {
    this.killAllNow();
    if (this.#removeOnExit) rmSync(this.#removeOnExit, { recursive: true, force: true, maxRetries: 3 });
  };
  #onSignal = (signal: NodeJS.Signals) => {
    this.#onExit();
    this.#unhook();
    // Re-raise so the default behaviour (terminate) still happens when nobody else listens.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };

  #died: { promise: Promise<Component>; resolve: (c: Component) => void } = Promise.withResolvers<Component>();

  /**
   * @param opts.handleSignals also kill on SIGINT/SIGTERM/SIGHUP (then re-raise the signal)
   * @param opts.removeOnExit a directory to delete if the process exits without stopAll()
   */
  constructor(logsDir: string, opts: { handleSignals?: boolean; removeOnExit?: string } = {}) {
    this.logsDir = logsDir;
    this.#removeOnExit = opts.removeOnExit;
    process.on('exit', this.#onExit);
    if (opts.handleSignals ?? true) for (const s of EXIT_SIGNALS) process.on(s, this.#onSignal);
  }

  /** Spawns `command args` as component `name`, logging stdout and stderr to one file. */
  start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Component {
    const logPath = join(this.logsDir, `${name}.log`);
    const fd = openSync(logPath, 'a');
    let child: ChildProcess;
    try {
      child = spawn(command, args, { stdio: ['ignore', fd, fd], env });
    } finally {
      closeSync(fd);
    }
    const component: Component = { name, child, logPath, exit: undefined, exited: Promise.resolve() };
    component.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        component.exit = { code, signal };
        this.#died.resolve(component);
        resolve();
      });
      child.once('error', (error) => {
        component.exit = { code: null, signal: null };
        appendFileSync(logPath, `spawn failed: ${error.message}\n`);
        this.#died.resolve(component);
        resolve();
      });
    });
    this.components.push(component);
    return component;
  }

  /** Resolves with the first component to exit: a plane with a dead part is broken. */
  died(): Promise<Component> {
    return this.#died.promise;
  }

  /** The last `lines` lines of every component's log, headed by name and exit status. */
  tails(lines = 25): string {
    return this.components
      .map((c) => {
        let text = '';
        try {
          text = readFileSync(c.logPath, 'utf8');
        } catch {
          text = '(no log)';
        }
        const status = c.exit ? `exited code=${c.exit.code} signal=${c.exit.signal}` : 'running';
        const tail = text.trimEnd().split('\n').slice(-lines).join('\n');
        return `----- ${c.name} (${status}) ${c.logPath}\n${tail}`;
      })
      .join('\n');
  }

  /** SIGTERM everything, SIGKILL what is still alive after `graceMs`, and wait for all exits. */
  async stopAll(graceMs = 3000): Promise<void> {
    const alive = this.components.filter((c) => c.exit === undefined);
    for (const c of alive.reverse()) c.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const c of alive) if (c.exit === undefined) c.child.kill('SIGKILL');
    }, graceMs);
    await Promise.all(alive.map((c) => c.exited));
    clearTimeout(timer);
    this.#unhook();
  }

  /** Synchronous last resort for process exit: no time for graceful shutdown. */
  killAllNow(): void {
    for (const c of this.components) {
      if (c.exit === undefined && c.child.pid !== undefined) {
        try {
          process.kill(c.child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }

  #unhook(): void {
    process.off('exit', this.#onExit);
    for (const s of EXIT_SIGNALS) process.off(s, this.#onSignal);
  }
}

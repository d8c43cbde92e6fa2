/**
 * Waiting on real signals: the engines' own answers, streamed by the image's
 * `start status --watch` probe, raced against process exits, aborts and a deadline.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { GroupHandle } from './processes.ts';
import type { ClusterRecord } from './state.ts';

/** What `start status` prints (see images/cluster/entrypoint/status.py). */
export interface EngineStatus {
  jupyter: boolean | null;
  dask: { up: boolean; workers: number };
  ipp: { up: boolean; engines: number };
  spark: { up: boolean; workers: number } | null;
}

interface Waiter {
  test: (status: EngineStatus) => boolean;
  resolve: (status: EngineStatus) => void;
  reject: (err: Error) => void;
}

/** A running `start status --watch`; `until(test)` resolves on the first status that passes. */
export class StatusWatcher {
  #child: ChildProcess;
  #latest: EngineStatus | undefined;
  #waiters = new Set<Waiter>();
  #stderr: string[] = [];
  #ended: Error | undefined;

  /** `account`: run the probe as the cluster's owner (it reads their files, their ports admit only them). */
  constructor(entrypoint: string, env: Record<string, string>, cwd: string, account?: { uid: number; gid: number }) {
    const as = account ? { uid: account.uid, gid: account.gid } : {};
    this.#child = spawn(entrypoint, ['status', '--watch'], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'], ...as });
    createInterface({ input: this.#child.stdout! }).on('line', (line) => {
      try {
        this.#update(JSON.parse(line) as EngineStatus);
      } catch {
        this.#stderr.push(line);
      }
    });
    createInterface({ input: this.#child.stderr! }).on('line', (line) => {
      this.#stderr.push(line);
      if (this.#stderr.length > 20) this.#stderr.shift();
    });
    this.#child.once('exit', (code) => this.#end(new Error(`the status probe exited (${code}): ${this.#stderr.join('\n')}`)));
    this.#child.once('error', (err) => this.#end(err));
  }

  get latest(): EngineStatus | undefined {
    return this.#latest;
  }

  #update(status: EngineStatus): void {
    this.#latest = status;
    for (const waiter of this.#waiters) {
      if (waiter.test(status)) {
        this.#waiters.delete(waiter);
        waiter.resolve(status);
      }
    }
  }

  #end(err: Error): void {
    this.#ended ??= err;
    for (const waiter of this.#waiters) waiter.reject(err);
    this.#waiters.clear();
  }

  until(test: (status: EngineStatus) => boolean): Promise<EngineStatus> {
    if (this.#latest && test(this.#latest)) return Promise.resolve(this.#latest);
    if (this.#ended) return Promise.reject(this.#ended);
    return new Promise((resolve, reject) => this.#waiters.add({ test, resolve, reject }));
  }

  close(): void {
    this.#end(new Error('the status probe was closed'));
    this.#child.kill('SIGTERM');
  }
}

/** Why a wait ended early: carries the log to show the user. */
export class WaitFailure extends Error {
  readonly logFile: string | undefined;
  constructor(message: string, logFile?: string) {
    super(message);
    this.logFile = logFile;
  }
}

export interface Tripwire {
  /** Settles when something the wait depends on is gone (a process group exited). */
  promise: Promise<unknown>;
  /** The failure to report then. */
  failure: () => WaitFailure;
}

/**
 * `promise`, unless a tripwire fires, the signal aborts or `timeoutMs` passes first.
 * Timeouts blame `timeoutLog`.
 */
export async function within<T>(
  what: string,
  promise: Promise<T>,
  options: { timeoutMs: number; signal: AbortSignal; tripwires: Tripwire[]; timeoutLog?: string },
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const guards = [
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new WaitFailure(`${what}: not within ${Math.round(options.timeoutMs / 1000)}s`, options.timeoutLog)), options.timeoutMs);
    }),
    new Promise<never>((_, reject) => {
      onAbort = () => reject(new WaitFailure(`launch cancelled while waiting for ${what}`));
      if (options.signal.aborted) onAbort();
      else options.signal.addEventListener('abort', onAbort, { once: true });
    }),
    ...options.tripwires.map((t) => t.promise.then(() => Promise.reject(t.failure()))),
  ];
  try {
    return await Promise.race([promise, ...guards]);
  } finally {
    clearTimeout(timer);
    if (onAbort) options.signal.removeEventListener('abort', onAbort);
    // Losing guards settle later; nobody listens to them any more.
    for (const g of guards) g.catch(() => {});
  }
}

/** Tests on `start status` output: have `n` workers joined each engine? */
export function joined(record: ClusterRecord, n: number) {
  const engines = n * record.enginesPerWorker;
  return {
    dask: (s: EngineStatus) => s.dask.workers >= n,
    ipp: (s: EngineStatus) => s.ipp.engines >= engines,
    spark: (s: EngineStatus) => (s.spark?.workers ?? 0) >= n,
  };
}

/** A wait ends early when this group's leader exits. */
export function groupTripwire(name: string, handle: GroupHandle, logFile: string): Tripwire {
  return { promise: handle.exited, failure: () => new WaitFailure(`${name} stopped unexpectedly`, logFile) };
}

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/** A held lock; release() lets the next waiter in. */
export interface HeldLock {
  release(): Promise<void>;
}

/** flock(1)'s exit code when `-n` finds the lock taken. */
const BUSY = 75;

/**
 * Takes an exclusive flock(1) on `path`, shared with build.sh's style of locking, and holds it
 * in a small child process until release(). If this process dies, the child's stdin closes,
 * it exits and the kernel drops the lock: a crash never leaves a stale lock behind.
 * `onWait` is called once when another process holds it.
 */
export async function acquireFlock(path: string, onWait?: (path: string) => void): Promise<HeldLock> {
  mkdirSync(dirname(path), { recursive: true });
  const first = await holder(['-n', '-E', String(BUSY), path]);
  if (typeof first !== 'number') return first;
  if (first !== BUSY) throw new Error(`flock ${path} exited ${first}`);
  onWait?.(path);
  const second = await holder([path]);
  if (typeof second === 'number') throw new Error(`flock ${path} exited ${second} while waiting`);
  return second;
}

/** Resolves with the held lock once the child says so, or with flock's exit code. */
function holder(flockArgs: string[]): Promise<HeldLock | number> {
  return new Promise((resolve, reject) => {
    // The child prints one line once it holds the lock, then waits for its stdin to close.
    const child: ChildProcess = spawn('flock', [...flockArgs, 'sh', '-c', 'echo held; exec cat >/dev/null'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const exited = new Promise<number>((done) => child.once('exit', (code) => done(code ?? 1)));
    child.once('error', reject);
    child.stdout!.once('data', () => {
      child.stdout!.destroy();
      resolve({
        release: async () => {
          child.stdin!.end();
          await exited;
        },
      });
    });
    void exited.then((code) => resolve(code));
  });
}

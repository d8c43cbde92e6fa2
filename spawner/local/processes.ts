/**
 * Process groups on one machine: spawn a detached leader (its own group, so
 * `process.kill(-pgid)` reaches everything it starts), check, and kill groups.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer } from 'node:net';

export interface GroupHandle {
  /** Leader pid; equal to the group id since the leader is detached. */
  pid: number;
  /** Settles when the leader exits (only for groups this process spawned). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface SpawnGroupOptions {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  /** stdout and stderr are appended here (opened by the hub, so the file stays the hub's). */
  logFile: string;
  /** Run as this account (uid and gid; supplementary groups are dropped). */
  account?: { uid: number; gid: number };
}

/** Start a detached process group whose output goes to a log file. */
export function spawnGroup(options: SpawnGroupOptions): GroupHandle {
  const fd = openSync(options.logFile, 'a', 0o600);
  try {
    const child = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      stdio: ['ignore', fd, fd],
      ...(options.account ? { uid: options.account.uid, gid: options.account.gid } : {}),
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', () => resolve({ code: -1, signal: null }));
    });
    if (child.pid === undefined) throw new Error(`could not start ${options.command}`);
    // The hub must be able to exit (or restart) without taking clusters along.
    child.unref();
    return { pid: child.pid, exited };
  } finally {
    closeSync(fd);
  }
}

/** Whether any process of the group is left. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Signal one process (not its group). */
export function signalProcess(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/**
 * Resolve true once every group is gone, false at the deadline. Polls kill(-pgid, 0):
 * groups adopted after a restart offer no exit event.
 */
export async function waitGroupsGone(pgids: number[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!pgids.some(groupAlive)) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** SIGTERM the groups, SIGKILL whatever is left after `graceMs`; resolves when all are gone. */
export async function killGroups(pgids: number[], graceMs: number): Promise<void> {
  for (const pgid of pgids) signalGroup(pgid, 'SIGTERM');
  if (await waitGroupsGone(pgids, graceMs)) return;
  for (const pgid of pgids) signalGroup(pgid, 'SIGKILL');
  if (!(await waitGroupsGone(pgids, 5000))) {
    throw new Error(`process groups ${pgids.filter(groupAlive).join(', ')} survived SIGKILL`);
  }
}

/** `count` distinct free TCP ports on 127.0.0.1 (held open together so they differ). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: count }, () => new Promise<import('node:net').Server>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  })));
  const ports = servers.map((s) => (s.address() as import('node:net').AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** The last `lines` lines of a log file ('' if it cannot be read). */
export async function tailFile(path: string, lines = 30): Promise<string> {
  try {
    const handle = await open(path, 'r');
    try {
      const { size } = await handle.stat();
      const length = Math.min(size, 64 * 1024);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      return buffer.toString('utf8').split('\n').filter(Boolean).slice(-lines).join('\n');
    } finally {
      await handle.close();
    }
  } catch {
    return '';
  }
}

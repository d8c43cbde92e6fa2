/**
 * One OS account per student when the hub runs as root (the way JupyterHub's local
 * spawner uses system users): created on first launch with useradd, no login shell,
 * named `{prefix}{safe login}` so every login maps to one valid, distinct user name.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { safeName } from '../names.ts';

const run = promisify(execFile);

/** Linux user names are at most 32 characters (useradd's limit). */
const MAX_USER_NAME = 32;

/** A student's OS account. */
export interface Account {
  name: string;
  uid: number;
  gid: number;
}

/** `{prefix}{login}` when the login is already a clean lowercase name, else with a hash (see names.ts). */
export function accountName(prefix: string, login: string): string {
  return `${prefix}${safeName(login, MAX_USER_NAME - prefix.length)}`;
}

/** The account called `name`, or undefined (from the system's user database, NSS included). */
export async function lookupAccount(name: string): Promise<Account | undefined> {
  try {
    const { stdout } = await run('getent', ['passwd', name]);
    const [, , uid, gid] = stdout.trim().split(':');
    return { name, uid: Number(uid), gid: Number(gid) };
  } catch {
    return undefined;
  }
}

/** useradd's exit codes worth another try: 10 (a lock on /etc/group), 1 (a lock on /etc/passwd). */
const RETRYABLE = new Set([1, 10]);

let queue: Promise<unknown> = Promise.resolve();

/**
 * The account `name`, created when missing: its own group, `home` as its home directory (not
 * created here) and /usr/sbin/nologin as its shell. Creations run one at a time in this process;
 * another process creating the same account at once is fine (the second one finds it).
 */
export function ensureAccount(name: string, home: string): Promise<Account> {
  const next = queue.catch(() => {}).then(() => create(name, home));
  queue = next;
  return next;
}

async function create(name: string, home: string): Promise<Account> {
  for (let attempt = 1; ; attempt++) {
    const found = await lookupAccount(name);
    if (found) return found;
    try {
      await run('useradd', ['--user-group', '--no-create-home', '--home-dir', home, '--shell', '/usr/sbin/nologin', '--comment', 'clusterhub student', name]);
    } catch (err) {
      const e = err as { code?: number; stderr?: string };
      const raced = await lookupAccount(name);
      if (raced) return raced;
      if (attempt < 5 && RETRYABLE.has(e.code ?? -1)) {
        // Another useradd holds the passwd lock; it is released within milliseconds.
        await new Promise((r) => setTimeout(r, 200 * attempt));
        continue;
      }
      throw new Error(`could not create the OS account ${name}: ${e.stderr?.trim() || String(err)}`);
    }
  }
}

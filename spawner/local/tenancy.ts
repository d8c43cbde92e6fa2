/**
 * Who a local cluster runs as, and what keeps students apart.
 *
 * - `accounts` (the hub is root): each student has an OS account; their processes run under
 *   it; their workspace and runtime files are theirs alone (0700); the hub's state is the
 *   hub's alone; a loopback firewall lets only the student and the hub reach their ports.
 * - `shared` (not root): every cluster runs as the hub's own account, one trust domain. A
 *   second non-admin student is refused unless `local.sharedAccount` says it is fine.
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { chmod, chown, lchown, lstat, mkdir, readdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ClusterError } from '../types.ts';
import { accountName, ensureAccount, type Account } from './accounts.ts';
import { LoopbackFirewall } from './firewall.ts';
import { clusterPaths, type ClusterRecord } from './state.ts';
import { SHARED_DIR } from './venv.ts';

export type TenancyMode = 'accounts' | 'shared';

export interface TenancyOptions {
  mode: TenancyMode;
  stateDir: string;
  /** OS accounts are `{userPrefix}{safe login}` (accounts mode). */
  userPrefix: string;
  /** Shared mode: allow more than one non-admin student anyway. */
  sharedAccount: boolean;
  /** Logins with instructor rights (the shared-mode rule does not count them). */
  admins: readonly string[];
  /** The loopback firewall (accounts mode); tests may pass their own. */
  firewall?: LoopbackFirewall;
}

/** The mode the hub's own uid gives. */
export function defaultMode(): TenancyMode {
  return process.getuid?.() === 0 ? 'accounts' : 'shared';
}

/** What the admin page and the start log say in shared mode. */
export const SHARED_WARNING = 'The hub does not run as root: every cluster runs as the hub\'s own OS account, so students are not isolated from each other '
  + '(one student\'s code can read another\'s files and reach their engines). Run the hub as root for a class; see the README\'s Security section.';

/**
 * Shared mode: the refusal for `login`, or undefined. Non-admins are refused while another
 * non-admin's workspace exists (their files would be readable), unless `sharedAccount`.
 */
export function sharedAccountRefusal(login: string, workspaces: readonly string[], rule: { sharedAccount: boolean; admins: readonly string[] }): string | undefined {
  if (rule.sharedAccount || rule.admins.includes(login)) return undefined;
  const other = workspaces.find((w) => w !== login && !rule.admins.includes(w));
  if (!other) return undefined;
  return `${login} cannot launch: the hub does not run as root, so ${login}'s cluster would run as the same OS account as ${other}'s and could read ${other}'s files. `
    + 'Run the hub as root (each student gets an account), or set local.sharedAccount: true if every student may see every other\'s work.';
}

/** The first directory above `dir` that other accounts cannot pass through, if any. */
function closedAncestor(dir: string): string | undefined {
  for (let ancestor = dirname(resolve(dir)); ; ancestor = dirname(ancestor)) {
    if (!(statSync(ancestor).mode & 0o001)) return ancestor;
    if (ancestor === dirname(ancestor)) return undefined;
  }
}

/**
 * Where students' workspaces and runtime files go: under stateDir, unless a directory above it
 * is closed to other accounts (a checkout in /root, a 0700 temporary directory); then under
 * /var/lib/clusterhub/students-{hash of stateDir}, root's and passable, as stateDir would be.
 */
export function studentDirFor(stateDir: string, mode: TenancyMode): string {
  if (mode === 'shared' || !closedAncestor(stateDir)) return stateDir;
  return join(SHARED_DIR, `students-${createHash('sha256').update(resolve(stateDir)).digest('hex').slice(0, 12)}`);
}

/** Keeps students apart; one per backend. */
export class Tenancy {
  readonly mode: TenancyMode;
  readonly #options: TenancyOptions;
  readonly #firewall: LoopbackFirewall | undefined;
  /** Parent of students' `workspaces/` and `runtime/`. */
  readonly studentDir: string;
  #ready: Promise<void> | undefined;

  constructor(options: TenancyOptions) {
    this.#options = options;
    this.mode = options.mode;
    this.studentDir = studentDirFor(options.stateDir, options.mode);
    this.#firewall = options.mode === 'accounts' ? options.firewall ?? new LoopbackFirewall() : undefined;
  }

  /** Where `user`'s record, logs, workspace and runtime files are. */
  paths(user: string) {
    return clusterPaths(this.#options.stateDir, user, this.studentDir);
  }

  /** Warnings for the start log and the admin page. */
  warnings(): string[] {
    return this.mode === 'shared' ? [SHARED_WARNING] : [];
  }

  /** Once: directory modes and the firewall (accounts mode). */
  setup(): Promise<void> {
    this.#ready ??= this.#setup();
    return this.#ready;
  }

  async #setup(): Promise<void> {
    const dir = this.#options.stateDir;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (this.mode === 'shared') return;
    // Others may pass through stateDir to their own workspace, never list it or read the hub's files.
    await chmod(dir, 0o711);
    for (const entry of await readdir(dir)) {
      if (entry === 'workspaces' || entry === 'runtime') continue;
      const path = join(dir, entry);
      const info = await lstat(path);
      if (!info.isSymbolicLink()) await chmod(path, info.isDirectory() ? 0o700 : 0o600);
    }
    if (this.studentDir !== dir) {
      await mkdir(this.studentDir, { recursive: true, mode: 0o711 });
      await chmod(this.studentDir, 0o711);
    }
    for (const shared of ['workspaces', 'runtime']) {
      await mkdir(join(this.studentDir, shared), { recursive: true });
      await chmod(join(this.studentDir, shared), 0o711);
    }
    await mkdir(join(dir, 'clusters'), { recursive: true, mode: 0o700 });
    await this.#firewall!.setup().catch((err: Error) => {
      throw new Error(`the hub runs as root but cannot install its loopback firewall (iptables), which keeps students from each other's dashboards: ${err.message}`);
    });
  }

  /** Refuse a launch the mode does not allow (shared mode's rule). */
  async checkLaunch(login: string): Promise<void> {
    if (this.mode !== 'shared') return;
    const workspaces = await readdir(join(this.studentDir, 'workspaces')).catch(() => [] as string[]);
    const refusal = sharedAccountRefusal(login, workspaces, this.#options);
    if (refusal) throw new ClusterError(refusal, 403);
  }

  /**
   * Before a launch: the student's account (accounts mode), their workspace and runtime
   * directory, each theirs alone (0700). Returns the account, or undefined in shared mode.
   */
  async prepare(login: string): Promise<Account | undefined> {
    await this.setup();
    const paths = this.paths(login);
    await mkdir(paths.dir, { recursive: true, mode: 0o700 });
    await mkdir(paths.workspace, { recursive: true, mode: 0o700 });
    await mkdir(paths.runtimeDir, { recursive: true, mode: 0o700 });
    if (this.mode === 'shared') return undefined;
    const account = await ensureAccount(accountName(this.#options.userPrefix, login), paths.workspace);
    await this.#own(paths.workspace, account);
    await this.#own(paths.runtimeDir, account);
    // A temporary directory of their own: the hub's TMPDIR may be closed to them, /tmp is shared.
    await mkdir(join(paths.runtimeDir, 'tmp'), { recursive: true, mode: 0o700 });
    await this.give([join(paths.runtimeDir, 'tmp')], account);
    await this.#firewall!.allowOnlyOwner(account);
    return account;
  }

  /** `dir` (and, when it was someone else's, everything in it) belongs to `account`, mode 0700. */
  async #own(dir: string, account: Account): Promise<void> {
    const info = await stat(dir);
    if (info.uid !== account.uid) await chownTree(dir, account);
    await chmod(dir, 0o700);
  }

  /** Hand files the hub wrote for a student (certificates) to them. */
  async give(paths: string[], account: Account | undefined): Promise<void> {
    if (!account) return;
    for (const path of paths) {
      await chown(path, account.uid, account.gid);
      await chmod(path, (await stat(path)).isDirectory() ? 0o700 : 0o600);
    }
  }

  /** After a stop: the student's firewall rules go. */
  async release(record: ClusterRecord | undefined): Promise<void> {
    if (record?.account && this.#firewall) await this.#firewall.remove(record.account);
  }

  /** After a restart: rules for every running cluster that was adopted. */
  async adopt(record: ClusterRecord): Promise<void> {
    if (!record.account || !this.#firewall) return;
    await this.setup();
    await this.#firewall.allowOnlyOwner(record.account);
  }
}

/** lchown all the way down: a symbolic link is re-owned itself, never what it points at. */
async function chownTree(path: string, account: Account): Promise<void> {
  const info = await lstat(path);
  await lchown(path, account.uid, account.gid);
  if (info.isDirectory()) {
    for (const entry of await readdir(path)) await chownTree(join(path, entry), account);
  }
}

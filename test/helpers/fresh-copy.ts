/**
 * The repository as a newcomer has it: its files in a fresh temporary folder (node_modules
 * hard-linked to save the install), and the processes that run from such a folder.
 */
import { execFile } from 'node:child_process';
import { copyFile, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The checkout these tests run from. */
export const REPO = join(import.meta.dirname, '..', '..');

/** A copy of the repository's files (tracked, plus new ones not ignored) in a fresh folder. */
export async function freshCopy(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'clusterhub-newcomer-'));
  const { stdout } = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO, maxBuffer: 64 << 20 });
  for (const file of new Set(stdout.split('\0').filter(Boolean))) {
    const from = join(REPO, file);
    const stat = await lstat(from).catch(() => undefined);
    if (!stat) continue; // deleted in the work tree, not yet committed
    await mkdir(dirname(join(dir, file)), { recursive: true });
    if (stat.isSymbolicLink()) await symlink(await readlink(from), join(dir, file));
    else await copyFile(from, join(dir, file));
  }
  // Hard links where the file system allows (same disk), else a plain copy: `npm start` still installs.
  await run('cp', ['-al', join(REPO, 'node_modules'), join(dir, 'node_modules')])
    .catch(() => run('cp', ['-a', join(REPO, 'node_modules'), join(dir, 'node_modules')]));
  return dir;
}

/** Live processes whose working directory or command line is inside `dir`: `pid: command`. */
export async function processesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cwd = await readlink(`/proc/${entry}/cwd`).catch(() => '');
    const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).replaceAll('\0', ' ');
    if (!cmdline) continue; // gone, or a zombie
    if (cwd === dir || cwd.startsWith(`${dir}/`) || cmdline.includes(`${dir}/`)) found.push(`${entry}: ${cmdline.slice(0, 160)}`);
  }
  return found;
}

/** SIGKILL to every process running from `dir` (the safety net after a failed test). */
export async function killProcessesUnder(dir: string): Promise<void> {
  for (const line of await processesUnder(dir)) {
    try {
      process.kill(Number(line.split(':')[0]), 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Remove the copy. */
export async function removeCopy(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/**
 * A copy of the cluster entrypoint (images/cluster/bin and entrypoint/) that students'
 * accounts can run: the checkout may sit under a 0700 home such as /root. Root-owned and
 * read-only to everyone else, one directory per content hash, written once.
 */
import { createHash } from 'node:crypto';
import { chmod, cp, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name === '__pycache__') continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...await files(path));
    else out.push(path);
  }
  return out.sort();
}

/** sha256 over the relative names and contents of bin/ and entrypoint/ under `imageDir`. */
async function contentHash(imageDir: string): Promise<string> {
  const hash = createHash('sha256');
  for (const part of ['bin', 'entrypoint']) {
    for (const file of await files(join(imageDir, part))) {
      hash.update(relative(imageDir, file)).update('\0').update(await readFile(file)).update('\0');
    }
  }
  return hash.digest('hex').slice(0, 12);
}

/** Make every directory 0755 and every file 0644 (0755 when executable) under `dir`. */
async function publish(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await publish(path);
    else await chmod(path, (await stat(path)).mode & 0o100 ? 0o755 : 0o644);
  }
}

/**
 * `{sharedDir}/cluster-{hash}/bin/start`, copied from `imageDir` (images/cluster) unless a copy
 * with the same content is already there. Returns the entrypoint to run.
 */
export async function installEntrypoint(imageDir: string, sharedDir: string): Promise<string> {
  const target = join(sharedDir, `cluster-${await contentHash(imageDir)}`);
  const start = join(target, 'bin', 'start');
  if (await stat(start).then(() => true, () => false)) return start;
  await mkdir(sharedDir, { recursive: true, mode: 0o755 });
  const tmp = `${target}.${process.pid}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  for (const part of ['bin', 'entrypoint']) {
    await cp(join(imageDir, part), join(tmp, part), { recursive: true, filter: (src) => !src.includes('__pycache__') });
  }
  await publish(tmp);
  // Another process may have installed the same content meanwhile: either copy is right.
  await rename(tmp, target).catch(async () => rm(tmp, { recursive: true, force: true }));
  return start;
}

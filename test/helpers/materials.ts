/** Course materials for tests: a tiny git repository on disk (no network here), cloned from file://. */
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The README the materials repository holds. */
export const MATERIALS_README = '# Week 1: Dask, Spark and IPython Parallel\n';

/** A git repository with `README.md` committed on branch `main`; returns its directory. */
export async function makeMaterialsRepo(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'clusterhub-materials-'));
  // Readable by the student's account that clones it (mkdtemp makes it 0700).
  await chmod(dir, 0o755);
  await writeFile(join(dir, 'README.md'), MATERIALS_README);
  const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=Teacher', '-c', 'user.email=t@example.edu', ...args], { cwd: dir, stdio: 'ignore' });
  git('init', '-q', '-b', 'main');
  git('add', '.');
  git('commit', '-q', '-m', 'materials');
  return dir;
}

/** A bare copy of the materials (`materials.git` in a new directory), as a git server holds them. */
export async function makeBareMaterialsRepo(): Promise<string> {
  const source = await makeMaterialsRepo();
  const dir = await mkdtemp(join(tmpdir(), 'clusterhub-materials-server-'));
  const bare = join(dir, 'materials.git');
  execFileSync('git', ['clone', '-q', '--bare', source, bare], { stdio: 'ignore' });
  return bare;
}

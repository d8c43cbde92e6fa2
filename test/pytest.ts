/**
 * The cluster entrypoint's Python tests (images/cluster/tests), run with the clusters' own
 * Python: the virtualenv of images/cluster/requirements.txt, plus pytest from
 * images/cluster/requirements-test.txt installed beside it (never into it, never in the image).
 *
 * CLI: `node test/pytest.ts [pytest arguments]`; exits with pytest's status.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ensureVenv, REQUIREMENTS_FILE } from '../spawner/local/venv.ts';

const CLUSTER_IMAGE = resolve(import.meta.dirname, '../images/cluster');
const TEST_REQUIREMENTS = join(CLUSTER_IMAGE, 'requirements-test.txt');
const TESTS = join(CLUSTER_IMAGE, 'tests');

/** Runs a command with inherited output; resolves with its exit code. */
function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'], env });
    child.once('error', reject);
    child.once('close', (code) => resolvePromise(code ?? 1));
  });
}

/** pytest's packages for this virtualenv, installed once into a directory of their own. */
async function ensurePytest(venvDir: string, python: string): Promise<string> {
  const requirements = await readFile(TEST_REQUIREMENTS, 'utf8');
  const hash = createHash('sha256').update(venvDir).update(requirements).digest('hex').slice(0, 12);
  const dir = join(dirname(venvDir), `pytest-${hash}`);
  if (await stat(dir).then(() => true, () => false)) return dir;
  console.error(`[pytest] installing ${TEST_REQUIREMENTS} into ${dir}`);
  const building = `${dir}.${process.pid}.tmp`;
  const code = await run(python, ['-m', 'pip', 'install', '--disable-pip-version-check', '--quiet', '--target', building, '-r', TEST_REQUIREMENTS]);
  if (code !== 0) throw new Error(`pip install -r ${TEST_REQUIREMENTS} failed (exit ${code})`);
  // Another run may have finished first: its directory is as good as ours.
  await rename(building, dir).catch(() => rm(building, { recursive: true, force: true }));
  return dir;
}

/** Runs images/cluster/tests with the clusters' Python; resolves with pytest's exit code. */
export async function runPytest(args: string[] = []): Promise<number> {
  const venv = await ensureVenv({
    python: process.env.CLUSTERHUB_PYTHON ?? 'python3', requirementsFile: REQUIREMENTS_FILE, log: (line) => console.error(line),
  });
  const python = join(venv.bin, 'python');
  const site = await ensurePytest(venv.venvDir, python);
  // No cache or bytecode written into the checkout.
  const env = { ...process.env, PYTHONPATH: site, PYTHONDONTWRITEBYTECODE: '1' };
  return run(python, ['-m', 'pytest', '-p', 'no:cacheprovider', TESTS, ...args], env);
}

if (import.meta.main) process.exit(await runPytest(process.argv.slice(2)));

/**
 * The Python environment of local clusters: a virtualenv built once from
 * images/cluster/requirements.txt (the file the cluster image installs), reused afterwards.
 *
 * When the hub runs as root, students' accounts run it: it then lives in a root-owned,
 * world-readable place ({@link SHARED_DIR}) and is built from a Python they can run.
 *
 * CLI: `node spawner/local/venv.ts [--python python3] [--venv DIR]` builds it and prints its bin dir.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The requirements file shared with the cluster image. */
export const REQUIREMENTS_FILE = resolve(import.meta.dirname, '../../images/cluster/requirements.txt');

const MARKER = '.clusterhub-ready';

/**
 * Root-owned, world-readable home of what students' accounts run (the venv, the entrypoint):
 * `/var/lib/clusterhub`, or `CLUSTERHUB_SHARED_DIR` (a cold first run measured beside a warm one).
 */
export const SHARED_DIR = process.env['CLUSTERHUB_SHARED_DIR'] || '/var/lib/clusterhub';

/** Where a non-root run keeps what it builds: `~/.cache/clusterhub`, or `CLUSTERHUB_CACHE`. */
export function cacheDir(home = homedir()): string {
  return process.env['CLUSTERHUB_CACHE'] || join(home, '.cache', 'clusterhub');
}

/** An account with no rights of its own: what it can run, every student can run. */
const NOBODY = 65534;

function isRoot(): boolean {
  return process.getuid?.() === 0;
}
const LOCK_WAIT_MS = 30 * 60_000;

export interface EnsureVenvOptions {
  /** Python used to create the virtualenv (3.11 or newer). */
  python: string;
  /** Where to build; default `~/.cache/clusterhub/venv-{sha256(requirements)[:12]}`. */
  venvDir?: string;
  requirementsFile: string;
  /** Receives progress lines (steps and pip's own output). */
  log: (line: string) => void;
}

export interface Venv {
  venvDir: string;
  /** Its bin directory: python, jupyter, dask, ipcontroller… */
  bin: string;
}

/**
 * The default place for a virtualenv with these requirements (a new file, a new venv):
 * `{@link cacheDir}/venv-{hash}`, or `{@link SHARED_DIR}/venv-{hash}` as root (a home
 * like /root is 0700: students' accounts could not run what is inside).
 */
export function defaultVenvDir(requirements: string, home = homedir(), root = isRoot()): string {
  const hash = createHash('sha256').update(requirements).digest('hex').slice(0, 12);
  return join(root ? SHARED_DIR : cacheDir(home), `venv-${hash}`);
}

function run(command: string, args: string[], log: (line: string) => void, uid?: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(uid === undefined ? {} : { uid, gid: uid, cwd: '/' }) });
    const tail: string[] = [];
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        tail.push(line);
        if (tail.length > 20) tail.shift();
        log(`  ${line}`);
      });
    }
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolvePromise();
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code}:\n${tail.join('\n')}`));
    });
  });
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path, constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** One builder at a time per directory, across processes (parallel test files build one venv). */
async function acquireLock(lockFile: string, marker: string, hash: string, log: (line: string) => void): Promise<boolean> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  let told = false;
  while (Date.now() < deadline) {
    try {
      const handle = await open(lockFile, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number(await readFile(lockFile, 'utf8').catch(() => ''));
    if (owner && !pidAlive(owner)) {
      await rm(lockFile, { force: true });
      continue;
    }
    if (!told) log(`[venv] another process (pid ${owner || '?'}) is building it; waiting`);
    told = true;
    if ((await readFile(marker, 'utf8').catch(() => '')) === hash) return false;
    // Bounded wait on the other builder's marker; pip offers nothing to subscribe to.
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`timed out waiting for the virtualenv lock ${lockFile}`);
}

/** Whether an account without rights (nobody) can run `python -c code`. */
export async function othersCanRun(python: string, code = 'pass'): Promise<boolean> {
  return run(python, ['-c', code], () => {}, NOBODY).then(() => true, () => false);
}

/**
 * As root, the Python to build students' venv from: `python` when every account can run it
 * (a pyenv under /root cannot be), else the first `python3` on PATH, /usr/bin or
 * /usr/local/bin that can be; otherwise an error naming local.python.
 */
export async function pythonForEveryone(python: string): Promise<string> {
  // What root itself would run: nobody's own PATH search may find a different python3.
  const onPath = (name: string) => (process.env.PATH ?? '').split(':').filter(Boolean).map((dir) => join(dir, name));
  const configured = python.includes('/') ? [python] : onPath(python);
  for (const candidate of configured) {
    if (await exists(candidate)) {
      if (await othersCanRun(candidate)) return candidate;
      break;
    }
  }
  const candidates = [...onPath('python3'), '/usr/bin/python3', '/usr/local/bin/python3'];
  for (const candidate of candidates) {
    if (await exists(candidate) && await othersCanRun(candidate, 'import sys, venv, ensurepip; assert sys.version_info >= (3, 11)')) return candidate;
  }
  throw new Error(`local.python: ${python} cannot be run by students' accounts (the hub runs as root, clusters run as each student) and no python3 ≥ 3.11 that every account can run was found; set local.python to one (e.g. /usr/bin/python3)`);
}

/** Build the virtualenv if it is not built yet (marker written only after success). */
export async function ensureVenv(options: EnsureVenvOptions): Promise<Venv> {
  const requirements = await readFile(options.requirementsFile, 'utf8');
  const hash = createHash('sha256').update(requirements).digest('hex');
  const venvDir = resolve(options.venvDir ?? defaultVenvDir(requirements));
  const bin = join(venvDir, 'bin');
  const marker = join(venvDir, MARKER);
  if ((await readFile(marker, 'utf8').catch(() => '')) === hash) return { venvDir, bin };

  await mkdir(dirname(venvDir), { recursive: true, mode: 0o755 });
  const lockFile = `${venvDir}.lock`;
  if (!(await acquireLock(lockFile, marker, hash, options.log))) return { venvDir, bin };
  try {
    if ((await readFile(marker, 'utf8').catch(() => '')) === hash) return { venvDir, bin };
    const started = Date.now();
    const shared = isRoot() && options.venvDir === undefined;
    if (!(await exists(join(bin, 'python')))) {
      const python = shared ? await pythonForEveryone(options.python) : options.python;
      options.log(`[venv] step 1/2: creating ${venvDir} with ${python}`);
      await run(python, ['-m', 'venv', venvDir], options.log);
    } else {
      options.log(`[venv] step 1/2: reusing the unfinished ${venvDir}`);
    }
    options.log(`[venv] step 2/2: pip install -r ${options.requirementsFile} (takes minutes the first time)`);
    await run(join(bin, 'python'), ['-m', 'pip', 'install', '--disable-pip-version-check', '-r', options.requirementsFile], options.log);
    if (shared && !(await othersCanRun(join(bin, 'python'), 'import distributed, ipyparallel, jupyterlab'))) {
      throw new Error(`${venvDir} was built but students' accounts cannot run it: check that it and its base Python are readable by everyone`);
    }
    await writeFile(marker, hash);
    options.log(`[venv] ready in ${((Date.now() - started) / 1000).toFixed(0)}s: ${bin}`);
    return { venvDir, bin };
  } finally {
    await rm(lockFile, { force: true });
  }
}

function argValue(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const venvDir = argValue(args, '--venv');
  ensureVenv({
    python: argValue(args, '--python') ?? process.env.CLUSTERHUB_PYTHON ?? 'python3',
    ...(venvDir ? { venvDir } : {}),
    requirementsFile: REQUIREMENTS_FILE,
    log: (line) => console.error(line),
  }).then(
    (venv) => console.log(venv.bin),
    (err: Error) => {
      console.error(err.message);
      process.exit(1);
    },
  );
}

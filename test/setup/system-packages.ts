/**
 * The Debian packages the tests need, and the set-up step that installs the missing ones.
 *
 *   node test/setup/system-packages.ts [NAME…]   check (only NAME… if given), install what is missing when root
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { acquireFlock } from '../helpers/flock.ts';
import { SetupError } from './setup-error.ts';

/** A Debian package the tests need, and for what. */
export interface SystemPackage {
  /** Debian package name, as `apt-get install` takes it. */
  name: string;
  /** What needs it, for the progress line. */
  neededBy: string;
  /** An environment variable that, when set, names a replacement and makes the package unneeded. */
  unlessEnv?: string;
}

/**
 * Every system package the test suite needs: the one list to extend. Dependencies that apt
 * pulls in by itself (buildah's uidmap, …) are not listed.
 */
export const SYSTEM_PACKAGES: readonly SystemPackage[] = [
  { name: 'chromium', neededBy: 'the browser tests (playwright-core drives /usr/bin/chromium)', unlessEnv: 'CHROMIUM_PATH' },
  { name: 'openjdk-17-jre-headless', neededBy: 'Spark in the clusters', unlessEnv: 'JAVA_HOME' },
  { name: 'python3-venv', neededBy: "the clusters' virtualenv (python3 -m venv)" },
  { name: 'git', neededBy: 'course materials cloned into new workspaces' },
  { name: 'iproute2', neededBy: "the test plane's host routes (ip route)" },
  { name: 'buildah', neededBy: 'cluster images for the real Kubernetes node' },
  { name: 'runc', neededBy: "the real node's container runtime" },
  { name: 'mmdebstrap', neededBy: 'the Debian base of the cluster images' },
  { name: 'iptables', neededBy: 'kube-proxy and NetworkPolicy on the real node' },
  { name: 'ipset', neededBy: 'NetworkPolicy on the real node' },
  { name: 'containernetworking-plugins', neededBy: "the real node's CNI bridge" },
  { name: 'conntrack', neededBy: 'kube-proxy on the real node' },
  { name: 'libseccomp-dev', neededBy: 'building runc with seccomp for the real node' },
];

const run = promisify(execFile);
// Machine-wide, as apt and dpkg are: runs with other caches (CLUSTERHUB_CACHE) install one at a time too.
const LOCK = '/run/lock/clusterhub-system-packages.lock';
const APT_ENV = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
// apt waits for another apt (outside this lock) instead of failing at once.
const APT_OPTS = ['-qq', '-o', 'DPkg::Lock::Timeout=600'];

/** The packages of `wanted` that dpkg does not report as installed (output of dpkg-query, one `name\tstatus` a line). */
export function notInstalled(wanted: readonly string[], dpkgOutput: string): string[] {
  const installed = new Set(
    dpkgOutput
      .split('\n')
      .map((line) => line.split('\t'))
      .filter(([, status]) => status === 'installed')
      .map(([name]) => name),
  );
  return wanted.filter((name) => !installed.has(name));
}

/** The one line a user without root reads: the exact command that installs what is missing. */
export function installCommand(missing: readonly string[]): string {
  return `sudo apt-get update && sudo apt-get install -y ${missing.join(' ')}`;
}

/** The packages the suite needs here: all of SYSTEM_PACKAGES but those replaced through their environment variable. */
export function neededPackages(env: NodeJS.ProcessEnv = process.env): SystemPackage[] {
  return SYSTEM_PACKAGES.filter((p) => !(p.unlessEnv && env[p.unlessEnv]));
}

async function missingNow(names: readonly string[]): Promise<string[]> {
  // dpkg-query exits 1 when it never heard of a package, and still reports the others.
  const { stdout } = await run('dpkg-query', ['-W', '-f=${Package}\t${db:Status-Status}\n', ...names]).catch(
    (error: { stdout?: string; code?: unknown }) => {
      if (error.code === 'ENOENT') throw new SetupError(`cannot check system packages without dpkg-query (not Debian?); the tests need: ${names.join(' ')}`);
      return { stdout: error.stdout ?? '' };
    },
  );
  return notInstalled(names, stdout);
}

/** Runs one apt-get step with its output kept quiet; a failure shows apt's last lines. */
function apt(args: string[], log: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn('apt-get', [...APT_OPTS, ...args], { env: APT_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) {
        log(`[packages] apt-get ${args.join(' ')}: done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
        resolve();
      } else {
        const tail = output.trimEnd().split('\n').slice(-15).join('\n');
        reject(new SetupError(`apt-get ${args.join(' ')} exited ${code}:\n${tail}`));
      }
    });
  });
}

/**
 * Installs the missing packages of {@link SYSTEM_PACKAGES} when running as root (`apt-get
 * update` once, then `apt-get install -y` of only those), one run at a time across
 * processes. Without root, a missing package is a {@link SetupError} naming the command.
 */
export async function ensureSystemPackages(log: (line: string) => void, needed: readonly SystemPackage[] = neededPackages()): Promise<void> {
  const names = needed.map((p) => p.name);
  const missingFirst = await missingNow(names);
  if (missingFirst.length === 0) {
    log(`[packages] all ${names.length} present: ${names.join(' ')}`);
    return;
  }
  if (process.getuid?.() !== 0) {
    throw new SetupError(`missing Debian packages ${missingFirst.join(', ')}; install them with: ${installCommand(missingFirst)}`);
  }
  const lock = await acquireFlock(LOCK, (path) => log(`[packages] another run is installing packages (${path}); waiting`));
  try {
    // Whoever held the lock may have installed them meanwhile.
    const missing = await missingNow(names);
    if (missing.length === 0) {
      log('[packages] installed meanwhile by another run');
      return;
    }
    for (const p of needed.filter((p) => missing.includes(p.name))) log(`[packages] missing ${p.name}: for ${p.neededBy}`);
    log('[packages] step 1/2: apt-get update');
    await apt(['update'], log);
    log(`[packages] step 2/2: apt-get install -y ${missing.join(' ')}`);
    await apt(['install', '-y', ...missing], log);
    const still = await missingNow(missing);
    if (still.length > 0) throw new SetupError(`apt-get install reported success, but still missing: ${still.join(', ')}`);
  } finally {
    await lock.release();
  }
}

if (import.meta.main) {
  const only = process.argv.slice(2);
  const packages = only.length > 0 ? only.map((name) => SYSTEM_PACKAGES.find((p) => p.name === name) ?? { name, neededBy: 'asked for on the command line' }) : undefined;
  ensureSystemPackages((line) => process.stdout.write(`${line}\n`), packages).catch((error) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}

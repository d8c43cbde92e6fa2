/**
 * The toolchains the set-up steps build with, checked before any long step: Go for the
 * control plane (test/kube/build.sh), Python for the clusters' virtualenv.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { SetupError } from './setup-error.ts';

const run = promisify(execFile);
const KUBE_DIR = join(import.meta.dirname, '..', 'kube');
/** The Go modules build.sh builds; each go.mod's `go` line is the version it needs. */
const GO_MODULES = ['tools', 'etcd'].map((m) => join(KUBE_DIR, m, 'go.mod'));
/** requirements.txt is pinned for 3.11 and 3.12. */
export const MIN_PYTHON = [3, 11] as const;

/** `[major, minor, patch]` of the first `N.N[.N]` in `text` (`go1.26.8`, `Python 3.11.7`). */
export function parseVersion(text: string): number[] | undefined {
  const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

/** Whether version `v` is at least `min`, comparing part by part. */
export function atLeast(v: readonly number[], min: readonly number[]): boolean {
  for (let i = 0; i < min.length; i++) {
    const a = v[i] ?? 0;
    const b = min[i] ?? 0;
    if (a !== b) return a > b;
  }
  return true;
}

/** The highest `go` directive of the control plane's modules: what build.sh needs. */
export function requiredGo(goMods: readonly string[] = GO_MODULES): number[] {
  const versions = goMods.map((path) => {
    const m = /^go (\d+\.\d+(?:\.\d+)?)\s*$/m.exec(readFileSync(path, 'utf8'));
    if (!m?.[1]) throw new Error(`${path} has no go directive`);
    return parseVersion(m[1])!;
  });
  return versions.reduce((a, b) => (atLeast(a, b) ? a : b));
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The Go build.sh uses: GO, then `go` on PATH, then /usr/local/go/bin/go. */
export function findGo(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env['GO']) return env['GO'];
  const onPath = (env['PATH'] ?? '').split(delimiter).map((dir) => join(dir, 'go')).find(executable);
  return onPath ?? (executable('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
}

async function versionOf(cmd: string, args: string[]): Promise<string | undefined> {
  try {
    const { stdout, stderr } = await run(cmd, args, { env: { ...process.env, GOTOOLCHAIN: 'local' } });
    return (stdout || stderr).trim();
  } catch {
    return undefined;
  }
}

/**
 * Checks Go and Python; returns one line per toolchain, or throws a {@link SetupError} whose
 * message says what is missing and how to fix it.
 */
export async function checkToolchains(env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const goMin = requiredGo();
  const goWanted = `Go ≥ ${goMin.slice(0, 2).join('.')}`;
  const go = findGo(env);
  const goVersion = go ? await versionOf(go, ['env', 'GOVERSION']) : undefined;
  const goParsed = goVersion ? parseVersion(goVersion) : undefined;
  if (!go || !goParsed) throw new SetupError(`${goWanted} is needed to build the control plane (test/kube/build.sh): no go found (install Go or set GO=/path/to/go)`);
  if (!atLeast(goParsed, goMin)) throw new SetupError(`${goWanted} is needed to build the control plane (test/kube/build.sh): ${go} is ${goVersion} (install a newer Go or set GO=/path/to/go)`);

  const python = env['CLUSTERHUB_PYTHON'] ?? 'python3';
  const pyWanted = `Python ≥ ${MIN_PYTHON.join('.')}`;
  const pyVersion = await versionOf(python, ['--version']);
  const pyParsed = pyVersion ? parseVersion(pyVersion) : undefined;
  if (!pyParsed) throw new SetupError(`${pyWanted} is needed for the clusters' virtualenv: ${python} not found (install python3 and python3-venv, or set CLUSTERHUB_PYTHON)`);
  if (!atLeast(pyParsed, MIN_PYTHON)) throw new SetupError(`${pyWanted} is needed for the clusters' virtualenv: ${python} is ${pyVersion} (set CLUSTERHUB_PYTHON to a newer one)`);
  return [`${goWanted}: ${goVersion} (${go})`, `${pyWanted}: ${pyVersion} (${python})`];
}

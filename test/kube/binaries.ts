import { execFile, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BUILD_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'build.sh');

/** Absolute paths of the control-plane executables in the versioned cache. */
export interface Binaries {
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kubectl: string;
  etcd: string;
  kwok: string;
}

/** Where build.sh puts (or has put) each binary; build.sh owns the versions. */
export async function locateBinaries(): Promise<Binaries> {
  const { stdout } = await run('bash', [BUILD_SCRIPT, '--print']);
  const dirs = Object.fromEntries(
    stdout
      .trim()
      .split('\n')
      .map((line) => line.split('=', 2) as [string, string]),
  );
  const need = (key: string): string => {
    const dir = dirs[key];
    if (!dir) throw new Error(`build.sh --print did not name ${key}: ${stdout}`);
    return dir;
  };
  const kube = need('KUBE_BIN');
  return {
    kubeApiserver: join(kube, 'kube-apiserver'),
    kubeControllerManager: join(kube, 'kube-controller-manager'),
    kubeScheduler: join(kube, 'kube-scheduler'),
    kubectl: join(kube, 'kubectl'),
    etcd: join(need('ETCD_BIN'), 'etcd'),
    kwok: join(need('KWOK_BIN'), 'kwok'),
  };
}

function missing(bins: Binaries): string[] {
  return Object.values(bins).filter((path) => {
    try {
      accessSync(path, constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
}

/**
 * Returns the binaries, running build.sh first when some are missing (its progress goes to
 * stderr; a cold build takes 10–25 minutes on 2 cores). With `build: false`, or
 * CLUSTERHUB_KUBE_NO_BUILD=1, a missing binary is an error naming the command to run.
 */
export async function ensureBinaries(opts: { build?: boolean } = {}): Promise<Binaries> {
  const bins = await locateBinaries();
  const absent = missing(bins);
  if (absent.length === 0) return bins;
  const build = (opts.build ?? true) && process.env['CLUSTERHUB_KUBE_NO_BUILD'] !== '1';
  if (!build) {
    throw new Error(`control-plane binaries missing: ${absent.join(', ')}; run: bash ${BUILD_SCRIPT}`);
  }
  process.stderr.write(`[kube] missing ${absent.length} binaries; running ${BUILD_SCRIPT}\n`);
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn('bash', [BUILD_SCRIPT], { stdio: ['ignore', process.stderr, process.stderr] });
    child.once('error', reject);
    child.once('exit', resolve);
  });
  const still = missing(bins);
  if (code !== 0 || still.length > 0) {
    throw new Error(`bash ${BUILD_SCRIPT} exited ${code}; still missing: ${still.join(', ') || 'none'}`);
  }
  return bins;
}

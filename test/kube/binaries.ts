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

/** The real node's executables: built ones from the cache, runc and CNI plugins from Debian. */
export interface NodeBinaries {
  kubelet: string;
  kubeProxy: string;
  containerd: string;
  ctr: string;
  shim: string;
  coredns: string;
  kubeRouter: string;
  localPath: string;
  /** Debian's runc (package runc). */
  runc: string;
  /** Debian's CNI plugins (package containernetworking-plugins). */
  cniBinDir: string;
}

async function cacheDirs(): Promise<(key: string) => string> {
  const { stdout } = await run('bash', [BUILD_SCRIPT, '--print']);
  const dirs = Object.fromEntries(
    stdout
      .trim()
      .split('\n')
      .map((line) => line.split('=', 2) as [string, string]),
  );
  return (key: string): string => {
    const dir = dirs[key];
    if (!dir) throw new Error(`build.sh --print did not name ${key}: ${stdout}`);
    return dir;
  };
}

/** Where build.sh puts (or has put) each binary; build.sh owns the versions. */
export async function locateBinaries(): Promise<Binaries> {
  const need = await cacheDirs();
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

/** Where `build.sh --node` puts the real node's binaries. */
export async function locateNodeBinaries(): Promise<NodeBinaries> {
  const need = await cacheDirs();
  const containerd = need('CONTAINERD_BIN');
  return {
    kubelet: join(need('KUBE_BIN'), 'kubelet'),
    kubeProxy: join(need('KUBE_BIN'), 'kube-proxy'),
    containerd: join(containerd, 'containerd'),
    ctr: join(containerd, 'ctr'),
    shim: join(containerd, 'containerd-shim-runc-v2'),
    coredns: join(need('COREDNS_BIN'), 'coredns'),
    kubeRouter: join(need('KUBE_ROUTER_BIN'), 'kube-router'),
    localPath: join(need('LOCAL_PATH_BIN'), 'local-path-provisioner'),
    runc: '/usr/bin/runc',
    cniBinDir: '/usr/lib/cni',
  };
}

/** The node's binaries, running `build.sh --node` first when some are missing. */
export async function ensureNodeBinaries(opts: { build?: boolean } = {}): Promise<NodeBinaries> {
  const bins = await locateNodeBinaries();
  const debian = { runc: bins.runc, bridge: join(bins.cniBinDir, 'bridge'), hostLocal: join(bins.cniBinDir, 'host-local') };
  const absentDebian = missing(debian);
  if (absentDebian.length > 0) {
    throw new Error(`missing ${absentDebian.join(', ')}: apt-get install runc containernetworking-plugins iptables ipset conntrack`);
  }
  const built = { ...bins, runc: debian.runc, cniBinDir: debian.bridge };
  if (missing(built).length === 0) return bins;
  await runBuild(['--node'], opts.build, missing(built));
  const still = missing(built);
  if (still.length > 0) throw new Error(`bash ${BUILD_SCRIPT} --node left missing: ${still.join(', ')}`);
  return bins;
}

function missing(bins: Record<string, string>): string[] {
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
  const absent = missing({ ...bins });
  if (absent.length === 0) return bins;
  await runBuild([], opts.build, absent);
  const still = missing({ ...bins });
  if (still.length > 0) throw new Error(`bash ${BUILD_SCRIPT} left missing: ${still.join(', ')}`);
  return bins;
}

/** Runs build.sh with `args` (progress on stderr), unless building is switched off. */
async function runBuild(args: string[], allowed: boolean | undefined, absent: string[]): Promise<void> {
  const build = (allowed ?? true) && process.env['CLUSTERHUB_KUBE_NO_BUILD'] !== '1';
  if (!build) throw new Error(`binaries missing: ${absent.join(', ')}; run: bash ${BUILD_SCRIPT} ${args.join(' ')}`);
  process.stderr.write(`[kube] missing ${absent.length} binaries; running ${BUILD_SCRIPT} ${args.join(' ')}\n`);
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn('bash', [BUILD_SCRIPT, ...args], { stdio: ['ignore', process.stderr, process.stderr] });
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`bash ${BUILD_SCRIPT} ${args.join(' ')} exited ${code}`);
}

/**
 * The host side of the real node: the one-node-per-machine lock, the pod bridge, the
 * kernel settings it needs, and the clean-up of everything a node leaves on the host
 * (also what a killed run left behind).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Addresses of the real node. kwok's fake nodes use 10.244.{0…249}.0/24, Services 10.96.0.0/16. */
export const NODE_NET = {
  bridge: 'clusterhub0',
  podCidr: '10.244.255.0/24',
  /** The bridge's address: the node's InternalIP, cluster DNS, and the source of host traffic to pods. */
  gateway: '10.244.255.1',
  prefix: 24,
  serviceCidr: '10.96.0.0/16',
} as const;

/** Parent cgroup of the node's pods (cgroupfs driver), so clean-up touches nothing else. */
export const CGROUP_ROOT = 'clusterhub-node';

/** Our own filter chain: keeps pod traffic on the machine (bridge ↔ bridge and host only). */
const GUARD_CHAIN = 'CLUSTERHUB-NODE';

/** Runs a command; rejects with its stderr unless `allowFail`. */
export async function sh(cmd: string, args: string[], opts: { allowFail?: boolean } = {}): Promise<string> {
  try {
    const { stdout } = await execFileAsync(cmd, args, { maxBuffer: 64 << 20 });
    return stdout;
  } catch (error) {
    if (opts.allowFail) return '';
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`${cmd} ${args.join(' ')} failed: ${stderr.trim() || String(error)}`, { cause: error });
  }
}

/**
 * Takes the machine-wide real-node lock (kube-proxy and the firewall own global iptables
 * chains: two nodes would fight). Held by a `flock` child whose stdin is ours, so the lock
 * goes when this process does, however it ends.
 */
export async function lockNode(lockFile: string, log: (line: string) => void): Promise<() => void> {
  const child: ChildProcess = spawn('flock', [lockFile, 'sh', '-c', 'echo locked; exec cat >/dev/null'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const waiting = setTimeout(() => log(`another real node holds ${lockFile}; waiting for it…`), 1000);
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout?.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`flock ${lockFile} exited ${code}`)));
      child.once('error', reject);
    });
  } finally {
    clearTimeout(waiting);
  }
  child.unref();
  return () => {
    child.stdin?.end();
    child.kill();
  };
}

/** Sets a sysctl and returns a function restoring the old value. */
async function setSysctl(key: string, value: string): Promise<() => Promise<void>> {
  const path = `/proc/sys/${key.replaceAll('.', '/')}`;
  const old = (await readFile(path, 'utf8')).trim();
  if (old !== value) await writeFile(path, value);
  return async () => {
    if (old !== value) await writeFile(path, old).catch(() => {});
  };
}

/**
 * The pod bridge with the node's address, routes for the pod range and the Service range
 * (kube-proxy's DNAT rewrites Service addresses; a packet it does not know dies on the
 * bridge instead of leaving the machine), forwarding confined to the bridge, and the
 * bridge-netfilter hook the NetworkPolicy firewall and kube-proxy need.
 * Returns the teardown.
 */
export async function setUpHostNetwork(): Promise<() => Promise<void>> {
  const { bridge, gateway, prefix, serviceCidr } = NODE_NET;
  await sh('ip', ['link', 'add', bridge, 'type', 'bridge']);
  await sh('ip', ['addr', 'add', `${gateway}/${prefix}`, 'dev', bridge]);
  await sh('ip', ['link', 'set', bridge, 'up']);
  await sh('ip', ['route', 'replace', serviceCidr, 'dev', bridge, 'src', gateway]);
  await sh('iptables', ['-w', '-N', GUARD_CHAIN]);
  await sh('iptables', ['-w', '-A', GUARD_CHAIN, '-i', bridge, '!', '-o', bridge, '-j', 'DROP']);
  await sh('iptables', ['-w', '-A', GUARD_CHAIN, '!', '-i', bridge, '-o', bridge, '-j', 'DROP']);
  await sh('iptables', ['-w', '-I', 'FORWARD', '1', '-j', GUARD_CHAIN]);
  const restores = [
    await setSysctl('net.ipv4.ip_forward', '1'),
    await setSysctl('net.bridge.bridge-nf-call-iptables', '1'),
  ];
  return async () => {
    await removeHostNetwork();
    for (const restore of restores.reverse()) await restore();
  };
}

/** Removes the bridge (its routes go with it) and our guard chain, if present. */
export async function removeHostNetwork(): Promise<void> {
  if (existsSync(`/sys/class/net/${NODE_NET.bridge}`)) await sh('ip', ['link', 'del', NODE_NET.bridge]);
  await sh('iptables', ['-w', '-D', 'FORWARD', '-j', GUARD_CHAIN], { allowFail: true });
  await sh('iptables', ['-w', '-F', GUARD_CHAIN], { allowFail: true });
  await sh('iptables', ['-w', '-X', GUARD_CHAIN], { allowFail: true });
}

/** Unmounts everything mounted below `dir` (deepest first): rootfs overlays, netns, volumes. */
export async function unmountBelow(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => Boolean(point) && (point === dir || point!.startsWith(`${dir}/`)));
  for (const point of mounts.sort((a, b) => b.length - a.length)) {
    await sh('umount', ['-l', point], { allowFail: true });
  }
}

/** Mount points left by a real node of a plane that is gone (its directory under tmp). */
export async function staleNodeMountRoots(liveRoot: string | undefined): Promise<string[]> {
  const roots = new Set<string>();
  for (const line of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
    const point = line.split(' ')[4] ?? '';
    const m = /^(.*\/clusterhub-plane-[^/]+\/node)\//.exec(point);
    if (m?.[1] && m[1] !== liveRoot) roots.add(m[1]);
  }
  return [...roots];
}

/** Kills every process in the node's pod cgroups and removes them, in every v1 hierarchy. */
export async function killPodCgroups(): Promise<number> {
  let killed = 0;
  const base = '/sys/fs/cgroup';
  const hierarchies = existsSync(base) ? await readdir(base) : [];
  const dirs: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    dirs.push(dir);
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (entry.isDirectory()) await walk(join(dir, entry.name));
    }
  };
  for (const h of hierarchies) {
    const root = join(base, h, CGROUP_ROOT);
    if (existsSync(root)) await walk(root);
  }
  for (const dir of dirs) {
    const procs = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
    for (const pid of procs.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
        killed++;
      } catch {
        // already gone
      }
    }
  }
  for (const dir of dirs.sort((a, b) => b.length - a.length)) {
    for (let i = 0; i < 20 && existsSync(dir); i++) {
      await rmdir(dir).catch(() => new Promise((r) => setTimeout(r, 100)));
    }
  }
  return killed;
}

/** Creates the pods' parent cgroup in every v1 hierarchy (the kubelet insists it exists). */
export async function createCgroupRoot(): Promise<void> {
  const base = '/sys/fs/cgroup';
  for (const h of await readdir(base)) {
    const dir = join(base, h);
    // Only real hierarchies (not the named `systemd` one nor the v2 `unified` mount).
    if (h === 'unified' || !existsSync(join(dir, 'cgroup.procs'))) continue;
    await mkdir(join(dir, CGROUP_ROOT), { recursive: true }).catch(() => {});
  }
}

/**
 * Kills node agents (containerd, shims, kubelet, kube-proxy, CoreDNS, kube-router, the
 * provisioner) of a plane whose process died without stopping them: under the lock, any
 * process whose command line names a plane's node directory or the node is stale. With
 * `dir`, what is left of that node (a shim that outlived containerd).
 */
export async function killStaleAgents(nodeName: string, dir?: string): Promise<number> {
  let killed = 0;
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ');
    const stale = dir
      ? cmdline.includes(`${dir}/`)
      : /\/clusterhub-plane-[^/ ]+\/node\//.test(cmdline) || cmdline.includes(`--hostname-override=${nodeName}`);
    if (stale) {
      try {
        process.kill(Number(pid), 'SIGKILL');
        killed++;
      } catch {
        // already gone
      }
    }
  }
  return killed;
}

/**
 * Removes every KUBE-* chain (kubelet's, kube-proxy's, kube-router's) and the rules that
 * jump to them, in filter, nat and mangle, in one `iptables-restore --noflush` per table:
 * other rules on the machine stay as they are. Then kube-router's KUBE-* ipsets.
 */
export async function removeKubeRules(): Promise<void> {
  for (const table of ['filter', 'nat', 'mangle']) {
    const saved = await sh('iptables-save', ['-t', table], { allowFail: true });
    const chains = [...saved.matchAll(/^:(KUBE-\S+)/gm)].map((m) => m[1]!);
    const jumps = saved.split('\n').filter((l) => /^-A (?!KUBE-)\S+ .*-j KUBE-/.test(l)).map((l) => l.replace(/^-A /, '-D '));
    if (chains.length === 0 && jumps.length === 0) continue;
    const script = [`*${table}`, ...jumps, ...chains.map((c) => `-F ${c}`), ...chains.map((c) => `-X ${c}`), 'COMMIT', ''].join('\n');
    await new Promise<void>((resolve, reject) => {
      const child = spawn('iptables-restore', ['-w', '--noflush'], { stdio: ['pipe', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`iptables-restore (${table}) exited ${code}: ${stderr.trim()}`))));
      child.stdin?.end(script);
    });
  }
  for (const name of (await sh('ipset', ['list', '-n'], { allowFail: true })).split('\n')) {
    if (name.startsWith('KUBE-')) await sh('ipset', ['destroy', name], { allowFail: true });
  }
}

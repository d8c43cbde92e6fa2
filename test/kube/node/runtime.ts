/**
 * The node's container runtime: containerd 2.x with its own root, state and socket under
 * the node's directory, Debian's runc, and the CNI bridge on the node's pod range.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Supervisor } from '../procs.ts';
import { NODE_NET, sh } from './host.ts';

/** Where one node's containerd keeps everything. */
export interface RuntimePaths {
  socket: string;
  root: string;
  state: string;
  config: string;
  cniConfDir: string;
  cniDataDir: string;
}

/** Paths under `dir` (kept short: a unix socket path must stay under 108 bytes). */
export function runtimePaths(dir: string): RuntimePaths {
  return {
    socket: join(dir, 'c.sock'),
    root: join(dir, 'root'),
    state: join(dir, 'state'),
    config: join(dir, 'config.toml'),
    cniConfDir: join(dir, 'net.d'),
    cniDataDir: join(dir, 'ipam'),
  };
}

/**
 * containerd's config (version 3). `restrict_oom_score_adj`: root here lacks
 * CAP_SYS_RESOURCE, so runc could not lower a sandbox's oom_score_adj and every pod would
 * fail. The sandbox image is pinned to a local one: there is no registry to pull from.
 */
export function renderContainerdConfig(p: RuntimePaths, opts: { sandboxImage: string; runc: string; cniBinDir: string }): string {
  const q = JSON.stringify;
  return `version = 3
root = ${q(p.root)}
state = ${q(p.state)}
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = ${q(p.socket)}

[ttrpc]
  address = ${q(`${p.socket}.ttrpc`)}

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(join(p.root, 'opt'))}

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = ${q(opts.sandboxImage)}

[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = ${q(opts.runc)}
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = [${q(opts.cniBinDir)}]
    conf_dir = ${q(p.cniConfDir)}
    max_conf_num = 1

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`;
}

/** The CNI network: Debian's bridge + host-local plugins on the node's bridge and range. */
export function renderCniConfig(p: RuntimePaths): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: 'clusterhub',
      plugins: [
        {
          type: 'bridge',
          bridge: NODE_NET.bridge,
          isGateway: true,
          // No masquerade: pods talk to each other and to the host, never past the machine.
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            dataDir: p.cniDataDir,
            ranges: [[{ subnet: NODE_NET.podCidr, gateway: NODE_NET.gateway }]],
            routes: [{ dst: '0.0.0.0/0' }],
          },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  );
}

/** Writes the configs and starts containerd; resolves once its socket answers. */
export async function startContainerd(
  sup: Supervisor,
  bin: { containerd: string; ctr: string },
  p: RuntimePaths,
  opts: { sandboxImage: string; runc: string; cniBinDir: string; until: (what: string, check: () => Promise<boolean>) => Promise<void> },
): Promise<void> {
  await Promise.all([p.root, p.state, p.cniConfDir, p.cniDataDir].map((d) => mkdir(d, { recursive: true })));
  await writeFile(p.config, renderContainerdConfig(p, opts));
  await writeFile(join(p.cniConfDir, '10-clusterhub.conflist'), renderCniConfig(p));
  // The shim and runc are found on PATH next to containerd.
  const env = { ...process.env, PATH: `${bin.containerd.replace(/\/[^/]+$/, '')}:${process.env['PATH'] ?? ''}` };
  sup.start('containerd', bin.containerd, ['--config', p.config, '--log-level', 'warn'], env);
  await opts.until('containerd', async () => (await sh(bin.ctr, ['--address', p.socket, 'version'], { allowFail: true })).includes('Server:'));
}

/** `ctr` against this node's containerd, in the namespace the kubelet uses. */
export function ctr(bin: string, p: RuntimePaths, args: string[], opts: { allowFail?: boolean } = {}): Promise<string> {
  return sh(bin, ['--address', p.socket, '--namespace', 'k8s.io', ...args], opts);
}

/** Imports an OCI archive (as `buildah push … oci-archive:` writes it) under its own name. */
export async function importImage(bin: string, p: RuntimePaths, archive: string): Promise<void> {
  await ctr(bin, p, ['images', 'import', '--snapshotter', 'overlayfs', archive]);
}

/** Kills and deletes every task and container in the node's containerd (pods included). */
export async function removeAllContainers(bin: string, p: RuntimePaths): Promise<void> {
  const ids = (await ctr(bin, p, ['containers', 'ls', '-q'], { allowFail: true })).split('\n').filter(Boolean);
  for (const id of ids) await ctr(bin, p, ['tasks', 'kill', '-s', 'SIGKILL', id], { allowFail: true });
  for (const id of ids) {
    await ctr(bin, p, ['tasks', 'delete', '-f', id], { allowFail: true });
    await ctr(bin, p, ['containers', 'delete', id], { allowFail: true });
  }
}

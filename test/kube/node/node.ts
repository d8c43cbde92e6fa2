/**
 * One real node beside the kwok nodes: containerd + runc, the CNI bridge, a kubelet
 * registered with the plane's API server under its own node identity, kube-proxy,
 * CoreDNS, kube-router's NetworkPolicy firewall and the local-path PVC provisioner.
 * Everything it starts or creates on the host is removed by stop().
 */
import { CoreV1Api, type KubeConfig, type V1Toleration } from '@kubernetes/client-node';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { testPorts } from '../../helpers/ports.ts';
import { ensureNodeBinaries } from '../binaries.ts';
import { generateClientCert, type PlaneCerts } from '../certs.ts';
import { Supervisor } from '../procs.ts';
import { watchUntil } from '../watch.ts';
import {
  createCgroupRoot, killPodCgroups, killStaleAgents, lockNode, NODE_NET, removeHostNetwork, removeKubeRules, setUpHostNetwork, sh, staleNodeMountRoots, unmountBelow,
} from './host.ts';
import { ensureImages, type NodeImages } from './images.ts';
import { kubeletArgs, kubeRouterArgs, REAL_NODE_LABEL, renderCorefile, renderKubeletConfig, writeKubeProxyConfig } from './kubelet.ts';
import { startLocalPath } from './storage.ts';
import { ctr, importImage, removeAllContainers, runtimePaths, startContainerd } from './runtime.ts';

/** What the plane hands the node. */
export interface RealNodeContext {
  /** The plane's directory; the node lives in `root/node`. */
  root: string;
  logsDir: string;
  certs: PlaneCerts;
  /** Admin kubeconfig (the node agents other than the kubelet use it). */
  adminKubeconfig: string;
  kc: KubeConfig;
  /** Writes a kubeconfig for a client certificate. */
  kubeconfigFor: (path: string, cert: string, key: string) => Promise<void>;
  log: (line: string) => void;
  timeoutMs: number;
}

/** A running real node. */
export interface RealNode {
  name: string;
  /** Pods that should run here select this label… */
  nodeSelector: Record<string, string>;
  /** …and tolerate this taint (which keeps every other pod off the node). */
  tolerations: V1Toleration[];
  /** Images present in the node's containerd. */
  images: NodeImages;
  /** The node's address on its bridge (pods see host traffic come from here). */
  address: string;
  /** The default StorageClass (local-path). */
  storageClass: string;
  /** Runs `ctr` against the node's containerd (namespace k8s.io). */
  ctr(args: string[]): Promise<string>;
  /** Milliseconds from startRealNode() to Ready. */
  startupMs: number;
  stop(): Promise<void>;
}

export const REAL_NODE_NAME = 'clusterhub-real-node';
// Machine-wide, not in the cache: a run with its own CLUSTERHUB_CACHE still shares the host's iptables and bridge.
const LOCK_FILE = '/run/lock/clusterhub-real-node.lock';

/** Starts the node and resolves once it is Ready with its agents running. */
export async function startRealNode(ctx: RealNodeContext): Promise<RealNode> {
  const { log } = ctx;
  const [bins, images] = await Promise.all([ensureNodeBinaries(), ensureImages()]);
  const unlock = await lockNode(LOCK_FILE, log);
  const started = performance.now();
  // The clock starts again after the image import (minutes on a busy machine).
  let deadline = Date.now() + ctx.timeoutMs;
  const dir = join(ctx.root, 'node');
  const rt = runtimePaths(join(dir, 'ctd'));
  const agents = new Supervisor(ctx.logsDir);
  const runtime = new Supervisor(ctx.logsDir);
  let teardownNet: (() => Promise<void>) | undefined;

  const until = async (what: string, check: () => Promise<boolean>) => {
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      const dead = [...agents.components, ...runtime.components].find((c) => c.exit);
      if (dead) throw new Error(`${dead.name} exited (code ${dead.exit?.code}) while waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      await agents.stopAll();
      await removeAllContainers(bins.ctr, rt);
      await runtime.stopAll();
      await cleanHost(dir);
      await teardownNet?.();
      unlock();
    })());

  try {
    await cleanHost(undefined, log);
    teardownNet = await setUpHostNetwork();
    await createCgroupRoot();
    await mkdir(dir, { recursive: true });
    const [kubeletPort, kubeletHealthz, proxyHealthz, proxyMetrics] = await testPorts(4);

    await startContainerd(runtime, bins, rt, { sandboxImage: images.sandbox.ref, runc: bins.runc, cniBinDir: bins.cniBinDir, until });
    await Promise.all([images.sandbox, images.cluster].map((i) => importImage(bins.ctr, rt, i.archive)));
    log(`containerd up, images imported (${Math.round(performance.now() - started)} ms)`);
    deadline = Date.now() + ctx.timeoutMs;

    const pki = join(dir, 'pki');
    await mkdir(pki, { recursive: true });
    const nodeCert = await generateClientCert(pki, ctx.certs, 'kubelet', { cn: `system:node:${REAL_NODE_NAME}`, o: 'system:nodes' });
    const kubeletKubeconfig = join(dir, 'kubelet.kubeconfig');
    await ctx.kubeconfigFor(kubeletKubeconfig, nodeCert.cert, nodeCert.key);
    const kubeletConfig = join(dir, 'kubelet.yaml');
    await writeFile(kubeletConfig, renderKubeletConfig(dir, { caCert: ctx.certs.caCert, runtimeSocket: rt.socket, port: kubeletPort!, healthzPort: kubeletHealthz! }));

    const corefile = join(dir, 'Corefile');
    await writeFile(corefile, renderCorefile(ctx.adminKubeconfig));
    agents.start('coredns', bins.coredns, ['-conf', corefile]);
    agents.start('kubelet', bins.kubelet, await kubeletArgs(dir, { name: REAL_NODE_NAME, kubeconfig: kubeletKubeconfig, config: kubeletConfig }));

    await watchUntil(
      ctx.kc,
      '/api/v1/nodes',
      { fieldSelector: `metadata.name=${REAL_NODE_NAME}` },
      (_phase, node) => (node.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True') ? true : undefined),
      { what: `node ${REAL_NODE_NAME} Ready`, timeoutMs: Math.max(1, deadline - Date.now()) },
    );
    // The bridge's range, recorded where NetworkPolicy and proxy agents look for it.
    await ctx.kc.makeApiClient(CoreV1Api).patchNode({ name: REAL_NODE_NAME, body: { spec: { podCIDR: NODE_NET.podCidr, podCIDRs: [NODE_NET.podCidr] } } })
      .catch(() => {});
    log(`kubelet registered ${REAL_NODE_NAME}, Ready (${Math.round(performance.now() - started)} ms)`);

    const proxyConfig = join(dir, 'kube-proxy.yaml');
    await writeKubeProxyConfig(proxyConfig, { kubeconfig: ctx.adminKubeconfig, name: REAL_NODE_NAME, healthzPort: proxyHealthz!, metricsPort: proxyMetrics! });
    agents.start('kube-proxy', bins.kubeProxy, [`--config=${proxyConfig}`, '--v=1']);
    agents.start('kube-router', bins.kubeRouter, kubeRouterArgs({ kubeconfig: ctx.adminKubeconfig, name: REAL_NODE_NAME }));
    const storageClass = await startLocalPath(agents, bins.localPath, { dir, kc: ctx.kc, kubeconfig: ctx.adminKubeconfig, helperImage: images.cluster.ref, node: REAL_NODE_NAME });
    await until('kube-proxy /healthz', async () => (await fetch(`http://127.0.0.1:${proxyHealthz}/healthz`).catch(() => undefined))?.ok === true);
    await until('kube-router firewall chains', async () => (await sh('iptables', ['-w', '-S'], { allowFail: true })).includes('KUBE-ROUTER-FORWARD'));
  } catch (error) {
    const tails = [agents.tails(), runtime.tails()].join('\n');
    await stop().catch(() => {});
    throw new Error(`real node failed to start: ${error instanceof Error ? error.message : String(error)}\n${tails}`, { cause: error });
  }

  const startupMs = Math.round(performance.now() - started);
  log(`real node ${REAL_NODE_NAME} ready in ${startupMs} ms`);
  return {
    name: REAL_NODE_NAME,
    nodeSelector: { [REAL_NODE_LABEL]: 'true' },
    tolerations: [{ key: REAL_NODE_LABEL, operator: 'Equal', value: 'true', effect: 'NoSchedule' }],
    images,
    address: NODE_NET.gateway,
    storageClass: 'local-path',
    ctr: (args) => ctr(bins.ctr, rt, args),
    startupMs,
    stop,
  };
}

/**
 * Removes what a real node leaves on the host: its mounts, pod processes and cgroups, the
 * kube-proxy and kube-router chains and sets, the bridge. With `dir` it cleans that node;
 * without, whatever a node of a plane that died without stopping left behind.
 */
async function cleanHost(dir: string | undefined, log?: (line: string) => void): Promise<void> {
  const stale = await killStaleAgents(REAL_NODE_NAME, dir);
  const roots = dir ? [dir] : await staleNodeMountRoots(undefined);
  for (const root of roots) await unmountBelow(root);
  const killed = await killPodCgroups();
  if (!dir && stale + roots.length + killed > 0) log?.(`cleaned up after a real node that was not stopped (${stale} agents, ${roots.length} dirs, ${killed} pod processes)`);
  // kube-router's own --cleanup-config leaves its chains (and panics on the IPVS part): ours does it.
  await removeKubeRules();
  if (!dir) await removeHostNetwork();
}

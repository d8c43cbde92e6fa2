/**
 * A real Kubernetes control plane for tests: etcd, kube-apiserver, kube-controller-manager,
 * kube-scheduler (built from upstream modules by build.sh) and kwok for fake nodes, on
 * loopback ports with a fresh data directory.
 *
 * With `realNode`, also one real node (node/node.ts) that runs containers.
 *
 *   node test/kube/plane.ts start [--nodes N] [--real-node] [--keep]   run one in the foreground
 */
import { CoreV1Api, Health, KubeConfig } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { ensureBinaries } from './binaries.ts';
import { generateCerts } from './certs.ts';
import { apiserverArgs, etcdArgs, SERVICE_CIDR, startControllers } from './components.ts';
import { claimHostRoutes } from './host-routes.ts';
import { fakeNodePodCidr, renderFakeNode, renderKwokConfig, DEFAULT_NODE_SHAPE, type FakeNodeShape } from './kwok.ts';
import { startRealNode, type RealNode } from './node/node.ts';
import { Supervisor } from './procs.ts';
import { watchUntil } from './watch.ts';
import { testPorts } from '../helpers/ports.ts';

/** Options for {@link startPlane}. */
export interface PlaneOptions {
  /** Fake nodes to create (default 1, or CLUSTERHUB_KUBE_NODES). */
  nodes?: number;
  /** Capacity of each fake node (default cpu 32, memory 256Gi, pods 110). */
  nodeShape?: FakeNodeShape;
  /** Directory for data, certificates and logs (default: a new one under the OS tmp dir). */
  rootDir?: string;
  /** Keep the directory after stop() (default false, or CLUSTERHUB_KUBE_KEEP=1). */
  keep?: boolean;
  /** Bound on the whole start-up once binaries exist (default 180 s). */
  readyTimeoutMs?: number;
  /** Run build.sh when binaries are missing (default true). */
  build?: boolean;
  /** Kill the plane on SIGINT/SIGTERM/SIGHUP (default true; the CLI handles signals itself). */
  handleSignals?: boolean;
  /** Progress lines (default: stderr with a `[plane]` prefix). */
  log?: (line: string) => void;
  /** Also start the real node (default false, or CLUSTERHUB_KUBE_REAL_NODE=1); its start-up has its own bound. */
  realNode?: boolean;
}

/** A running plane. */
export interface Plane {
  /** Admin kubeconfig (client certificate of O=system:masters, data embedded). */
  kubeconfigPath: string;
  /** `https://127.0.0.1:<port>` */
  server: string;
  /** One `<component>.log` per process. */
  logsDir: string;
  /** Milliseconds from startPlane() to ready, binaries already built; 0 for a reused plane. */
  startupMs: number;
  /** Stops every process and removes the data directory (unless kept). Idempotent. */
  stop(): Promise<void>;
  /** A fresh DNS-1123 prefix for names (e.g. namespaces), unique across planes and calls. */
  newPrefix(base?: string): string;
  /** The real node, when asked for. */
  realNode?: RealNode;
  /** Kills kube-apiserver (SIGKILL, as a crash) and resolves once it has exited. Planes this process started only. */
  stopApiServer?(): Promise<void>;
  /** Starts kube-apiserver again on the same port; resolves once /readyz answers. */
  startApiServer?(timeoutMs?: number): Promise<void>;
  /**
   * Freezes kwok (SIGSTOP): pods on fake nodes are scheduled but none starts or goes away
   * until the returned function resumes it. Planes this process started only.
   */
  freezeFakeNodes?(): () => void;
}

const FAKE_NODE_PREFIX = 'kwok-node-';

/**
 * The ranges of a plane that nothing on the host serves, kept on the machine by unreachable
 * routes while it runs: each fake node's podCIDR, and the Service range (no kube-proxy on
 * the host). A real node's bridge or a kube-proxy would take its range out of this set.
 */
export function unservedRanges(opts: { nodes: number }): string[] {
  return [...Array.from({ length: opts.nodes }, (_, i) => fakeNodePodCidr(i)), SERVICE_CIDR];
}

/** Starts a plane and resolves once it is ready: /readyz, Ready nodes, `default` ServiceAccount. */
export async function startPlane(opts: PlaneOptions = {}): Promise<Plane> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`[plane] ${line}\n`));
  const bins = await ensureBinaries({ build: opts.build });
  const started = performance.now();
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 180_000);
  const remaining = () => Math.max(1, deadline - Date.now());
  const nodes = opts.nodes ?? Number(process.env['CLUSTERHUB_KUBE_NODES'] ?? 1);
  const keep = opts.keep ?? process.env['CLUSTERHUB_KUBE_KEEP'] === '1';
  // Node i gets podCIDR 10.244.i.0/24.
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 250) throw new Error(`nodes must be 1–250, got ${nodes}`);

  // Before any pod or Service has an address, so none can be reached off the machine.
  const routes = await claimHostRoutes(unservedRanges({ nodes }), (line) => log(`[routes] ${line}`));
  const root = opts.rootDir ?? (await mkdtemp(join(tmpdir(), 'clusterhub-plane-')));
  const logsDir = join(root, 'logs');
  const pki = join(root, 'pki');
  await Promise.all([mkdir(logsDir, { recursive: true }), mkdir(pki, { recursive: true })]);
  const [certs, { etcdPort, peerPort, apiPort, kcmPort, schedPort, kwokPort }] = await Promise.all([
    generateCerts(pki),
    freePorts(['etcdPort', 'peerPort', 'apiPort', 'kcmPort', 'schedPort', 'kwokPort'] as const),
  ]);
  const server = `https://127.0.0.1:${apiPort}`;
  const kubeconfigPath = join(root, 'kubeconfig');
  const kubeconfigFor = async (path: string, cert: string, key: string) =>
    writeFile(path, await renderKubeconfig(server, certs.caCert, cert, key), { mode: 0o600 });
  await kubeconfigFor(kubeconfigPath, certs.adminCert, certs.adminKey);
  const kwokConfig = join(root, 'kwok.yaml');
  await writeFile(kwokConfig, renderKwokConfig());

  const sup = new Supervisor(logsDir, {
    handleSignals: opts.handleSignals ?? true,
    removeOnExit: keep ? undefined : root,
  });
  let stopped: Promise<void> | undefined;
  let realNode: RealNode | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      // The node first: its pods and host state go while the API server still answers.
      await realNode?.stop();
      await sup.stopAll();
      await routes.release();
      if (!keep) await rm(root, { recursive: true, force: true });
    })());
  // A dead component fails every wait at once instead of at the timeout.
  const guard = <T>(what: string, p: Promise<T>): Promise<T> =>
    Promise.race([
      p,
      sup.died().then((c) => {
        throw new Error(`${c.name} exited (code ${c.exit?.code}, signal ${c.exit?.signal}) while waiting for ${what}`);
      }),
    ]);

  try {
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    sup.start('etcd', bins.etcd, etcdArgs(root, etcdUrl, `http://127.0.0.1:${peerPort}`));
    await guard('etcd', until('etcd /health', remaining(), () => etcdHealthy(etcdUrl)));
    log(`etcd up at ${etcdUrl}`);

    sup.start('kube-apiserver', bins.kubeApiserver, apiserverArgs(certs, etcdUrl, apiPort));
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    const health = new Health(kc);
    await guard('kube-apiserver', until('kube-apiserver /readyz', remaining(), () => health.readyz({}).catch(() => false)));
    log(`kube-apiserver ready at ${server} (${Math.round(performance.now() - started)} ms)`);

    startControllers(sup, bins, certs, kubeconfigPath, kwokConfig, { kcmPort, schedPort, kwokPort });
    const core = kc.makeApiClient(CoreV1Api);
    const shape = opts.nodeShape ?? DEFAULT_NODE_SHAPE;
    await Promise.all(Array.from({ length: nodes }, (_, i) => core.createNode({ body: renderFakeNode(i, shape) })));

    const ready = new Set<string>();
    await guard(
      `${nodes} Ready node(s)`,
      watchUntil(
        kc,
        '/api/v1/nodes',
        {},
        (_phase, node) => {
          if (!node.metadata.name.startsWith(FAKE_NODE_PREFIX)) return undefined;
          if (isSchedulable(node)) ready.add(node.metadata.name);
          else ready.delete(node.metadata.name);
          return ready.size >= nodes ? true : undefined;
        },
        { what: `${nodes} Ready, untainted fake node(s)`, timeoutMs: remaining() },
      ),
    );
    await guard(
      'the default ServiceAccount',
      watchUntil(
        kc,
        '/api/v1/namespaces/default/serviceaccounts',
        { fieldSelector: 'metadata.name=default' },
        (phase) => (phase === 'ADDED' ? true : undefined),
        { what: 'ServiceAccount default/default', timeoutMs: remaining() },
      ),
    );
  } catch (error) {
    const tails = sup.tails();
    await sup.stopAll();
    await routes.release();
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`control plane failed to start: ${message}\n(data kept in ${root})\n${tails}`, { cause: error });
  }

  const startupMs = Math.round(performance.now() - started);
  log(`ready in ${startupMs} ms: KUBECONFIG=${kubeconfigPath}`);
  if (opts.realNode ?? process.env['CLUSTERHUB_KUBE_REAL_NODE'] === '1') {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    try {
      realNode = await startRealNode({ root, logsDir, certs, adminKubeconfig: kubeconfigPath, kc, kubeconfigFor, log, timeoutMs: 240_000 });
    } catch (error) {
      await stop();
      throw error;
    }
  }
  const apiserverCommand = [bins.kubeApiserver, apiserverArgs(certs, `http://127.0.0.1:${etcdPort}`, apiPort)] as const;
  const stopApiServer = async () => {
    const running = sup.components.filter((c) => c.name === 'kube-apiserver' && c.exit === undefined);
    for (const c of running) c.child.kill('SIGKILL');
    await Promise.all(running.map((c) => c.exited));
    log('kube-apiserver killed');
  };
  const startApiServer = async (timeoutMs = 300_000) => {
    sup.start('kube-apiserver', ...apiserverCommand);
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    const health = new Health(kc);
    await until('kube-apiserver /readyz after a restart', timeoutMs, () => health.readyz({}).catch(() => false));
    log('kube-apiserver ready again');
  };
  const freezeFakeNodes = () => {
    const kwok = sup.components.filter((c) => c.name === 'kwok' && c.exit === undefined);
    for (const c of kwok) c.child.kill('SIGSTOP');
    log('kwok frozen');
    return () => {
      for (const c of kwok) c.child.kill('SIGCONT');
      log('kwok resumed');
    };
  };
  return { kubeconfigPath, server, logsDir, startupMs, stop, newPrefix: prefixer(), stopApiServer, startApiServer, freezeFakeNodes, realNode };
}

/**
 * The plane named by CLUSTERHUB_KUBECONFIG when it answers /readyz (its stop() does
 * nothing: whoever started it stops it), otherwise a new one from {@link startPlane}.
 */
export async function ensurePlane(opts: PlaneOptions = {}): Promise<Plane> {
  const path = process.env['CLUSTERHUB_KUBECONFIG'];
  if (path) {
    const kc = new KubeConfig();
    try {
      kc.loadFromFile(path);
      if (await new Health(kc).readyz({})) {
        const logsDir = join(dirname(path), 'logs');
        return {
          kubeconfigPath: path,
          server: kc.getCurrentCluster()?.server ?? '',
          logsDir: existsSync(logsDir) ? logsDir : '',
          startupMs: 0,
          stop: async () => {},
          newPrefix: prefixer(),
        };
      }
    } catch (error) {
      process.stderr.write(`[plane] CLUSTERHUB_KUBECONFIG=${path} is not a running plane (${String(error)})\n`);
    }
    process.stderr.write('[plane] starting a private plane instead\n');
  }
  return startPlane(opts);
}

async function renderKubeconfig(server: string, caPath: string, certPath: string, keyPath: string): Promise<string> {
  const b64 = async (path: string) => (await readFile(path)).toString('base64');
  const [ca, cert, key] = await Promise.all([b64(caPath), b64(certPath), b64(keyPath)]);
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'clusterhub-test', cluster: { server, 'certificate-authority-data': ca } }],
    users: [{ name: 'admin', user: { 'client-certificate-data': cert, 'client-key-data': key } }],
    contexts: [{ name: 'clusterhub-test', context: { cluster: 'clusterhub-test', user: 'admin' } }],
    'current-context': 'clusterhub-test',
  });
}

function isSchedulable(node: any): boolean {
  const ready = node.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True');
  // The node lifecycle controller lifts the not-ready taint shortly after Ready turns True.
  const tainted = (node.spec?.taints ?? []).some((t: any) => t.key.startsWith('node.kubernetes.io/'));
  return Boolean(ready) && !tainted;
}

async function etcdHealthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/health`);
    return res.ok && ((await res.json()) as { health?: string }).health === 'true';
  } catch {
    return false;
  }
}

/**
 * Retries `check` until it answers true: used only before the API server is serving, when
 * there is nothing to watch yet.
 */
async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

/** Free loopback ports by name, outside the ephemeral range (test/helpers/ports.ts). */
async function freePorts<K extends string>(names: readonly K[]): Promise<Record<K, number>> {
  const ports = await testPorts(names.length);
  return Object.fromEntries(names.map((name, i) => [name, ports[i]])) as Record<K, number>;
}

function prefixer(): (base?: string) => string {
  const tag = randomBytes(3).toString('hex');
  let n = 0;
  return (base = 't') => `${base}-${tag}-${++n}`;
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command !== 'start') {
    process.stderr.write('usage: node test/kube/plane.ts start [--nodes N] [--real-node] [--keep]\n');
    process.exitCode = 2;
    return;
  }
  const nodesAt = rest.indexOf('--nodes');
  const plane = await startPlane({
    nodes: nodesAt >= 0 ? Number(rest[nodesAt + 1]) : undefined,
    keep: rest.includes('--keep'),
    realNode: rest.includes('--real-node'),
    handleSignals: false,
  });
  process.stdout.write(`KUBECONFIG=${plane.kubeconfigPath}\n`);
  process.stderr.write(`[plane] logs in ${plane.logsDir}; Ctrl-C stops it\n`);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(s, () => resolve(s));
  });
  process.stderr.write(`[plane] ${signal}: stopping\n`);
  await plane.stop();
}

if (import.meta.main) {
  main(process.argv.slice(2)).catch((error) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}

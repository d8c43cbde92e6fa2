/**
 * A student's whole cluster on the test plane's real node, through the whole hub (real
 * configurable-http-proxy, the Kubernetes backend as the hub's ServiceAccount, the cluster
 * image built here): launch with its real Kubernetes progress, JupyterLab through the proxy,
 * Dask, IPython Parallel and Spark across the worker pods, scaling during a computation, the
 * Dask dashboard behind JupyterLab only, and the culler deciding on Jupyter's own activity
 * until it stops the cluster and the node holds none of its containers (the workspace claim stays).
 *
 * The tests are serial and build on one cluster (alice's). The isolation checks on single
 * pods (PodSecurity, seccomp, NetworkPolicy, a failing image) are in real-node.test.ts.
 */
import test from 'ava';
import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configSchema } from '../config/schema.ts';
import { clusterRef } from '../spawner/kubernetes/context.ts';
import { renderNamespace } from '../spawner/kubernetes/objects.ts';
import { namespaceFor } from '../spawner/names.ts';
import type { Plane } from './kube/plane.ts';
import type { RealNode } from './kube/node/node.ts';
import { applyRbac, backendKubeConfig } from './helpers/kube-rbac.ts';
import { startTestHub, type TestHub } from './helpers/hub.ts';
import { apiAs, cullNow } from './helpers/hub-api.ts';
import { runInKernel, startBusyKernel } from './helpers/kernel.ts';
import { waitUntil } from './helpers/net.ts';
import { logTails, podsOf, probeFrom, readProgress, restarts, startRealNodePlane } from './helpers/real-node.ts';

/** Seconds without proxy traffic or Jupyter activity after which the culler stops a cluster. */
const IDLE = 15;
/** Small pods: the node is this machine (2 cores), shared with the rest of the suite. */
const RESOURCES = { schedulerResources: { cpu: '500m', memory: '2Gi' }, workerResources: { cpu: '400m', memory: '1536Mi' } };

let plane: Plane;
let node: RealNode;
let admin: KubeConfig;
let core: CoreV1Api;
let dir: string;
let hub: TestHub;
let prefix: string;
const tokens: Record<string, string> = {};

test.before(async (t) => {
  // Importing the cluster image into the node's containerd takes minutes on a busy machine.
  t.timeout(15 * 60_000);
  ({ plane, node, admin, core } = await startRealNodePlane());
  await applyRbac(admin);
  dir = await mkdtemp(join(tmpdir(), 'clusterhub-real-cluster-'));
  const kubeconfig = join(dir, 'kubeconfig.json');
  await writeFile(kubeconfig, (await backendKubeConfig(admin)).exportConfig(), { mode: 0o600 });
  prefix = plane.newPrefix('real');
  hub = await startTestHub({
    config: {
      spawn: { backend: 'kubernetes', defaultWorkers: 2, maxWorkers: 3, startTimeoutSeconds: 300 },
      kubernetes: {
        kubeconfig, namespacePrefix: prefix, instance: prefix,
        image: node.images.cluster.ref, imagePullPolicy: 'IfNotPresent',
        nodeSelector: node.nodeSelector, tolerations: node.tolerations,
        // The host is not in the cluster's DNS; kube-proxy on this host serves Service addresses.
        routeTarget: 'http://{clusterIP}:8888',
        ...RESOURCES,
      },
      // Sweeps only when the test asks (POST /hub/api/cull); the schedule is once a year.
      culler: { enabled: true, schedule: '0 0 1 1 *', idleTimeoutSeconds: IDLE },
    },
  });
  for (const login of ['alice', 'bob', 'teacher']) tokens[login] = hub.token(login);
});

test.after.always(async () => {
  await hub?.destroy().catch(() => {});
  if (dir) await rm(dir, { recursive: true, force: true });
  await plane?.stop();
});

const ns = (login: string) => namespaceFor(prefix, login);
const jupyterOf = (login: string) => `${hub.publicUrl}/user/${login}/`;
const tokenOf = (login: string) => hub.store.getCluster(login)!.jupyterToken;
const workerPods = async () => (await podsOf(core, ns('alice'))).filter((p) => p.metadata?.labels?.['app.kubernetes.io/component'] === 'workers');
/** The last line a kernel printed, as JSON. */
const lastJson = <T>(out: string): T => JSON.parse(out.trim().split('\n').at(-1)!) as T;
/** Runs `code` in a kernel of alice's JupyterLab; a failure carries the end of every pod's log. */
async function inAlicesKernel(code: string[], options: Parameters<typeof runInKernel>[3] = {}): Promise<string> {
  try {
    return await runInKernel(jupyterOf('alice'), tokenOf('alice'), code.join('\n'), { timeoutMs: 5 * 60_000, ...options });
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${await logTails(core, ns('alice'))}`);
  }
}

test.serial('a launch with 2 workers shows the real Kubernetes events and ends in JupyterLab through the proxy, no container restarted', async (t) => {
  t.timeout(6 * 60_000);
  const started = performance.now();
  const res = await apiAs(hub, tokens.alice!, '/hub/api/users/alice/cluster', { method: 'POST', json: { workers: 2 } });
  t.is(res.status, 202, await res.text());
  const events = await readProgress(hub, tokens.alice!, 'alice');
  const messages = events.map((e) => String(e.message));
  t.log(messages.join('\n'));
  t.true(events.at(-1)?.ready === true, `the launch ended ready: ${JSON.stringify(events.at(-1))} ${JSON.stringify(await restarts(core, ns('alice')))}`);
  t.true(messages.includes(`Scheduler pod scheduled on ${node.name}`), 'Scheduled on the real node');
  t.true(messages.includes('Cluster image already present on the node'), 'the kubelet reported the image present');
  t.true(messages.includes('Scheduler container started'), 'the kubelet started the container');
  t.true(messages.includes('2 of 2 workers ready'));

  const alice = await hub.signIn('alice');
  let page = await alice.get('/hub/open/alice');
  for (let hops = 0; page.status === 302 && hops < 5; hops++) page = await alice.follow(page);
  t.is(page.status, 200);
  t.regex(page.text, /JupyterLab/);
  t.log(`launch → JupyterLab: ${((performance.now() - started) / 1000).toFixed(1)} s`);

  const pods = await podsOf(core, ns('alice'));
  t.is(pods.length, 3);
  t.true(pods.every((p) => p.spec?.nodeName === node.name && p.status?.podIP?.startsWith('10.244.255.')), 'every pod runs on the real node with a bridge address');
  t.deepEqual(await restarts(core, ns('alice')), [], 'no container restarted');
});

test.serial('in a kernel: Dask sees the 2 worker pods and computes on them, an IPython engine runs on each', async (t) => {
  t.timeout(6 * 60_000);
  const workers = (await workerPods()).map((p) => p.metadata!.name!).sort();
  t.is(workers.length, 2);
  const out = await inAlicesKernel([
    'import json, socket',
    'from dask.distributed import Client',
    'import ipyparallel as ipp',
    'client = Client()',
    'client.wait_for_workers(2, timeout=120)',
    'dask_hosts = sorted(client.run(socket.gethostname).values())',
    'squares = client.submit(sum, client.map(lambda x: x * x, range(100))).result()',
    'rc = ipp.Client()',
    'rc.wait_for_engines(2, timeout=120)',
    'ipp_hosts = sorted(rc[:].apply_sync(socket.gethostname))',
    'print(json.dumps({"dask": dask_hosts, "squares": squares, "ipp": ipp_hosts}))',
  ]);
  const result = lastJson<{ dask: string[]; squares: number; ipp: string[] }>(out);
  t.deepEqual(result.dask, workers, 'Dask workers are the two worker pods');
  t.is(result.squares, 328350);
  t.deepEqual(result.ipp, workers, 'one IPython engine on each worker pod');
});

test.serial('in a kernel: a Spark job runs in executors on both worker pods', async (t) => {
  // Three JVMs (driver, two executors) starting on a loaded 2-core machine take minutes.
  t.timeout(12 * 60_000);
  const workers = (await workerPods()).map((p) => p.metadata!.name!).sort();
  const out = await inAlicesKernel([
    'import json, time',
    'from pyspark.sql import SparkSession',
    'spark = SparkSession.builder.getOrCreate()',
    'sc = spark.sparkContext',
    // Executors register after the session exists: wait for one per worker (the driver has an entry too).
    'deadline = time.time() + 480',
    'while sc._jsc.sc().getExecutorMemoryStatus().size() < 3 and time.time() < deadline: time.sleep(1)',
    'executors = sc._jsc.sc().getExecutorMemoryStatus().size() - 1',
    'count = spark.range(10**6).count()',
    'hosts = sorted(set(sc.parallelize(range(64), 16).map(lambda _: __import__("socket").gethostname()).collect()))',
    'spark.stop()',
    'print(json.dumps({"executors": executors, "count": count, "hosts": hosts}))',
  ], { timeoutMs: 11 * 60_000 });
  const result = lastJson<{ executors: number; count: number; hosts: string[] }>(out);
  t.is(result.executors, 2, 'one executor registered per worker pod');
  t.is(result.count, 10 ** 6);
  t.deepEqual(result.hosts, workers, 'Spark tasks ran on both worker pods');
  t.deepEqual(await restarts(core, ns('alice')), [], 'no container restarted');
});

test.serial('scaling 2 → 3 during a Dask computation: it finishes and the new worker pod took part', async (t) => {
  t.timeout(6 * 60_000);
  const before = new Set((await workerPods()).map((p) => p.metadata!.name!));
  let scaled: Promise<Response> | undefined;
  const out = await inAlicesKernel([
    'import json, socket, time',
    'from dask.distributed import Client',
    'client = Client()',
    'def slow(i):',
    '    time.sleep(1)',
    '    return socket.gethostname()',
    'futures = client.map(slow, range(150))',
    'print("submitted", flush=True)',
    'hosts = client.gather(futures)',
    'print(json.dumps({"n": len(hosts), "hosts": sorted(set(hosts)), "workers": len(client.scheduler_info()["workers"])}))',
  ], {
    onOutput: (text) => {
      if (text.includes('submitted')) scaled ??= apiAs(hub, tokens.alice!, '/hub/api/users/alice/cluster', { method: 'PATCH', json: { workers: 3 } });
    },
  });
  const patch = await scaled;
  t.truthy(patch && patch.status < 300, `PATCH answered ${patch?.status}`);
  const result = lastJson<{ n: number; hosts: string[]; workers: number }>(out);
  t.is(result.n, 150, 'every task finished');
  t.is(result.workers, 3);
  const added = result.hosts.filter((h) => !before.has(h));
  t.is(added.length, 1, `the new worker pod ran tasks: ${result.hosts.join(', ')}`);
  t.true((await workerPods()).some((p) => p.metadata!.name === added[0]), 'it is a worker pod of the cluster');
  t.deepEqual(await restarts(core, ns('alice')), [], 'no container restarted');
});

test.serial('the Dask dashboard answers only through the authenticated JupyterLab: not without the token, not to another student, not from another student\'s pod', async (t) => {
  t.timeout(4 * 60_000);
  // Its own path (the one JupyterLab's Dask panel and Client() show) and Jupyter's port proxy.
  const bob = await hub.signIn('bob');
  for (const path of ['dask/status', 'proxy/8787/status']) {
    const url = `${jupyterOf('alice')}${path}`;
    const authed = await fetch(url, { headers: { Authorization: `token ${tokenOf('alice')}` } });
    t.is(authed.status, 200, path);
    t.regex(await authed.text(), /Dask/);
    for (const headers of [{}, { Authorization: 'token not-the-token' }]) {
      const res = await fetch(url, { headers, redirect: 'manual' });
      await res.body?.cancel();
      t.not(res.status, 200, `${path} without alice's token: ${res.status}`);
    }
    const other = await bob.get(`/user/alice/${path}`);
    t.not(other.status, 200, `${path}: bob signed in to the hub`);
  }

  // Bob's pods in a namespace made as the backend makes his: the dashboard port of alice's
  // Service and scheduler pod, and her Dask port, are closed to them.
  const k = configSchema.parse({ kubernetes: { namespacePrefix: prefix, instance: prefix } }).kubernetes;
  await core.createNamespace({ body: renderNamespace(k, clusterRef(k, 'bob')) });
  t.teardown(() => core.deleteNamespace({ name: ns('bob') }).catch(() => {}));
  await waitUntil('bob\'s default ServiceAccount', async () => (await core.listNamespacedServiceAccount({ namespace: ns('bob') })).items.length > 0, { timeoutMs: 60_000, intervalMs: 500 });
  const scheduler = (await podsOf(core, ns('alice'))).find((p) => p.metadata?.labels?.['app.kubernetes.io/component'] === 'scheduler')!;
  const service = `scheduler.${ns('alice')}.svc`;
  const targets = [`${service}:8787`, `${scheduler.status!.podIP}:8787`, `${service}:8786`];
  const fromBob = await probeFrom(admin, ns('bob'), { image: node.images.cluster.ref, nodeSelector: node.nodeSelector, tolerations: node.tolerations, targets });
  for (const r of fromBob) t.false(r.connected, `${r.target} from bob's pod`);
  // From the host, straight to the Service: the dashboard listens on the pod's loopback only.
  const clusterIP = new URL(hub.store.getCluster('alice')!.url!).hostname;
  const direct = await fetch(`http://${clusterIP}:8787/status`, { signal: AbortSignal.timeout(5000) }).then((r) => r.status, (e: Error) => e.name);
  t.not(direct, 200, `the Service's dashboard port from the host: ${direct}`);
});

test.serial('the culler keeps the cluster while Jupyter has a busy kernel, stops it once Jupyter and the proxy are idle, and the node keeps none of its containers', async (t) => {
  t.timeout(5 * 60_000);
  const route = '/user/alice';
  const idleRoutes = async (seconds: number) => Object.keys(await hub.proxy.getRoutes(new Date(Date.now() - seconds * 1000)));
  const line = (report: Awaited<ReturnType<typeof cullNow>>) => report.clusters.find((c) => c.user === 'alice');
  const containers = async () =>
    (await node.ctr(['containers', 'ls', '-q', `labels."io.kubernetes.pod.namespace"==${ns('alice')}`])).split('\n').filter(Boolean);
  t.true((await containers()).length >= 8, 'alice\'s 4 pods are containers (and sandboxes) in containerd');

  await startBusyKernel(jupyterOf('alice'), tokenOf('alice'), 'import time; time.sleep(3600)');
  await waitUntil(`no proxy traffic to alice for ${IDLE} s`, async () => (await idleRoutes(IDLE)).includes(route), { timeoutMs: 60_000, intervalMs: 500 });
  const kept = line(await cullNow(hub, tokens.teacher!));
  t.like(kept, { action: 'keep', reason: 'a kernel is busy', evidence: 'jupyter' }, JSON.stringify(kept));
  t.is(kept?.jupyterUnreachable, undefined, 'the culler asked the real Jupyter');
  t.is(hub.store.getCluster('alice')?.phase, 'running');

  // The student's kernel ends (asked through the proxy, as JupyterLab would): now Jupyter is idle too.
  const kernels = await fetch(`${jupyterOf('alice')}api/kernels`, { headers: { Authorization: `token ${tokenOf('alice')}` } });
  for (const k of (await kernels.json()) as Array<{ id: string }>) {
    const res = await fetch(`${jupyterOf('alice')}api/kernels/${k.id}`, { method: 'DELETE', headers: { Authorization: `token ${tokenOf('alice')}` } });
    t.is(res.status, 204);
  }
  const culled = await waitUntil('a sweep to stop alice', async () => {
    const report = await cullNow(hub, tokens.teacher!);
    return report.culled.includes('alice') && line(report);
  }, { timeoutMs: 90_000, intervalMs: 1000 });
  t.like(culled, { action: 'cull', evidence: 'proxy+jupyter', stopped: true }, JSON.stringify(culled));
  t.regex(culled.reason, /^idle \d+ seconds$/);
  t.is(hub.store.getCluster('alice'), undefined);
  // A cull is a stop: the workloads go, the namespace stays only for alice's workspace claim.
  await waitUntil('alice\'s pods to go', async () => (await core.listNamespacedPod({ namespace: ns('alice') })).items.length === 0,
    { timeoutMs: 120_000, intervalMs: 500 });
  t.is((await admin.makeApiClient(AppsV1Api).listNamespacedDeployment({ namespace: ns('alice') })).items.length, 0, 'no Deployment left');
  t.is((await core.readNamespacedPersistentVolumeClaim({ name: 'workspace', namespace: ns('alice') })).status?.phase, 'Bound', 'the workspace is kept');
  await waitUntil('alice\'s containers to leave containerd', async () => (await containers()).length === 0, { timeoutMs: 60_000, intervalMs: 500 });
  t.deepEqual(await containers(), []);
});

/**
 * A student's cluster end to end on Kubernetes with real pods: the test plane with its real
 * node (containerd + runc, CNI bridge, kube-proxy, CoreDNS, kube-router's NetworkPolicy
 * firewall), the cluster image built here (test/kube/images.sh), the whole hub with a real
 * configurable-http-proxy, and the Kubernetes backend as the hub's ServiceAccount. Pods are
 * placed on the real node by `kubernetes.nodeSelector` and tolerations; the proxy reaches
 * the scheduler Service's ClusterIP through kube-proxy on this host.
 *
 * The tests are serial and build on each other: one student's cluster, then a second
 * student, then failure and stop.
 */
import test from 'ava';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { namespaceFor } from '../spawner/names.ts';
import { startPlane, type Plane } from './kube/plane.ts';
import type { RealNode } from './kube/node/node.ts';
import { applyRbac, backendKubeConfig } from './helpers/kube-rbac.ts';
import { startTestHub, type TestHub } from './helpers/hub.ts';
import { apiAs, cullNow } from './helpers/hub-api.ts';
import { runInKernel } from './helpers/kernel.ts';
import { waitUntil } from './helpers/net.ts';
import { namespaceGone, podsOf, probeFrom, readProgress, runToCompletion } from './helpers/real-node.ts';

let plane: Plane;
let node: RealNode;
let admin: KubeConfig;
let core: CoreV1Api;
let dir: string;
let kubeconfig: string;
let hub: TestHub;
let prefix: string;
const tokens: Record<string, string> = {};

/** Small pods: the node is this machine (2 cores), shared with the rest of the suite. */
const RESOURCES = { schedulerResources: { cpu: '500m', memory: '2Gi' }, workerResources: { cpu: '400m', memory: '1536Mi' } };

function kubernetesConfig(extra: Record<string, unknown> = {}) {
  return {
    kubeconfig, namespacePrefix: prefix, instance: prefix,
    image: node.images.cluster.ref, imagePullPolicy: 'IfNotPresent',
    nodeSelector: node.nodeSelector, tolerations: node.tolerations,
    // The host is not in the cluster's DNS; kube-proxy here serves Service addresses.
    routeTarget: 'http://{clusterIP}:8888',
    ...RESOURCES,
    ...extra,
  };
}

test.before(async () => {
  plane = await startPlane({ nodes: 1, realNode: true });
  node = plane.realNode!;
  admin = new KubeConfig();
  admin.loadFromFile(plane.kubeconfigPath);
  core = admin.makeApiClient(CoreV1Api);
  await applyRbac(admin);
  dir = await mkdtemp(join(tmpdir(), 'clusterhub-real-node-'));
  kubeconfig = join(dir, 'kubeconfig.json');
  await writeFile(kubeconfig, (await backendKubeConfig(admin)).exportConfig(), { mode: 0o600 });
  prefix = plane.newPrefix('real');
  hub = await startTestHub({
    config: {
      spawn: { backend: 'kubernetes', defaultWorkers: 2, maxWorkers: 3, startTimeoutSeconds: 300 },
      kubernetes: kubernetesConfig(),
      // Sweeps only when the test asks (POST /hub/api/cull); the schedule is once a year.
      culler: { enabled: true, schedule: '0 0 1 1 *', idleTimeoutSeconds: 3600 },
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

test.serial('a launch with 2 workers shows the real Kubernetes events and ends in JupyterLab through the proxy', async (t) => {
  t.timeout(6 * 60_000);
  const started = performance.now();
  const res = await apiAs(hub, tokens.alice!, '/hub/api/users/alice/cluster', { method: 'POST', json: { workers: 2 } });
  t.is(res.status, 202, await res.text());
  const events = await readProgress(hub, tokens.alice!, 'alice');
  const messages = events.map((e) => String(e.message));
  t.log(messages.join('\n'));
  t.true(events.at(-1)?.ready === true, `the launch ended ready: ${JSON.stringify(events.at(-1))}`);
  t.true(messages.some((m) => m === `Scheduler pod scheduled on ${node.name}`), 'Scheduled on the real node');
  t.true(messages.includes('Cluster image already present on the node'), 'the kubelet reported the image present');
  t.true(messages.includes('Scheduler container started'), 'the kubelet started the container');
  t.true(messages.includes('2 of 2 workers ready'));

  const alice = await hub.signIn('alice');
  const open = await alice.get('/hub/open/alice');
  t.is(open.status, 302);
  const lab = await alice.follow(open);
  const page = lab.status === 302 ? await alice.follow(lab) : lab;
  t.is(page.status, 200);
  t.regex(page.text, /JupyterLab/);
  t.log(`launch → JupyterLab: ${((performance.now() - started) / 1000).toFixed(1)} s`);

  const pods = await podsOf(core, ns('alice'));
  t.is(pods.length, 3);
  t.true(pods.every((p) => p.spec?.nodeName === node.name && p.status?.podIP?.startsWith('10.244.255.')), 'every pod runs on the real node with a bridge address');
});

test.serial('in a kernel: Dask sees 2 worker pods, ipyparallel engines run on them, Spark executors too', async (t) => {
  t.timeout(6 * 60_000);
  const workers = (await podsOf(core, ns('alice'))).filter((p) => p.metadata?.labels?.['app.kubernetes.io/component'] === 'workers').map((p) => p.metadata!.name!).sort();
  t.is(workers.length, 2);
  const out = await runInKernel(jupyterOf('alice'), tokenOf('alice'), [
    'import json, socket',
    'from dask.distributed import Client',
    'import ipyparallel as ipp',
    'client = Client()',
    'client.wait_for_workers(2, timeout=120)',
    'dask_hosts = sorted(client.run(socket.gethostname).values())',
    'rc = ipp.Client()',
    'rc.wait_for_engines(2, timeout=120)',
    'ipp_hosts = sorted(rc[:].apply_sync(socket.gethostname))',
    'from pyspark.sql import SparkSession',
    'spark = SparkSession.builder.getOrCreate()',
    'count = spark.range(10**6).count()',
    'sc = spark.sparkContext',
    'spark_hosts = sorted(set(sc.parallelize(range(64), 16).map(lambda _: __import__("socket").gethostname()).collect()))',
    'spark.stop()',
    'print(json.dumps({"dask": dask_hosts, "ipp": ipp_hosts, "count": count, "spark": spark_hosts}))',
  ].join('\n'), { timeoutMs: 5 * 60_000 });
  const result = JSON.parse(out.trim().split('\n').at(-1)!) as { dask: string[]; ipp: string[]; count: number; spark: string[] };
  t.deepEqual(result.dask, workers, 'Dask workers are the two worker pods');
  t.deepEqual(result.ipp, workers, 'one IPython engine on each worker pod');
  t.is(result.count, 10 ** 6);
  t.true(result.spark.length > 0 && result.spark.every((h) => workers.includes(h)), `Spark tasks ran on worker pods: ${result.spark.join(', ')}`);
});

test.serial('scaling 2 → 3 during a Dask computation: it finishes and the new worker took part', async (t) => {
  t.timeout(6 * 60_000);
  const before = new Set((await podsOf(core, ns('alice'))).map((p) => p.metadata!.name!));
  let scaled: Promise<Response> | undefined;
  const out = await runInKernel(jupyterOf('alice'), tokenOf('alice'), [
    'import json, socket, time',
    'from dask.distributed import Client, wait',
    'client = Client()',
    'def slow(i):',
    '    time.sleep(1)',
    '    return socket.gethostname()',
    'futures = client.map(slow, range(150))',
    'print("submitted", flush=True)',
    'hosts = client.gather(futures)',
    'print(json.dumps({"n": len(hosts), "hosts": sorted(set(hosts)), "workers": len(client.scheduler_info()["workers"])}))',
  ].join('\n'), {
    timeoutMs: 5 * 60_000,
    onOutput: (text) => {
      if (text.includes('submitted')) scaled ??= apiAs(hub, tokens.alice!, '/hub/api/users/alice/cluster', { method: 'PATCH', json: { workers: 3 } });
    },
  });
  const patch = await scaled;
  t.truthy(patch && patch.status < 300, `PATCH answered ${patch?.status}`);
  const result = JSON.parse(out.trim().split('\n').at(-1)!) as { n: number; hosts: string[]; workers: number };
  t.is(result.n, 150, 'every task finished');
  t.is(result.workers, 3);
  const added = result.hosts.filter((h) => !before.has(h));
  t.is(added.length, 1, `the new worker pod ran tasks: ${result.hosts.join(', ')}`);

  // Back to 2, to leave room on the node for the next student.
  const down = await apiAs(hub, tokens.alice!, '/hub/api/users/alice/cluster', { method: 'PATCH', json: { workers: 2 } });
  t.true(down.status < 300);
  await waitForWorkers(2);
});

/** Resolves once the hub reports `n` ready workers for alice and only `n` worker pods are left. */
async function waitForWorkers(n: number): Promise<void> {
  await waitUntil(`alice at ${n} workers`, async () => {
    const pods = (await core.listNamespacedPod({ namespace: ns('alice'), labelSelector: 'app.kubernetes.io/component=workers' })).items;
    return pods.length === n;
  }, { timeoutMs: 120_000, intervalMs: 500 });
}

test.serial('the Dask dashboard answers only through the authenticated JupyterLab', async (t) => {
  const url = `${jupyterOf('alice')}proxy/8787/status`;
  const authed = await fetch(url, { headers: { Authorization: `token ${tokenOf('alice')}` } });
  t.is(authed.status, 200);
  t.regex(await authed.text(), /Dask/);
  for (const headers of [{}, { Authorization: 'token not-the-token' }]) {
    const res = await fetch(url, { headers, redirect: 'manual' });
    await res.body?.cancel();
    t.not(res.status, 200, `without the token: ${res.status}`);
  }
  const bob = await hub.signIn('bob');
  const other = await bob.get(`/user/alice/proxy/8787/status`);
  t.not(other.status, 200, 'another student signed in to the hub');
  // Straight to the Service's dashboard port: the dashboard listens on the pod's loopback only.
  const clusterIP = new URL(hub.store.getCluster('alice')!.url!).hostname;
  const direct = await fetch(`http://${clusterIP}:8787/status`, { signal: AbortSignal.timeout(5000) }).then((r) => r.status, (e: Error) => e.name);
  t.not(direct, 200, `the Service's dashboard port: ${direct}`);
});

test.serial('PodSecurity restricted admitted the real pods unchanged; they run non-root under the runtime default seccomp profile', async (t) => {
  const namespace = await core.readNamespace({ name: ns('alice') });
  t.is(namespace.metadata?.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');
  const pods = await podsOf(core, ns('alice'));
  for (const pod of pods) {
    t.is(pod.status?.phase, 'Running');
    const c = pod.spec!.containers[0]!;
    t.like(c.securityContext, { runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } });
  }
  const out = await runInKernel(jupyterOf('alice'), tokenOf('alice'), [
    'import json, os',
    'from dask.distributed import Client',
    'def status():',
    '    fields = dict(l.split(":\\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\\t" in l)',
    '    return {"uid": os.getuid(), "seccomp": fields["Seccomp"].strip(), "nnp": fields["NoNewPrivs"].strip(), "capeff": fields["CapEff"].strip()}',
    'print(json.dumps({"scheduler": status(), "workers": list(Client().run(status).values())}))',
  ].join('\n'));
  const seen = JSON.parse(out.trim()) as { scheduler: Record<string, unknown>; workers: Array<Record<string, unknown>> };
  t.is(seen.workers.length, 2);
  for (const s of [seen.scheduler, ...seen.workers]) {
    // Seccomp 2 = filter mode (the runtime's default profile); no capabilities, no privilege gain.
    t.deepEqual(s, { uid: 1000, seccomp: '2', nnp: '1', capeff: '0000000000000000' });
  }
});

test.serial('NetworkPolicy: another student\'s pod cannot reach the scheduler; the cluster\'s own pods and the proxy on the host can', async (t) => {
  t.timeout(6 * 60_000);
  const res = await apiAs(hub, tokens.bob!, '/hub/api/users/bob/cluster', { method: 'POST', json: { workers: 0 } });
  t.is(res.status, 202);
  const events = await readProgress(hub, tokens.bob!, 'bob');
  t.true(events.at(-1)?.ready === true, JSON.stringify(events.at(-1)));

  const scheduler = (await podsOf(core, ns('alice'))).find((p) => p.metadata?.labels?.['app.kubernetes.io/component'] === 'scheduler')!;
  const service = `scheduler.${ns('alice')}.svc`;
  const targets = [`${service}:8786`, `${service}:8888`, `${scheduler.status!.podIP}:8786`, `${scheduler.status!.podIP}:8888`];
  const probe = (namespace: string) => probeFrom(admin, namespace, { image: node.images.cluster.ref, nodeSelector: node.nodeSelector, tolerations: node.tolerations, targets });

  const fromBob = await probe(ns('bob'));
  t.log(JSON.stringify(fromBob));
  for (const r of fromBob) {
    t.false(r.connected, `${r.target} from bob's namespace`);
    // Blocked by the policy, not by a name that does not resolve.
    t.regex(r.error ?? '', /timed out|refused/i, r.target);
  }
  const fromAlice = await probe(ns('alice'));
  t.true(fromAlice.every((r) => r.connected), `from alice's own namespace: ${JSON.stringify(fromAlice)}`);

  // The proxy runs on the host: its packets reach the bridge from the node's own address,
  // which NetworkPolicy implementations always admit (kubelet probes come from there too).
  const status = await fetch(`${jupyterOf('alice')}api/status`, { headers: { Authorization: `token ${tokenOf('alice')}` } });
  t.is(status.status, 200);

  const stop = await apiAs(hub, tokens.bob!, '/hub/api/users/bob/cluster', { method: 'DELETE' });
  t.is(stop.status, 204);
  await namespaceGone(admin, ns('bob'));
});

test.serial('a launch with an image tag that does not exist fails with Kubernetes\' reason within the start timeout and leaves no namespace', async (t) => {
  t.timeout(4 * 60_000);
  const badPrefix = plane.newPrefix('bad');
  const image = `${node.images.cluster.ref.replace(/:[^:/]+$/, '')}:no-such-tag`;
  const bad = await startTestHub({
    config: {
      spawn: { backend: 'kubernetes', startTimeoutSeconds: 120 },
      kubernetes: kubernetesConfig({ namespacePrefix: badPrefix, instance: badPrefix, image }),
    },
  });
  t.teardown(() => bad.destroy());
  const token = bad.token('carol');
  const started = performance.now();
  const res = await apiAs(bad, token, '/hub/api/users/carol/cluster', { method: 'POST', json: { workers: 0 } });
  t.is(res.status, 202);
  const events = await readProgress(bad, token, 'carol');
  const seconds = (performance.now() - started) / 1000;
  const last = events.at(-1)!;
  t.log(`${seconds.toFixed(1)} s: ${JSON.stringify(last)}`);
  t.true(last.failed === true || typeof last.failed === 'string', JSON.stringify(last));
  t.regex(String(last.message), /ErrImagePull|ImagePullBackOff|Failed to pull image "[^"]+:no-such-tag"/);
  t.true(seconds < 120, 'within the start timeout');
  await namespaceGone(admin, namespaceFor(badPrefix, 'carol'));
});

test.serial('the culler asks the real Jupyter; stop leaves no namespace and no container in containerd', async (t) => {
  t.timeout(3 * 60_000);
  const report = await cullNow(hub, tokens.teacher!, { dry_run: true });
  const alice = report.clusters.find((c) => c.user === 'alice');
  t.truthy(alice, JSON.stringify(report));
  t.is(alice!.jupyterUnreachable, undefined);
  t.is(alice!.evidence, 'proxy+jupyter');
  t.is(alice!.action, 'keep');

  const containersOf = async (namespace: string) =>
    (await node.ctr(['containers', 'ls', '-q', `labels."io.kubernetes.pod.namespace"==${namespace}`])).split('\n').filter(Boolean);
  t.true((await containersOf(ns('alice'))).length >= 6, 'alice\'s pods are containers (and sandboxes) in containerd');
  const stop = await apiAs(hub, tokens.alice!, '/hub/api/users/alice/cluster', { method: 'DELETE' });
  t.is(stop.status, 204);
  await namespaceGone(admin, ns('alice'));
  await waitUntil('alice\'s containers to be removed', async () => (await containersOf(ns('alice'))).length === 0, { timeoutMs: 60_000, intervalMs: 500 });
  t.deepEqual(await containersOf(ns('alice')), []);
  t.deepEqual(await containersOf(ns('bob')), []);
});

test.serial('the hub image built here runs on the node: its own Node and dependencies check the example configuration', async (t) => {
  t.timeout(4 * 60_000);
  t.true(existsSync(node.images.hub.archive), `the hub image is built by: bash test/kube/images.sh (${node.images.hub.archive})`);
  await node.ctr(['images', 'import', '--snapshotter', 'overlayfs', node.images.hub.archive]);
  const namespace = plane.newPrefix('hub-image');
  await core.createNamespace({ body: { metadata: { name: namespace, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } } });
  t.teardown(() => core.deleteNamespace({ name: namespace }).catch(() => {}));
  const end = await runToCompletion(admin, namespace, {
    image: node.images.hub.ref, nodeSelector: node.nodeSelector, tolerations: node.tolerations, memory: '256Mi',
    command: ['sh', '-c', 'node --version && node hub/cli.ts check-config config/example.yaml > /dev/termination-log 2>&1'],
  });
  t.is(end.exitCode, 0, end.message);
  t.is(end.message.trim(), 'configuration OK (config/example.yaml)');
});

/**
 * Real pods on the test plane's real node (containerd + runc, CNI bridge, kube-proxy,
 * CoreDNS, kube-router's NetworkPolicy firewall, local-path volumes), with the images built
 * here (test/kube/images.sh) and the Kubernetes backend's own objects: its namespace
 * (PodSecurity restricted) and its NetworkPolicy, a launch through the whole hub that fails
 * on a missing image, a notebook and course materials on the student's workspace claim
 * through a stop, a cull and a reset,
 * the hub image itself. Pods are placed on the real node by its label
 * and toleration.
 */
import test from 'ava';
import { AppsV1Api, CoreV1Api, KubeConfig, NetworkingV1Api } from '@kubernetes/client-node';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { configSchema } from '../config/schema.ts';
import { clusterRef } from '../spawner/kubernetes/context.ts';
import { renderNamespace, renderNetworkPolicy } from '../spawner/kubernetes/objects.ts';
import { namespaceFor } from '../spawner/names.ts';
import type { Plane } from './kube/plane.ts';
import type { RealNode } from './kube/node/node.ts';
import { watchUntil } from './kube/watch.ts';
import { applyRbac, backendKubeConfig } from './helpers/kube-rbac.ts';
import { startTestHub } from './helpers/hub.ts';
import { serveGitRepo } from './fixtures/git-http.ts';
import { makeBareMaterialsRepo, MATERIALS_README } from './helpers/materials.ts';
import { apiAs } from './helpers/hub-api.ts';
import { waitUntil } from './helpers/net.ts';
import { namespaceGone, probeFrom, readProgress, runToCompletion, startRealNodePlane } from './helpers/real-node.ts';

let plane: Plane;
let node: RealNode;
let admin: KubeConfig;
let core: CoreV1Api;

test.before(async (t) => {
  // Importing the cluster image into the node's containerd takes minutes on a busy machine.
  t.timeout(15 * 60_000);
  ({ plane, node, admin, core } = await startRealNodePlane());
});

test.after.always(async () => {
  await plane?.stop();
});

/** A namespace exactly as the backend makes a student's (PodSecurity restricted), removed after the test. */
async function studentNamespace(t: { teardown(fn: () => unknown): void }, login: string) {
  const prefix = plane.newPrefix('rn');
  const k = configSchema.parse({ kubernetes: { namespacePrefix: prefix, instance: prefix } }).kubernetes;
  const ref = clusterRef(k, login);
  await core.createNamespace({ body: renderNamespace(k, ref) });
  t.teardown(() => core.deleteNamespace({ name: ref.namespace }).catch(() => {}));
  await watchUntil(admin, `/api/v1/namespaces/${ref.namespace}/serviceaccounts`, { fieldSelector: 'metadata.name=default' },
    (phase) => (phase === 'ADDED' ? true : undefined), { what: `ServiceAccount ${ref.namespace}/default`, timeoutMs: 60_000 });
  return { k, ref, namespace: ref.namespace };
}

const placement = () => ({ image: node.images.cluster.ref, nodeSelector: node.nodeSelector, tolerations: node.tolerations });

/** Pod names of the containers containerd holds for a namespace (sandboxes included). */
async function containersOf(namespace: string): Promise<string[]> {
  return (await node.ctr(['containers', 'ls', '-q', `labels."io.kubernetes.pod.namespace"==${namespace}`])).split('\n').filter(Boolean);
}

test.serial('the cluster image runs in a restricted namespace as uid 1000 under the runtime default seccomp profile, and resolves cluster names', async (t) => {
  t.timeout(5 * 60_000);
  const { namespace } = await studentNamespace(t, 'ada');
  const script = [
    'import json, os, socket',
    'fields = dict(l.split(":\\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\\t" in l)',
    'out = {"uid": os.getuid(), "seccomp": fields["Seccomp"].strip(), "nnp": fields["NoNewPrivs"].strip(), "capeff": fields["CapEff"].strip(),',
    '       "api": socket.gethostbyname("kubernetes.default.svc.cluster.local")}',
    'open("/dev/termination-log", "w").write(json.dumps(out))',
  ].join('\n');
  const end = await runToCompletion(admin, namespace, { ...placement(), command: ['python3', '-c', script] });
  t.is(end.exitCode, 0, end.message);
  // Seccomp 2 = filter mode (the runtime's default profile); no capabilities, no privilege gain; CoreDNS answers.
  t.deepEqual(JSON.parse(end.message), { uid: 1000, seccomp: '2', nnp: '1', capeff: '0000000000000000', api: '10.96.0.1' });
});

test.serial('the backend\'s NetworkPolicy: another student\'s pod cannot connect, the namespace\'s own pods and the host (the proxy) can; deleting the namespace removes its containers', async (t) => {
  t.timeout(8 * 60_000);
  const alice = await studentNamespace(t, 'alice');
  const bob = await studentNamespace(t, 'bob');
  await admin.makeApiClient(NetworkingV1Api).createNamespacedNetworkPolicy({ namespace: alice.namespace, body: renderNetworkPolicy(alice.k, alice.ref) });
  // A stand-in for the scheduler: the cluster image serving HTTP on Jupyter's port, behind a Service of the same name.
  const size = { cpu: '100m', memory: '128Mi' };
  await core.createNamespacedPod({
    namespace: alice.namespace,
    body: {
      metadata: { name: 'scheduler', labels: { app: 'scheduler' } },
      spec: {
        automountServiceAccountToken: false, enableServiceLinks: false, nodeSelector: node.nodeSelector, tolerations: node.tolerations,
        securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [{
          name: 'http', image: node.images.cluster.ref, imagePullPolicy: 'IfNotPresent',
          command: ['python3', '-m', 'http.server', '8888', '--directory', '/opt/cluster'],
          ports: [{ name: 'jupyter', containerPort: 8888 }],
          readinessProbe: { tcpSocket: { port: 8888 }, periodSeconds: 1 },
          resources: { requests: size, limits: size },
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        }],
      },
    },
  });
  await core.createNamespacedService({
    namespace: alice.namespace,
    body: { metadata: { name: 'scheduler' }, spec: { selector: { app: 'scheduler' }, ports: [{ name: 'jupyter', port: 8888, targetPort: 'jupyter' }] } },
  });
  const pod = await watchUntil(admin, `/api/v1/namespaces/${alice.namespace}/pods`, { fieldSelector: 'metadata.name=scheduler' },
    (_phase, p) => (p.status?.conditions?.some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True') ? p : undefined),
    { what: 'the scheduler stand-in to be Ready', timeoutMs: 180_000 });
  const service = await core.readNamespacedService({ name: 'scheduler', namespace: alice.namespace });
  const targets = [`scheduler.${alice.namespace}.svc:8888`, `${pod.status.podIP}:8888`];

  const fromBob = await probeFrom(admin, bob.namespace, { ...placement(), targets });
  for (const r of fromBob) {
    t.false(r.connected, `${r.target} from bob's namespace`);
    // Refused by the firewall (kube-router rejects), not a name that does not resolve.
    t.regex(r.error ?? '', /refused|timed out/i, r.target);
  }
  // kube-router admits a new pod of alice's once it has seen it (its IP joins the policy's
  // ipset), so the probe, a pod just created, may be refused for its first moments: it tries
  // again for up to 60 s. (The cluster's own workers retry their connections the same way.)
  const fromAlice = await probeFrom(admin, alice.namespace, { ...placement(), targets, patienceSeconds: 60 });
  t.true(fromAlice.every((r) => r.connected), `from alice's own namespace: ${JSON.stringify(fromAlice)}`);
  t.log(`alice's new pod connected after ${fromAlice.map((r) => `${r.seconds} s (${r.attempts} tries)`).join(', ')}`);

  // The hub's proxy runs on the host: through kube-proxy to the ClusterIP, its packets reach
  // the bridge from the node's own address, which NetworkPolicy implementations always admit.
  const fromHost = await fetch(`http://${service.spec!.clusterIP}:8888/entrypoint/`, { signal: AbortSignal.timeout(10_000) });
  t.is(fromHost.status, 200);
  t.regex(await fromHost.text(), /supervisor\.py/);

  t.true((await containersOf(alice.namespace)).length >= 2, 'the pod and its sandbox are containers in containerd');
  await core.deleteNamespace({ name: alice.namespace });
  await namespaceGone(admin, alice.namespace);
  await waitUntil('alice\'s containers to be removed', async () => (await containersOf(alice.namespace)).length === 0, { timeoutMs: 60_000, intervalMs: 500 });
  t.deepEqual(await containersOf(bob.namespace), [], 'the probes are gone too');
});

test.serial('a PersistentVolumeClaim on the default StorageClass binds on the node and keeps what a pod wrote', async (t) => {
  t.timeout(5 * 60_000);
  const { namespace } = await studentNamespace(t, 'pat');
  await core.createNamespacedPersistentVolumeClaim({
    namespace,
    body: { metadata: { name: 'work' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '10Mi' } } } },
  });
  const write = (code: string) => ({
    ...placement(),
    command: ['python3', '-c', code],
    volumes: [{ name: 'work', persistentVolumeClaim: { claimName: 'work' } }],
    volumeMounts: [{ name: 'work', mountPath: '/work' }],
  });
  const first = await runToCompletion(admin, namespace, write('open("/work/note", "w").write("kept"); open("/dev/termination-log", "w").write("written")'));
  t.is(first.message, 'written');
  const claim = await core.readNamespacedPersistentVolumeClaim({ name: 'work', namespace });
  t.is(claim.status?.phase, 'Bound');
  t.is(claim.spec?.storageClassName, node.storageClass);
  const second = await runToCompletion(admin, namespace, write('open("/dev/termination-log", "w").write(open("/work/note").read())'));
  t.is(second.message, 'kept');
});

/** A hub on the real node as the backend's ServiceAccount, with its own prefix; destroyed (and its namespaces deleted) after the test. */
async function hubOnNode(t: { teardown(fn: () => unknown): void }, name: string, image: string, sizes: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  await applyRbac(admin);
  const dir = await mkdtemp(join(tmpdir(), 'clusterhub-real-node-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const kubeconfig = join(dir, 'kubeconfig.json');
  await writeFile(kubeconfig, (await backendKubeConfig(admin)).exportConfig(), { mode: 0o600 });
  const prefix = plane.newPrefix(name);
  const hub = await startTestHub({
    config: {
      spawn: { backend: 'kubernetes', startTimeoutSeconds: sizes.schedulerResources ? 300 : 120 },
      kubernetes: {
        kubeconfig, namespacePrefix: prefix, instance: prefix, image, imagePullPolicy: 'IfNotPresent',
        nodeSelector: node.nodeSelector, tolerations: node.tolerations, routeTarget: 'http://{clusterIP}:8888',
        schedulerResources: { cpu: '200m', memory: '256Mi' }, workerResources: { cpu: '100m', memory: '128Mi' }, ...sizes,
      },
      ...extra,
    },
  });
  t.teardown(async () => {
    await hub.destroy();
    const left = await core.listNamespace({ labelSelector: `clusterhub.io/instance=${prefix}` });
    await Promise.all(left.items.map((n) => core.deleteNamespace({ name: n.metadata!.name! }).catch(() => {})));
  });
  return { hub, prefix };
}

test.serial('through the hub, a launch with an image tag that does not exist fails with Kubernetes\' reason within the start timeout and leaves nothing running (the namespace stays only for a bound claim)', async (t) => {
  t.timeout(4 * 60_000);
  const image = `${node.images.cluster.ref.replace(/:[^:/]+$/, '')}:no-such-tag`;
  const { hub, prefix } = await hubOnNode(t, 'bad', image);
  const token = hub.token('carol');
  const started = performance.now();
  const res = await apiAs(hub, token, '/hub/api/users/carol/cluster', { method: 'POST', json: { workers: 1 } });
  t.is(res.status, 202);
  const events = await readProgress(hub, token, 'carol');
  const seconds = (performance.now() - started) / 1000;
  const last = events.at(-1)!;
  t.log(`${seconds.toFixed(1)} s: ${String(last.message)}`);
  t.is(last.failed, true);
  t.regex(String(last.message), /Failed to pull image "[^"]+:no-such-tag"|ErrImagePull|ImagePullBackOff/);
  t.true(seconds < 120, 'within the start timeout');
  // Nothing runs on. The namespace stays only for a bound workspace claim: a worker's pull can fail before the scheduler's claim binds.
  const namespace = namespaceFor(prefix, 'carol');
  await waitUntil('the failed launch\'s pods to go', async () => (await core.listNamespacedPod({ namespace })).items.length === 0, { timeoutMs: 120_000, intervalMs: 500 });
  t.is((await admin.makeApiClient(AppsV1Api).listNamespacedDeployment({ namespace })).items.length, 0, 'no Deployment');
  const kept = await core.readNamespace({ name: namespace }).then((n) => !n.metadata?.deletionTimestamp, () => false);
  const claim = await core.readNamespacedPersistentVolumeClaim({ name: 'workspace', namespace }).catch(() => undefined);
  t.log(kept ? 'the claim was bound: the namespace keeps it' : `the claim was not bound (${claim?.status?.phase ?? 'gone'}): the namespace is deleted`);
  if (kept) t.is(claim?.status?.phase, 'Bound');
  else await namespaceGone(admin, namespace);
});

/** Jupyter's contents API through the hub's proxy with the cluster's token, as JupyterLab saves and opens files. */
function contents(hub: Awaited<ReturnType<typeof hubOnNode>>['hub'], login: string, path: string, init: { method?: string; json?: unknown } = {}) {
  const row = hub.store.getCluster(login);
  if (!row) throw new Error(`${login} has no cluster`);
  return fetch(`${hub.publicUrl}/user/${login}/api/contents/${path}`, {
    method: init.method ?? 'GET', headers: { Authorization: `token ${row.jupyterToken}`, 'Content-Type': 'application/json' },
    body: init.json === undefined ? undefined : JSON.stringify(init.json), signal: AbortSignal.timeout(30_000),
  });
}

test.serial('through the hub on the node, the workspace claim keeps a notebook and edited materials through a stop and a cull; a reset gives a fresh workspace with the materials cloned again', async (t) => {
  t.timeout(20 * 60_000);
  // The course's materials on a git server the pods reach on the node's bridge.
  const bare = await makeBareMaterialsRepo();
  const git = await serveGitRepo(bare, node.address);
  t.teardown(async () => {
    await git.close();
    await rm(dirname(bare), { recursive: true, force: true });
  });
  // Sizes a real Jupyter, Dask scheduler and Spark master fit in; a culler that sweeps every 5 s.
  const idleTimeoutSeconds = 45;
  const { hub, prefix } = await hubOnNode(t, 'ws', node.images.cluster.ref,
    { schedulerResources: { cpu: '500m', memory: '2Gi' }, workerResources: { cpu: '400m', memory: '1536Mi' }, materialsGitUrl: git.url, materialsGitRef: 'main' },
    { culler: { enabled: true, schedule: '*/5 * * * * *', idleTimeoutSeconds } });
  const teacher = hub.token('teacher', { admin: true });
  hub.token('dana');
  const launch = async () => {
    const started = performance.now();
    const res = await apiAs(hub, teacher, '/hub/api/users/dana/cluster', { method: 'POST', json: { workers: 1 } });
    if (res.status !== 202) throw new Error(`launch: ${res.status} ${await res.text()}`);
    const last = (await readProgress(hub, teacher, 'dana')).at(-1)!;
    if (!last.ready) throw new Error(`launch failed: ${String(last.message)}`);
    return (performance.now() - started) / 1000;
  };
  const readme = async () => {
    const res = await contents(hub, 'dana', 'materials/README.md');
    return res.status === 200 ? ((await res.json()) as { content: string }).content : `HTTP ${res.status}`;
  };
  const claimUid = async () => (await core.readNamespacedPersistentVolumeClaim({ name: 'workspace', namespace: namespaceFor(prefix, 'dana') })).metadata?.uid;
  const notebook = { cells: [], metadata: {}, nbformat: 4, nbformat_minor: 5 };
  const edited = `${MATERIALS_README}My notes on week 1.\n`;

  const fresh = await launch();
  t.is(await readme(), MATERIALS_README, 'the materials are cloned into a new workspace');
  t.is(git.clones(), 1);
  t.is((await contents(hub, 'dana', 'work.ipynb', { method: 'PUT', json: { type: 'notebook', content: notebook } })).status, 201);
  t.is((await contents(hub, 'dana', 'materials/README.md', { method: 'PUT', json: { type: 'file', format: 'text', content: edited } })).status, 200);
  const claim = await claimUid();

  t.is((await apiAs(hub, teacher, '/hub/api/users/dana/cluster', { method: 'DELETE' })).status, 204);
  const again = await launch();
  t.is((await contents(hub, 'dana', 'work.ipynb')).status, 200, 'the notebook survived the stop');
  t.is(await readme(), edited, 'the student\'s edit of the materials is not cloned over');
  t.is(await claimUid(), claim, 'the same claim');

  // Left alone, the cluster is culled by the idle timeout, and the next launch finds the work.
  const idleSince = Date.now();
  await waitUntil('the idle cluster to be culled', async () => hub.store.listEvents({ user: 'dana', kind: 'culled', limit: 1 }).length === 1,
    { timeoutMs: (idleTimeoutSeconds + 180) * 1000, intervalMs: 1000 });
  t.log(`culled ${((Date.now() - idleSince) / 1000).toFixed(0)} s after the last request (idle timeout ${idleTimeoutSeconds} s)`);
  t.is(hub.manager.view('dana').phase, 'stopped');
  const afterCull = await launch();
  t.is((await contents(hub, 'dana', 'work.ipynb')).status, 200, 'the notebook survived the cull');
  t.is(await readme(), edited);
  t.is(await claimUid(), claim);
  t.is(git.clones(), 1, 'relaunches never clone again');

  t.true((await apiAs(hub, teacher, '/hub/api/users/dana/reset', { method: 'POST' })).status < 300);
  const afterReset = await launch();
  t.is((await contents(hub, 'dana', 'work.ipynb')).status, 404, 'a reset gives a fresh workspace');
  t.is(await readme(), MATERIALS_README, 'with the materials cloned again');
  t.is(git.clones(), 2);
  t.not(await claimUid(), claim);
  t.log(`real node, 1 worker: fresh workspace ${fresh.toFixed(1)} s, relaunch after a stop ${again.toFixed(1)} s, after a cull ${afterCull.toFixed(1)} s, after a reset ${afterReset.toFixed(1)} s`);
});

test.serial('the hub image built here runs on the node: its own Node and dependencies check the example configuration', async (t) => {
  t.timeout(4 * 60_000);
  t.true(existsSync(node.images.hub.archive), `the hub image is built by: bash test/kube/images.sh (${node.images.hub.archive})`);
  await node.ctr(['images', 'import', '--snapshotter', 'overlayfs', node.images.hub.archive]);
  const { namespace } = await studentNamespace(t, 'hubimage');
  const end = await runToCompletion(admin, namespace, {
    image: node.images.hub.ref, nodeSelector: node.nodeSelector, tolerations: node.tolerations, memory: '256Mi',
    command: ['sh', '-c', 'node hub/cli.ts check-config config/example.yaml > /dev/termination-log 2>&1'],
  });
  t.is(end.exitCode, 0, end.message);
  t.is(end.message.trim(), 'configuration OK (config/example.yaml)');
});

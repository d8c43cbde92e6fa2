/**
 * The Kubernetes backend against a real control plane (kube-apiserver, controller-manager,
 * scheduler, etcd; kwok fake nodes), running as the hub's ServiceAccount with only the
 * rights of k8s/rbac. kwok pods become Running/Ready but run nothing, so nothing here
 * expects Jupyter to answer.
 */
import test from 'ava';
import {
  AppsV1Api, CoreV1Api, KubeConfig, NetworkingV1Api, RbacAuthorizationV1Api, type V1PersistentVolumeClaim, type V1Pod,
} from '@kubernetes/client-node';
import { configSchema, type ConfigInput } from '../config/schema.ts';
import { namespaceFor } from '../spawner/names.ts';
import { silentLogger } from '../shared/log.ts';
import { ChpClient } from '../proxy/client.ts';
import { ChpSupervisor } from '../proxy/supervisor.ts';
import { KubernetesBackend } from '../spawner/kubernetes/backend.ts';
import { ClusterError, type ProgressEvent } from '../spawner/types.ts';
import { backendContract } from './contracts/backend.ts';
import { ensurePlane, type Plane } from './kube/plane.ts';
import { watchUntil } from './kube/watch.ts';
import { applyRbac, backendKubeConfig } from './helpers/kube-rbac.ts';
import { freePort, startHttpTarget, waitUntil } from './helpers/net.ts';
import { startTestProvisioner, TEST_STORAGE_CLASS, type TestProvisioner } from './helpers/kube-volumes.ts';

const LAUNCH_MS = 120_000;
let plane: Plane;
let admin: KubeConfig;
let asBackend: KubeConfig;

let provisioner: TestProvisioner | undefined;

test.before(async () => {
  plane = await ensurePlane({ nodes: 4 });
  admin = new KubeConfig();
  admin.loadFromFile(plane.kubeconfigPath);
  await applyRbac(admin);
  asBackend = await backendKubeConfig(admin);
  provisioner = await startTestProvisioner(admin);
});

test.after.always(async () => {
  await provisioner?.stop();
  await plane?.stop();
});

/**
 * What still runs in a user's namespace once its pods had a minute to go: pods, Deployments,
 * Services and Secrets. A kept namespace may hold the workspace claim and the fences; one
 * being deleted counts as empty once gone (or, on a loaded machine, once it runs nothing).
 */
async function leftovers(namespace: string): Promise<string[]> {
  const core = admin.makeApiClient(CoreV1Api);
  const exists = await core.readNamespace({ name: namespace }).catch(() => undefined);
  if (!exists) return [];
  // A namespace being deleted (a failed launch without a bound claim, a reset): gone, or at least empty of workloads.
  if (exists.metadata?.deletionTimestamp && (await namespaceGone(namespace).then(() => true, () => false))) return [];
  await podsUntil(namespace, `the pods of ${namespace} to go`, (pods) => pods.length === 0, 60_000).catch(() => {});
  const apps = admin.makeApiClient(AppsV1Api);
  const [pods, deployments, services, secrets] = await Promise.all([
    core.listNamespacedPod({ namespace }), apps.listNamespacedDeployment({ namespace }),
    core.listNamespacedService({ namespace }), core.listNamespacedSecret({ namespace }),
  ]);
  return [
    ...pods.items.map((o) => `pod ${o.metadata?.name}`), ...deployments.items.map((o) => `deployment ${o.metadata?.name}`),
    ...services.items.map((o) => `service ${o.metadata?.name}`), ...secrets.items.map((o) => `secret ${o.metadata?.name}`),
  ];
}

/** The workspace claim of a namespace, once bound (the test provisioner answers it). */
async function boundClaim(namespace: string): Promise<V1PersistentVolumeClaim> {
  return waitUntil(`the workspace claim in ${namespace} to be bound`, async () => {
    const claim = await admin.makeApiClient(CoreV1Api).readNamespacedPersistentVolumeClaim({ name: 'workspace', namespace }).catch(() => undefined);
    return claim?.status?.phase === 'Bound' ? claim : undefined;
  }, { timeoutMs: 60_000, intervalMs: 250 });
}

// The contract every backend passes (serial tests, run before the ones below).
let contractNs = (login: string) => login;
let failingNs = (login: string) => login;
backendContract(test, async () => {
  const made = makeBackend();
  contractNs = made.ns;
  return { backend: made.backend, cleanup: () => made.backend.close() };
}, {
  name: 'kubernetes',
  user: 'contract-user',
  workers: 2,
  scaledWorkers: 3,
  failingUser: 'contract-fails',
  async makeFailing() {
    const made = makeBackend({ nodeSelector: { 'clusterhub.io/pool': 'nowhere' } });
    failingNs = made.ns;
    return { backend: made.backend, cleanup: () => made.backend.close() };
  },
  leftovers: (user) => leftovers(user === 'contract-fails' ? failingNs(user) : contractNs(user)),
});

/** A backend of its own (prefix and instance) for one test, closed with the test. */
function backendFor(t: { teardown(fn: () => unknown): void }, kubernetes: ConfigInput['kubernetes'] = {}) {
  const made = makeBackend(kubernetes);
  t.teardown(() => made.backend.close());
  return made;
}

/** A backend with its own namespace prefix and instance label, as the hub's ServiceAccount. */
function makeBackend(kubernetes: ConfigInput['kubernetes'] = {}) {
  const prefix = plane.newPrefix('kb');
  const config = configSchema.parse({
    spawn: { maxWorkers: 100, defaultWorkers: 2 },
    kubernetes: {
      namespacePrefix: prefix,
      instance: prefix,
      image: 'clusterhub/cluster:test',
      schedulerResources: { cpu: '200m', memory: '256Mi' },
      workerResources: { cpu: '100m', memory: '128Mi' },
      ...kubernetes,
    },
  });
  const backend = new KubernetesBackend({ config, kubeConfig: asBackend, log: silentLogger() });
  return { backend, config, ns: (login: string) => namespaceFor(prefix, login) };
}

/** Runs a launch to its end: the events, or the error it threw. */
async function launch(backend: KubernetesBackend, user: string, workers = 2, signal = AbortSignal.timeout(LAUNCH_MS)) {
  const events: ProgressEvent[] = [];
  try {
    for await (const e of backend.start(user, { workers, jupyterToken: `token-of-${user}`, baseUrl: `/user/${user}/`, signal })) events.push(e);
    return { events, ready: events.at(-1)?.ready === true ? events.at(-1)! : undefined, error: undefined };
  } catch (error) {
    return { events, ready: undefined, error: error as Error };
  }
}

/** Resolves once the namespace no longer exists (watched from the list's resourceVersion). */
async function namespaceGone(name: string, timeoutMs = 60_000): Promise<void> {
  const core = admin.makeApiClient(CoreV1Api);
  const list = await core.listNamespace({ fieldSelector: `metadata.name=${name}` });
  if (list.items.length === 0) return;
  await watchUntil(admin, '/api/v1/namespaces', { fieldSelector: `metadata.name=${name}`, resourceVersion: list.metadata?.resourceVersion },
    (phase) => (phase === 'DELETED' ? true : undefined), { what: `namespace ${name} to be deleted`, timeoutMs });
}

/**
 * Resolves with the namespace's pods once `done(pods)` holds: listed, then watched from the
 * list's resourceVersion (a replay without one would pass through every count on its way).
 */
async function podsUntil(namespace: string, what: string, done: (pods: V1Pod[]) => boolean, timeoutMs = 180_000): Promise<V1Pod[]> {
  const list = await admin.makeApiClient(CoreV1Api).listNamespacedPod({ namespace });
  const pods = new Map(list.items.map((p) => [p.metadata!.name!, p]));
  if (done([...pods.values()])) return [...pods.values()];
  return watchUntil(admin, `/api/v1/namespaces/${namespace}/pods`, { resourceVersion: list.metadata?.resourceVersion }, (phase, pod: V1Pod) => {
    if (phase === 'DELETED') pods.delete(pod.metadata!.name!);
    else pods.set(pod.metadata!.name!, pod);
    return done([...pods.values()]) ? [...pods.values()] : undefined;
  }, { what, timeoutMs });
}

const isReady = (p: V1Pod) => !p.metadata?.deletionTimestamp && (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
const workersOf = (pods: readonly V1Pod[]) => pods.filter((p) => p.metadata?.labels?.['app.kubernetes.io/component'] === 'workers');

test('a launch creates every object, they pass admission, the scheduler is Ready and the proxy routes to the Service', async (t) => {
  const { backend, ns } = backendFor(t);
  const { events, ready, error } = await launch(backend, 'Alice', 2);
  t.is(error, undefined);
  const namespace = ns('Alice');
  t.is(ready?.url, `http://scheduler.${namespace}.svc.cluster.local:8888`);
  const messages = events.map((e) => e.message);
  t.true(messages.includes(`Namespace ${namespace} created`));
  t.true(messages.some((m) => /^Scheduler pod scheduled on kwok-node-/.test(m)), messages.join('\n'));
  t.true(messages.includes('Scheduler ready'));
  t.true(messages.includes('2 of 2 workers ready'));
  t.deepEqual(events.map((e) => e.progress), [...events.map((e) => e.progress)].sort((a, b) => a - b));

  const core = admin.makeApiClient(CoreV1Api);
  const apps = admin.makeApiClient(AppsV1Api);
  const nsObj = await core.readNamespace({ name: namespace });
  t.like(nsObj.metadata?.labels, { 'app.kubernetes.io/managed-by': 'clusterhub', 'pod-security.kubernetes.io/enforce': 'restricted' });
  t.is(nsObj.metadata?.annotations?.['clusterhub.io/login'], 'Alice');
  await core.readNamespacedResourceQuota({ name: 'cluster', namespace });
  await core.readNamespacedLimitRange({ name: 'cluster', namespace });
  await admin.makeApiClient(NetworkingV1Api).readNamespacedNetworkPolicy({ name: 'cluster', namespace });
  t.false((await core.readNamespacedServiceAccount({ name: 'cluster', namespace })).automountServiceAccountToken);
  const secret = await core.readNamespacedSecret({ name: 'jupyter-token', namespace });
  t.is(Buffer.from(secret.data!['token']!, 'base64').toString(), 'token-of-Alice');
  t.is((await core.readNamespacedService({ name: 'scheduler', namespace })).spec?.ports?.find((p) => p.name === 'jupyter')?.port, 8888);
  t.is((await apps.readNamespacedDeployment({ name: 'workers', namespace })).status?.readyReplicas, 2);
  await admin.makeApiClient(RbacAuthorizationV1Api).readNamespacedRoleBinding({ name: 'clusterhub-backend', namespace });
  const pods = (await core.listNamespacedPod({ namespace })).items;
  t.is(pods.filter(isReady).length, 3, 'every pod passed PodSecurity restricted and is Ready');

  const hub = await startHttpTarget('hub');
  t.teardown(hub.close);
  const proxy = new ChpSupervisor({ port: await freePort(), apiPort: await freePort(), defaultTarget: hub.url, authToken: 'kube-test-token-0123456789', logLevel: 'warn' });
  await proxy.start();
  t.teardown(() => proxy.stop());
  const chp = new ChpClient({ apiUrl: proxy.apiUrl, authToken: 'kube-test-token-0123456789' });
  await chp.addRoute('/user/Alice', ready!.url!, { user: 'Alice', cluster: 'kubernetes' });
  t.is((await chp.getRoutes())['/user/Alice']?.target, `http://scheduler.${namespace}.svc.cluster.local:8888`);

  t.like(await backend.status('Alice'), { state: 'running', workers: 2, readyWorkers: 2 });
  const listed = (await backend.list()).find((l) => l.user === 'Alice');
  t.like(listed, { state: 'running', workers: 2, jupyterToken: 'token-of-Alice', url: ready!.url });
  await backend.stop('Alice');
});

test('scale 2 → 100 → 2 runs every worker, then removes them', async (t) => {
  const { backend, ns } = backendFor(t);
  t.is((await launch(backend, 'scaler', 2)).error, undefined);
  const namespace = ns('scaler');
  await backend.scale('scaler', 100);
  const up = await podsUntil(namespace, '100 Ready workers', (pods) => workersOf(pods).filter(isReady).length === 100);
  t.true(workersOf(up).every((p) => p.status?.phase === 'Running'));
  // The backend sees the pods through its own watch, a moment behind the test's.
  const reported = await waitUntil('the backend to report 100 ready workers', async () => {
    const status = await backend.status('scaler');
    return status.readyWorkers === 100 ? status : undefined;
  }, { timeoutMs: 30_000, intervalMs: 100 });
  t.like(reported, { state: 'running', workers: 100, readyWorkers: 100 });
  await backend.scale('scaler', 2);
  const down = await podsUntil(namespace, 'workers back to 2', (pods) => workersOf(pods).length === 2);
  t.is(workersOf(down).filter(isReady).length, 2);
  await t.throwsAsync(backend.scale('scaler', 101), { instanceOf: ClusterError, message: /from 0 to 100, got 101/ });
  await backend.stop('scaler');
});

test('stop removes the workloads and keeps the workspace claim; a relaunch mounts the same claim; a reset removes the namespace', async (t) => {
  const { backend, ns } = backendFor(t);
  const started = performance.now();
  const first = await launch(backend, 'stopper', 1);
  const freshSeconds = (performance.now() - started) / 1000;
  t.is(first.error, undefined);
  const claim = await boundClaim(ns('stopper'));
  await backend.stop('stopper');
  await backend.stop('stopper');
  t.like(await backend.status('stopper'), { state: 'stopped' });
  t.deepEqual(await leftovers(ns('stopper')), [], 'no pod, Deployment, Service or Secret');
  t.is((await boundClaim(ns('stopper'))).metadata?.uid, claim.metadata?.uid, 'the claim stays bound');
  t.deepEqual(await backend.list(), [], 'a namespace holding only a workspace is no cluster');

  const restarted = performance.now();
  const second = await launch(backend, 'stopper', 1);
  t.log(`kwok, 1 worker: launch with a fresh workspace ${freshSeconds.toFixed(1)} s, relaunch in the existing one ${((performance.now() - restarted) / 1000).toFixed(1)} s`);
  t.is(second.error, undefined);
  t.true(second.events.some((e) => e.message === 'Your workspace is kept: starting in it'));
  t.false(second.events.some((e) => /Namespace .* created/.test(e.message)));
  const isScheduler = (x: V1Pod) => isReady(x) && x.metadata?.labels?.['app.kubernetes.io/component'] === 'scheduler';
  const pods = await podsUntil(ns('stopper'), 'the relaunched scheduler', (p) => p.some(isScheduler));
  t.is(pods.find(isScheduler)!.spec?.volumes?.find((v) => v.name === 'workspace')?.persistentVolumeClaim?.claimName, 'workspace');
  t.is((await boundClaim(ns('stopper'))).metadata?.uid, claim.metadata?.uid, 'the same claim');

  await backend.stop('stopper', { removeWorkspace: true });
  await namespaceGone(ns('stopper'));
  const pv = await admin.makeApiClient(CoreV1Api).readPersistentVolume({ name: claim.spec!.volumeName! });
  t.is(pv.status?.phase, 'Released', 'the claim went with the namespace');
});

test('with a ReadWriteMany workspace the scheduler and every worker mount the same claim', async (t) => {
  const { backend, ns } = backendFor(t, { workspace: { accessMode: 'ReadWriteMany' } });
  t.is((await launch(backend, 'shared', 3)).error, undefined);
  const claim = await boundClaim(ns('shared'));
  t.deepEqual(claim.spec?.accessModes, ['ReadWriteMany']);
  const pods = (await podsUntil(ns('shared'), 'the scheduler and 3 workers Ready', (p) => p.filter(isReady).length === 4)).filter(isReady);
  t.deepEqual(pods.map((p) => p.spec?.volumes?.find((v) => v.name === 'workspace')?.persistentVolumeClaim?.claimName), ['workspace', 'workspace', 'workspace', 'workspace']);
  t.true(pods.every((p) => p.spec?.containers[0]?.volumeMounts?.some((m) => m.name === 'workspace' && m.mountPath === '/workspace')));
  await backend.stop('shared', { removeWorkspace: true });
});

test('a launch while the previous namespace is terminating (a reset) waits for it, then succeeds in a new workspace', async (t) => {
  const { backend, ns } = backendFor(t);
  t.is((await launch(backend, 'again', 1)).error, undefined);
  const claim = await boundClaim(ns('again'));
  await backend.stop('again', { removeWorkspace: true });
  const second = await launch(backend, 'again', 1);
  t.is(second.error, undefined);
  t.is(second.events[0]?.message, 'Waiting for the previous cluster to finish terminating');
  t.true(second.ready?.ready);
  t.not((await boundClaim(ns('again'))).metadata?.uid, claim.metadata?.uid, 'a fresh claim');
  await backend.stop('again', { removeWorkspace: true });
});

test('20 users launching at once all succeed', async (t) => {
  const { backend } = backendFor(t);
  const users = Array.from({ length: 20 }, (_, i) => `student-${i}`);
  const results = await Promise.all(users.map((u) => launch(backend, u, 1, AbortSignal.timeout(240_000))));
  t.deepEqual(results.map((r) => r.error?.message), users.map(() => undefined));
  const listed = await backend.list();
  t.deepEqual(listed.map((l) => l.user).sort(), [...users].sort());
  t.true(listed.every((l) => l.state === 'running'));
  await Promise.all(users.map((u) => backend.stop(u)));
});

test('an unschedulable cluster fails with the scheduler\'s reason and leaves nothing running', async (t) => {
  const { backend, ns } = backendFor(t, { nodeSelector: { 'clusterhub.io/pool': 'nowhere' } });
  const { error, events } = await launch(backend, 'nowhere', 1);
  t.true(error instanceof ClusterError);
  t.regex(error!.message, /Unschedulable.*node\(s\) didn't match Pod's node affinity\/selector/);
  t.true(events.some((e) => e.message === 'Scheduler and 1 worker requested'));
  t.deepEqual(await leftovers(ns('nowhere')), []);
});

test('a quota too small fails with FailedCreate and leaves nothing running', async (t) => {
  const { backend, ns } = backendFor(t, { quota: { cpu: '400m', memory: '64Gi', pods: 10 } });
  const { error } = await launch(backend, 'tight', 4);
  t.true(error instanceof ClusterError);
  t.regex(error!.message, /FailedCreate.*exceeded quota/);
  t.deepEqual(await leftovers(ns('tight')), []);
});

test('a failed launch whose claim never bound (a missing storage class) leaves no namespace: the next claim gets the corrected class', async (t) => {
  const { backend, config, ns } = backendFor(t, { workspace: { storageClass: 'no-such-class' } });
  const { error } = await launch(backend, 'noclass', 1);
  t.true(error instanceof ClusterError);
  t.regex(error!.message, /^the workspace volume cannot be made \(ProvisioningFailed\): .*"no-such-class" not found/);
  const after = await admin.makeApiClient(CoreV1Api).readNamespace({ name: ns('noclass') }).catch(() => undefined);
  t.true(after === undefined || Boolean(after.metadata?.deletionTimestamp), 'the namespace is being deleted, the unbound claim with it');
  const corrected = { ...config, kubernetes: { ...config.kubernetes, workspace: { ...config.kubernetes.workspace, storageClass: undefined } } };
  const fixed = new KubernetesBackend({ config: corrected, kubeConfig: asBackend, log: silentLogger() });
  t.teardown(() => fixed.close());
  t.is((await launch(fixed, 'noclass', 1)).error, undefined);
  t.is((await boundClaim(ns('noclass'))).spec?.storageClassName, TEST_STORAGE_CLASS);
});

test('a pod that PodSecurity restricted refuses fails the launch with the admission message', async (t) => {
  const { backend, ns } = backendFor(t, { extraPodSpec: { hostNetwork: true } });
  const { error } = await launch(backend, 'hostnet', 0);
  t.true(error instanceof ClusterError);
  // The scheduler pod is created by the hub itself: Kubernetes' refusal is the launch's answer at once.
  t.regex(error!.message, /^Kubernetes refused the scheduler pod: .*violates PodSecurity "restricted:latest":.*hostNetwork=true/);
  t.is((error as ClusterError).status, 422);
  t.deepEqual(await leftovers(ns('hostnet')), []);
});

test('a hub restart in the middle of a launch leaves no orphan: a new backend lists it', async (t) => {
  const { backend, config, ns } = backendFor(t);
  const launching = backend.start('crash', { workers: 1, jupyterToken: 'tok', baseUrl: '/user/crash/', signal: AbortSignal.timeout(LAUNCH_MS) });
  for await (const e of launching) if (e.message.startsWith('Scheduler and')) break; // the hub dies here: no cleanup runs
  await backend.close();
  const restarted = new KubernetesBackend({ config, kubeConfig: asBackend, log: silentLogger() });
  t.teardown(() => restarted.close());
  const found = (await restarted.list()).find((l) => l.user === 'crash');
  t.truthy(found);
  t.true(['starting', 'running'].includes(found!.state));
  t.is(found!.jupyterToken, 'tok');
  await restarted.stop('crash');
  t.deepEqual(await leftovers(ns('crash')), []);
  t.false((await restarted.list()).some((l) => l.user === 'crash'));
});

test('the backend\'s identity cannot read Secrets, bind roles or delete outside its namespaces', async (t) => {
  const core = asBackend.makeApiClient(CoreV1Api);
  const status = (p: Promise<unknown>) => p.then(() => 200, (e) => (e as { code?: number }).code);
  t.is(await status(core.listNamespacedSecret({ namespace: 'kube-system' })), 403);
  const plain = plane.newPrefix('plain');
  const adminCore = admin.makeApiClient(CoreV1Api);
  await adminCore.createNamespace({ body: { metadata: { name: plain } } });
  await adminCore.createNamespacedSecret({ namespace: plain, body: { metadata: { name: 's' }, stringData: { k: 'v' } } });
  t.is(await status(core.readNamespacedSecret({ name: 's', namespace: plain })), 403);
  const rbac = asBackend.makeApiClient(RbacAuthorizationV1Api);
  t.is(await status(rbac.createNamespacedRoleBinding({ namespace: plain, body: {
    metadata: { name: 'sneak' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'clusterhub-cluster' },
    subjects: [{ kind: 'ServiceAccount', name: 'clusterhub', namespace: 'clusterhub' }],
  } })), 403);
  t.is(await status(rbac.createNamespacedRoleBinding({ namespace: plain, body: {
    metadata: { name: 'sneak' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [{ kind: 'ServiceAccount', name: 'clusterhub', namespace: 'clusterhub' }],
  } })), 403);
  t.is(await status(core.deleteNamespace({ name: plain })), 403);
  t.is(await status(core.createNamespace({ body: { metadata: { name: `${plain}-x`, labels: { 'app.kubernetes.io/managed-by': 'clusterhub' } } } })), 403);
  t.is((await adminCore.readNamespace({ name: plain })).status?.phase, 'Active');
});

test('a scheduler pod lost (deleted, evicted, its node gone) is not brought back: the cluster is failed and its workspace stays', async (t) => {
  const { backend, ns } = backendFor(t);
  t.truthy((await launch(backend, 'lost', 1)).ready);
  await admin.makeApiClient(CoreV1Api).deleteNamespacedPod({ name: 'scheduler', namespace: ns('lost'), gracePeriodSeconds: 0 });
  await waitUntil('the backend to report the cluster failed', async () => (await backend.status('lost')).state === 'failed', { timeoutMs: 60_000, intervalMs: 100 });
  const status = await backend.status('lost');
  t.regex(status.reason ?? '', /the scheduler pod is gone/);
  t.like((await backend.list()).find((l) => l.user === 'lost'), { state: 'failed' });
  // What the hub then does with a failed cluster: stop it, which keeps the bound claim.
  await backend.stop('lost');
  t.deepEqual(await leftovers(ns('lost')), []);
  t.is((await admin.makeApiClient(CoreV1Api).readNamespacedPersistentVolumeClaim({ name: 'workspace', namespace: ns('lost') })).status?.phase, 'Bound');
  t.truthy((await launch(backend, 'lost', 1)).ready, 'Launch starts a new cluster in the same workspace');
});

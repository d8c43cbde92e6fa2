import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import type { V1Container, V1Deployment, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { configSchema, type ConfigInput } from '../../config/schema.ts';
import { clusterRef } from './context.ts';
import { ANNOTATION_LOGIN, LABEL_INSTANCE, LABEL_LAUNCH, LABEL_MANAGED_BY, LABEL_USER, routeTarget } from './labels.ts';
import type { LaunchSpec } from './types.ts';
import {
  mergeDeep, renderLimitRange, renderNamespace, renderNetworkPolicy, renderQuota, renderRoleBinding, renderSchedulerPod,
  renderSchedulerService, renderServiceAccount, renderTokenSecret, renderWorkerDeployment,
} from './objects.ts';
import { PORTS } from './image-env.ts';

function k8s(input: ConfigInput['kubernetes'] = {}) {
  return configSchema.parse({ kubernetes: input }).kubernetes;
}

function spec(login = 'Alice', workers = 3): LaunchSpec {
  return { ...clusterRef(k8s(), login), workers, baseUrl: `/user/${login}/`, launchId: 'abc123' };
}

const env = (c: V1Container) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
/** The pod spec of the scheduler pod or of the worker Deployment's template. */
const podSpec = (o: V1Pod | V1Deployment): V1PodSpec => (o.kind === 'Pod' ? (o as V1Pod).spec! : (o as V1Deployment).spec!.template.spec!);
const podLabels = (o: V1Pod | V1Deployment): Record<string, string> => (o.kind === 'Pod' ? o.metadata!.labels! : (o as V1Deployment).spec!.template.metadata!.labels!);
const container = (o: V1Pod | V1Deployment) => podSpec(o).containers[0]!;

test('the namespace enforces PodSecurity restricted and keeps the original login in an annotation', (t) => {
  const ns = renderNamespace(k8s({ instance: 'class-a' }), clusterRef(k8s(), 'Alice'));
  const labels = ns.metadata!.labels!;
  t.is(ns.metadata!.name, clusterRef(k8s(), 'Alice').namespace);
  t.is(labels['pod-security.kubernetes.io/enforce'], 'restricted');
  t.is(labels['pod-security.kubernetes.io/enforce-version'], 'latest');
  t.is(labels[LABEL_MANAGED_BY], 'clusterhub');
  t.is(labels[LABEL_INSTANCE], 'class-a');
  t.regex(labels[LABEL_USER]!, /^alice---[0-9a-f]{8}$/);
  t.is(ns.metadata!.annotations![ANNOTATION_LOGIN], 'Alice');
});

test('every object of a cluster carries the managed-by, instance and user labels', (t) => {
  const kube = k8s();
  const ref = clusterRef(kube, 'bob');
  const s = { ...ref, workers: 1, baseUrl: '/user/bob/', launchId: 'x' };
  const objects = [
    renderQuota(kube, ref), renderLimitRange(kube, ref), renderNetworkPolicy(kube, ref), renderServiceAccount(kube, ref),
    renderTokenSecret(kube, ref, { jupyterToken: 'tok', ippKey: 'k' }), renderSchedulerService(kube, ref), renderSchedulerPod(kube, s), renderWorkerDeployment(kube, s),
    renderRoleBinding(kube, ref, 'clusterhub-cluster', { kind: 'ServiceAccount', name: 'hub', namespace: 'clusterhub' }),
  ];
  for (const o of objects) {
    t.is(o.metadata!.namespace, 'clusterhub-bob', o.kind);
    t.like(o.metadata!.labels, { [LABEL_MANAGED_BY]: 'clusterhub', [LABEL_INSTANCE]: 'default', [LABEL_USER]: 'bob' }, o.kind);
  }
});

test('every container runs with the securityContext PodSecurity restricted requires', (t) => {
  const kube = k8s();
  for (const d of [renderSchedulerPod(kube, spec()), renderWorkerDeployment(kube, spec())]) {
    const pod = podSpec(d);
    t.like(pod.securityContext, { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } });
    t.false(pod.automountServiceAccountToken);
    for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
      t.like(c.securityContext, { runAsNonRoot: true, runAsUser: 1000, allowPrivilegeEscalation: false, seccompProfile: { type: 'RuntimeDefault' } });
      t.deepEqual(c.securityContext!.capabilities, { drop: ['ALL'] });
      t.falsy(c.securityContext!.privileged);
    }
  }
});

test('the scheduler is one pod running the image in scheduler mode with its token from the Secret and a probe that needs no token', (t) => {
  const kube = k8s({ image: 'registry.example/cluster:1', schedulerResources: { cpu: '2', memory: '6Gi' } });
  const d = renderSchedulerPod(kube, spec('Alice'));
  const c = container(d);
  t.is(d.kind, 'Pod');
  t.is(d.metadata!.name, 'scheduler');
  t.is(d.spec!.restartPolicy, 'Always');
  t.is(c.image, 'registry.example/cluster:1');
  t.deepEqual(c.args, ['scheduler']);
  t.deepEqual(c.resources, { requests: { cpu: '2', memory: '6Gi' }, limits: { cpu: '2', memory: '6Gi' } });
  const e = env(c);
  t.deepEqual(e['CLUSTER_BIND'], { fieldRef: { fieldPath: 'status.podIP' } });
  t.is(e['CLUSTER_BASE_URL'], '/user/Alice/');
  t.deepEqual(e['CLUSTER_JUPYTER_TOKEN'], { secretKeyRef: { name: 'jupyter-token', key: 'token' } });
  t.deepEqual(c.readinessProbe!.httpGet, { path: '/user/Alice/api', port: 'jupyter' });
  t.is(podLabels(d)[LABEL_LAUNCH], 'abc123');
});

test('workers run in worker mode, N replicas, pointed at the scheduler Service', (t) => {
  const kube = k8s({ workerResources: { cpu: '1500m', memory: '3Gi' } });
  const s = spec('bob', 5);
  const d = renderWorkerDeployment(kube, s);
  t.is(d.metadata!.name, 'workers');
  t.is(d.spec!.replicas, 5);
  t.deepEqual(container(d).args, ['worker']);
  const e = env(container(d));
  t.is(e['CLUSTER_SCHEDULER_HOST'], 'scheduler.clusterhub-bob.svc');
  t.is(e['CLUSTER_THREADS'], '2');
  t.is(e['CLUSTER_MEMORY'], '3Gi');
  t.is(e['CLUSTER_JUPYTER_TOKEN'], undefined);
  // The worker Deployment never adopts the scheduler pod.
  const selector = d.spec!.selector!.matchLabels!;
  t.false(Object.entries(selector).every(([k, v]) => podLabels(renderSchedulerPod(kube, s))[k] === v));
  t.true(Object.entries(selector).every(([k, v]) => podLabels(d)[k] === v));
  t.like(container(d).resources, { limits: { cpu: '1500m', memory: '3Gi' }, requests: { memory: '3Gi' } });
  // The driver runs on the scheduler and sizes Spark's executors: it is told the workers' size, not its own.
  const scheduler = env(container(renderSchedulerPod(kube, s)));
  t.is(scheduler['CLUSTER_THREADS'], '2');
  t.is(scheduler['CLUSTER_MEMORY'], '3Gi');
});

test('a worker pod starts its worker only once the scheduler\'s Dask port answers (an init container of the same image, restricted, same size)', async (t) => {
  const kube = k8s({ workerResources: { cpu: '1500m', memory: '3Gi' } });
  const d = renderWorkerDeployment(kube, spec('bob', 2));
  const [init, ...more] = d.spec!.template.spec!.initContainers ?? [];
  t.deepEqual(more, []);
  t.is(init!.image, container(d).image);
  t.deepEqual(init!.resources, container(d).resources);
  t.deepEqual(init!.securityContext, container(d).securityContext);
  t.deepEqual(init!.command!.slice(-2), ['scheduler.clusterhub-bob.svc', '8786']);
  t.is(renderSchedulerPod(kube, spec('bob')).spec!.initContainers, undefined);

  // The script itself, against a port that starts listening only after it has waited.
  const port = await new Promise<number>((resolve) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = (s.address() as AddressInfo).port; s.close(() => resolve(p)); }); });
  const child = spawn('python3', [...init!.command!.slice(1, -2), '127.0.0.1', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = once(child, 'exit');
  await once(child.stdout, 'data');
  t.is(child.exitCode, null, 'still waiting while nothing listens');
  const server = createServer((socket) => socket.destroy()).listen(port, '127.0.0.1');
  t.teardown(() => server.close());
  const [code] = await exited;
  t.is(code, 0);
});

test('the scheduler Service names Jupyter, Dask, Spark and IPython Parallel ports', (t) => {
  const svc = renderSchedulerService(k8s(), clusterRef(k8s(), 'bob'));
  const ports = Object.fromEntries(svc.spec!.ports!.map((p) => [p.name, p.port]));
  t.like(ports, { jupyter: 8888, dask: 8786, 'dask-dashboard': 8787, spark: 7077, 'spark-ui': 8080, 'ipp-0': 10101 });
  for (const p of svc.spec!.ports!) t.true(p.name!.length <= 15);
  const scheduler = podLabels(renderSchedulerPod(k8s(), spec('bob')));
  t.true(Object.entries(svc.spec!.selector!).every(([k, v]) => scheduler[k] === v), 'selects the scheduler pod');
  t.false(Object.entries(svc.spec!.selector!).every(([k, v]) => podLabels(renderWorkerDeployment(k8s(), spec('bob')))[k] === v), 'and no worker');
  t.is(Object.keys(PORTS).length, svc.spec!.ports!.length);
  // Workers dial Dask before Jupyter (the readiness probe) answers.
  t.true(svc.spec!.publishNotReadyAddresses);
});

test('the route target is the Service, with the namespace substituted', (t) => {
  t.is(routeTarget(k8s(), 'clusterhub-bob'), 'http://scheduler.clusterhub-bob.svc.cluster.local:8888');
  t.is(routeTarget(k8s({ routeTarget: 'http://{namespace}.example:80/{namespace}' }), 'n'), 'http://n.example:80/n');
  // A proxy outside the cluster's DNS (on a node with kube-proxy) goes to the Service's address.
  t.is(routeTarget(k8s({ routeTarget: 'http://{clusterIP}:8888' }), 'n', '10.96.7.8'), 'http://10.96.7.8:8888');
});

test('quota and limits come from the configuration defaults', (t) => {
  const kube = k8s();
  const ref = clusterRef(kube, 'bob');
  t.like(renderQuota(kube, ref).spec!.hard, { 'limits.cpu': '16', 'limits.memory': '64Gi', 'requests.cpu': '16', pods: '110' });
  t.deepEqual(renderLimitRange(kube, ref).spec!.limits.find((l) => l.type === 'Pod')!.max, { cpu: '2', memory: '8Gi' });
});

test('ingress is admitted from the namespace and the proxy pods only; egress is open by default', (t) => {
  const kube = k8s({ proxyNamespace: 'hub-ns', proxyPodSelector: { app: 'chp' } });
  const np = renderNetworkPolicy(kube, clusterRef(kube, 'bob'));
  t.deepEqual(np.spec!.policyTypes, ['Ingress']);
  t.deepEqual(np.spec!.ingress![0]!._from, [
    { podSelector: {} },
    { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'hub-ns' } }, podSelector: { matchLabels: { app: 'chp' } } },
  ]);
  t.is(np.spec!.egress, undefined);
});

test('restrictEgress keeps the namespace and DNS only', (t) => {
  const np = renderNetworkPolicy(k8s({ restrictEgress: true }), clusterRef(k8s(), 'bob'));
  t.deepEqual(np.spec!.policyTypes, ['Ingress', 'Egress']);
  t.deepEqual(np.spec!.egress, [
    { to: [{ podSelector: {} }] },
    { ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] },
  ]);
});

test('the service account mounts no API token and the Secret holds the Jupyter token and the IPython Parallel key', (t) => {
  const ref = clusterRef(k8s(), 'bob');
  t.false(renderServiceAccount(k8s(), ref).automountServiceAccountToken);
  t.deepEqual(renderTokenSecret(k8s(), ref, { jupyterToken: 's3cret', ippKey: 'k3y' }).stringData, { token: 's3cret', 'ipp-key': 'k3y' });
});

test('scheduler and workers get the IPython Parallel key from the Secret, the fixed ports and the scheduler host', (t) => {
  const kube = k8s();
  const s = spec('bob');
  for (const d of [renderSchedulerPod(kube, s), renderWorkerDeployment(kube, s)]) {
    const e = env(container(d));
    t.deepEqual(e['CLUSTER_IPP_KEY'], { secretKeyRef: { name: 'jupyter-token', key: 'ipp-key' } }, d.metadata!.name);
    t.is(e['CLUSTER_IPP_PORTS'], '10101-10116');
    t.is(e['CLUSTER_SCHEDULER_HOST'], 'scheduler.clusterhub-bob.svc');
  }
  // Every port the engines are told about is one the Service forwards.
  const service = new Set(renderSchedulerService(kube, s).spec!.ports!.map((p) => p.port));
  for (let port = 10101; port <= 10116; port++) t.true(service.has(port), String(port));
});

test('nodeSelector, tolerations and extraPodSpec are merged into both pod specs', (t) => {
  const kube = k8s({
    nodeSelector: { pool: 'students' },
    tolerations: [{ key: 'students', operator: 'Exists', effect: 'NoSchedule' }],
    extraPodSpec: { priorityClassName: 'low', nodeSelector: { zone: 'a' }, volumes: [{ name: 'data', emptyDir: {} }] },
  });
  for (const d of [renderSchedulerPod(kube, spec()), renderWorkerDeployment(kube, spec())]) {
    const pod = podSpec(d);
    t.deepEqual(pod.nodeSelector, { pool: 'students', zone: 'a' });
    t.deepEqual(pod.tolerations, [{ key: 'students', operator: 'Exists', effect: 'NoSchedule' }]);
    t.is(pod.priorityClassName, 'low');
    t.deepEqual(pod.volumes!.map((v) => v.name), ['tmp', 'workspace', 'data']);
    t.is(pod.containers.length, 1);
  }
});

test('mergeDeep merges objects, appends arrays and lets scalars from extra win', (t) => {
  t.deepEqual(mergeDeep({ a: { b: 1, c: [1] }, d: 'x' }, { a: { c: [2], e: true }, d: 'y' }), { a: { b: 1, c: [1, 2], e: true }, d: 'y' });
  t.deepEqual(mergeDeep({ a: 1 }, undefined), { a: 1 });
});

test('the RoleBinding grants the named ClusterRole to the given subject in the namespace only', (t) => {
  const rb = renderRoleBinding(k8s(), clusterRef(k8s(), 'bob'), 'clusterhub-cluster', { kind: 'ServiceAccount', name: 'hub', namespace: 'clusterhub' });
  t.deepEqual(rb.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'clusterhub-cluster' });
  t.is(rb.metadata!.namespace, 'clusterhub-bob');
  t.deepEqual(rb.subjects, [{ kind: 'ServiceAccount', name: 'hub', namespace: 'clusterhub' }]);
});

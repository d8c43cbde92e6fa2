import test from 'ava';
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
  type V1Deployment,
  type V1Pod,
} from '@kubernetes/client-node';
import { ensurePlane, type Plane } from './plane.ts';
import { waitForPods, watchUntil } from './watch.ts';

let plane: Plane;
let kc: KubeConfig;
let core: CoreV1Api;
let apps: AppsV1Api;
let rbac: RbacAuthorizationV1Api;

test.before(async (t) => {
  // A fresh machine builds the binaries first (10–25 min); the plane itself starts in seconds.
  t.timeout(40 * 60_000, 'building or starting the control plane');
  plane = await ensurePlane({ nodes: 1 });
  kc = new KubeConfig();
  kc.loadFromFile(plane.kubeconfigPath);
  core = kc.makeApiClient(CoreV1Api);
  apps = kc.makeApiClient(AppsV1Api);
  rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  t.log(`plane ready in ${plane.startupMs} ms at ${plane.server}`);
});

test.after.always(async () => {
  await plane?.stop();
});

/** Creates a namespace and waits until pods may be created in it (its `default` SA exists). */
async function createNamespace(labels: Record<string, string> = {}): Promise<string> {
  const name = plane.newPrefix('smoke');
  await core.createNamespace({ body: { metadata: { name, labels } } });
  await watchUntil(
    kc,
    `/api/v1/namespaces/${name}/serviceaccounts`,
    { fieldSelector: 'metadata.name=default' },
    (phase) => (phase === 'ADDED' ? true : undefined),
    { what: `ServiceAccount ${name}/default`, timeoutMs: 30_000 },
  );
  return name;
}

function deployment(name: string, replicas: number): V1Deployment {
  const labels = { app: name };
  return {
    metadata: { name, labels },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          containers: [
            {
              name: 'main',
              // kwok never pulls: any reference will do.
              image: 'registry.invalid/clusterhub/pause:1',
              resources: { requests: { cpu: '10m', memory: '16Mi' } },
            },
          ],
        },
      },
    },
  };
}

const isRunning = (p: V1Pod) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp;
const isReadyWithIp = (p: V1Pod) =>
  isRunning(p) &&
  Boolean(p.status?.podIP) &&
  (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

function apiError(error: unknown): { code: number; message: string } {
  if (!(error instanceof ApiException)) throw error;
  const body = typeof error.body === 'string' ? JSON.parse(error.body) : error.body;
  return { code: error.code, message: String(body?.message ?? '') };
}

test.serial('a namespace can be created and becomes Active', async (t) => {
  const name = plane.newPrefix('smoke');
  await core.createNamespace({ body: { metadata: { name } } });
  const phase = await watchUntil(
    kc,
    '/api/v1/namespaces',
    { fieldSelector: `metadata.name=${name}` },
    (_phase, ns) => ns.status?.phase,
    { what: `namespace ${name}`, timeoutMs: 10_000 },
  );
  t.is(phase, 'Active');
  await core.deleteNamespace({ name });
});

test.serial('a Deployment reaches 3 Ready pods with IPs, and 100 Running pods when scaled', async (t) => {
  t.timeout(5 * 60_000);
  const namespace = await createNamespace();
  await apps.createNamespacedDeployment({ namespace, body: deployment('web', 3) });

  const three = await waitForPods(kc, namespace, 'app=web', (pods) => pods.filter(isReadyWithIp).length === 3, {
    what: '3 Ready pods with IPs',
    timeoutMs: 60_000,
  });
  const ips = three.filter(isReadyWithIp).map((p) => p.status?.podIP ?? '');
  t.is(new Set(ips).size, 3, `pod IPs are distinct: ${ips.join(', ')}`);
  t.true(ips.every((ip) => ip.startsWith('10.244.')), `pod IPs come from the node podCIDR: ${ips.join(', ')}`);

  const started = performance.now();
  await apps.patchNamespacedDeploymentScale({
    name: 'web',
    namespace,
    body: [{ op: 'replace', path: '/spec/replicas', value: 100 }],
  });
  const hundred = await waitForPods(kc, namespace, 'app=web', (pods) => pods.filter(isRunning).length === 100, {
    what: '100 Running pods',
    timeoutMs: 4 * 60_000,
  });
  const elapsed = Math.round(performance.now() - started);
  t.log(`3 → 100 Running pods in ${elapsed} ms`);
  t.is(hundred.filter(isRunning).length, 100);
  await core.deleteNamespace({ name: namespace });
});

test.serial('deleting a namespace with running pods completes', async (t) => {
  const namespace = await createNamespace();
  await apps.createNamespacedDeployment({ namespace, body: deployment('doomed', 5) });
  await waitForPods(kc, namespace, 'app=doomed', (pods) => pods.filter(isRunning).length === 5, {
    what: '5 Running pods',
    timeoutMs: 60_000,
  });
  // Watch from the namespace's current version so the DELETED event cannot be missed.
  const { metadata } = await core.readNamespace({ name: namespace });
  const started = performance.now();
  await core.deleteNamespace({ name: namespace });
  const gone = await watchUntil(
    kc,
    '/api/v1/namespaces',
    { fieldSelector: `metadata.name=${namespace}`, resourceVersion: metadata?.resourceVersion },
    (phase) => (phase === 'DELETED' ? true : undefined),
    { what: `namespace ${namespace} to be deleted`, timeoutMs: 120_000 },
  );
  t.true(gone);
  t.log(`namespace deletion took ${Math.round(performance.now() - started)} ms`);
});

test.serial('a privileged pod in a restricted namespace is rejected by PodSecurity admission', async (t) => {
  const namespace = await createNamespace({ 'pod-security.kubernetes.io/enforce': 'restricted' });
  const error = await t.throwsAsync(
    core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'privileged' },
        spec: {
          containers: [
            { name: 'main', image: 'registry.invalid/clusterhub/pause:1', securityContext: { privileged: true } },
          ],
        },
      },
    }),
  );
  if (!error) return;
  const { code, message } = apiError(error);
  t.is(code, 403);
  t.regex(message, /violates PodSecurity "restricted:latest"/);
  t.regex(message, /privileged/);
  await core.deleteNamespace({ name: namespace });
});

test.serial('a ServiceAccount token bound to a narrow Role is allowed inside it and refused outside', async (t) => {
  const namespace = await createNamespace();
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'narrow' } } });
  await rbac.createNamespacedRole({
    namespace,
    body: {
      metadata: { name: 'read-configmaps' },
      rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }],
    },
  });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name: 'narrow-reads-configmaps' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read-configmaps' },
      subjects: [{ kind: 'ServiceAccount', name: 'narrow', namespace }],
    },
  });
  const request = await core.createNamespacedServiceAccountToken({
    name: 'narrow',
    namespace,
    body: { spec: { audiences: [], expirationSeconds: 600 } },
  });
  const token = request.status?.token;
  t.truthy(token, 'the TokenRequest API returns a token');

  const asSa = new KubeConfig();
  const cluster = kc.getCurrentCluster();
  if (!cluster || !token) return;
  asSa.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'narrow', token }],
    contexts: [{ name: 'narrow', cluster: cluster.name, user: 'narrow' }],
    currentContext: 'narrow',
  });
  const saCore = asSa.makeApiClient(CoreV1Api);

  const refusals = await Promise.all([
    saCore.listNamespacedSecret({ namespace }).then(() => undefined, apiError),
    saCore.listNamespacedConfigMap({ namespace: 'default' }).then(() => undefined, apiError),
    saCore
      .createNamespacedConfigMap({ namespace, body: { metadata: { name: 'nope' } } })
      .then(() => undefined, apiError),
  ]);
  for (const refusal of refusals) {
    t.is(refusal?.code, 403);
    t.regex(refusal?.message ?? '', /system:serviceaccount:.*:narrow/);
  }

  const list = await saCore.listNamespacedConfigMap({ namespace });
  // Every namespace gets the kube-root-ca.crt ConfigMap; the point is that the call is allowed.
  t.true(Array.isArray(list.items));
  await core.deleteNamespace({ name: namespace });
});

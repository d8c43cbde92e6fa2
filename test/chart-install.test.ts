/**
 * The Helm chart on the test plane (kwok nodes: objects are created and pods become Running,
 * but no container runs, so the hub is never ready here). What this proves: every object is
 * admitted, pods under PodSecurity `restricted`; install and upgrade create what the chart
 * says and keep the generated secrets; uninstall leaves students' namespaces alone, and with
 * cluster.removeNamespacesOnUninstall creates the hook Job whose command, run as the hub's
 * ServiceAccount, removes exactly this hub's namespaces. Not proven here: that the Job's pod
 * runs that command (kwok completes Job pods without running them).
 */
import test from 'ava';
import {
  AppsV1Api, CoreV1Api, KubeConfig, KubernetesObjectApi, Watch, type KubernetesObject, type V1Job, type V1PodTemplateSpec,
} from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CHART, CLASS_VALUES, NAMESPACE, ensureHelm, helm, objectsOf, renderChart } from './helpers/helm.ts';
import { backendKubeConfig } from './helpers/kube-rbac.ts';
import { startPlane, type Plane } from './kube/plane.ts';
import { waitForPods, watchUntil } from './kube/watch.ts';

const CLUSTER_SCOPED = new Set(['ClusterRole', 'ClusterRoleBinding', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
const RESTRICTED = { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/warn': 'restricted' };

let bin: string;
let plane: Plane;
let admin: KubeConfig;
let core: CoreV1Api;
let apps: AppsV1Api;
let workDir: string;
/** helm against this plane, in the release namespace. */
const helmHere = (...args: string[]) => helm(bin, [...args, '--namespace', NAMESPACE, '--kubeconfig', plane.kubeconfigPath]);

test.before(async (t) => {
  t.timeout(40 * 60_000, 'building helm and the control plane (cold: minutes)');
  bin = await ensureHelm();
  // A plane of its own: the chart owns the cluster-wide RBAC names other tests apply by hand.
  plane = await startPlane({ nodes: 1 });
  admin = new KubeConfig();
  admin.loadFromFile(plane.kubeconfigPath);
  core = admin.makeApiClient(CoreV1Api);
  apps = admin.makeApiClient(AppsV1Api);
  workDir = await mkdtemp(join(tmpdir(), 'clusterhub-chart-'));
  await core.createNamespace({ body: { metadata: { name: NAMESPACE, labels: RESTRICTED } } });
  await watchUntil(admin, `/api/v1/namespaces/${NAMESPACE}/serviceaccounts`, { fieldSelector: 'metadata.name=default' },
    (phase) => (phase === 'ADDED' ? true : undefined), { what: 'the default ServiceAccount of clusterhub', timeoutMs: 60_000 });
});

test.after.always(async () => {
  await plane?.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

const inNamespace = (o: KubernetesObject): KubernetesObject =>
  CLUSTER_SCOPED.has(o.kind ?? '') ? o : { ...o, metadata: { ...o.metadata, namespace: NAMESPACE } };

/** A Pod from a workload's template, as the controller would create it (PodSecurity is enforced on Pods). */
const podOf = (name: string, template: V1PodTemplateSpec) => ({ metadata: { name, labels: template.metadata?.labels }, spec: template.spec! });

/** Where the workloads' pods are dry-run: labelled as the release namespace, with the ServiceAccount a dry-run cannot leave behind. */
const PODS = 'chart-pods';

test.serial('every object of the chart is admitted by the API server, its pods under PodSecurity restricted', async (t) => {
  await core.createNamespace({ body: { metadata: { name: PODS, labels: RESTRICTED } } });
  await core.createNamespacedServiceAccount({ namespace: PODS, body: { metadata: { name: 'clusterhub' } } });
  const objects = KubernetesObjectApi.makeApiClient(admin);
  for (const values of [[], ['-f', CLASS_VALUES, '--set', 'cluster.removeNamespacesOnUninstall=true', '--set', 'proxy.pdb.enabled=true']]) {
    const rendered = await renderChart(bin, values);
    for (const obj of rendered) {
      await t.notThrowsAsync(objects.create(inNamespace(obj), undefined, 'All'), `${obj.kind}/${obj.metadata?.name} with ${values.join(' ') || 'defaults'}`);
    }
    const templates = rendered.flatMap((o) => (o.kind === 'Deployment' || o.kind === 'Job')
      ? [[o.metadata!.name!, (o as unknown as { spec: { template: V1PodTemplateSpec } }).spec.template] as const] : []);
    t.true(templates.length >= 2, 'hub and proxy at least');
    for (const [name, template] of templates) {
      await t.notThrowsAsync(core.createNamespacedPod({ namespace: PODS, dryRun: 'All', body: podOf(name, template) }), `pod of ${name}`);
    }
  }
  // The check can fail: a pod without the chart's securityContext is refused in this namespace.
  const [, hubTemplate] = (await renderChart(bin)).filter((o) => o.kind === 'Deployment').map((o) => [o, (o as unknown as { spec: { template: V1PodTemplateSpec } }).spec.template] as const)[0]!;
  const loose = { ...hubTemplate, spec: { ...hubTemplate.spec!, securityContext: {}, containers: hubTemplate.spec!.containers.map((c) => ({ ...c, securityContext: {} })) } };
  const refused = await core.createNamespacedPod({ namespace: PODS, dryRun: 'All', body: podOf('loose', loose) }).then(() => undefined, (err) => String((JSON.parse(err?.body ?? '{}') as { message?: string }).message ?? err));
  t.regex(refused ?? 'admitted', /violates PodSecurity "restricted/);
});

/** The Secret hub-secret's values, decoded. */
async function hubSecret(): Promise<Record<string, string>> {
  const secret = await core.readNamespacedSecret({ name: 'hub-secret', namespace: NAMESPACE });
  return Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
}

test.serial('helm install creates the hub and the proxy; helm upgrade keeps the secrets and restarts only the hub', async (t) => {
  t.timeout(10 * 60_000);
  const installed = await helmHere('install', 'clusterhub', CHART, '-f', CLASS_VALUES);
  t.true(installed.ok, installed.output);
  const before = await hubSecret();
  t.regex(before.cookieSecret ?? '', /^[A-Za-z0-9]{64}$/);
  t.regex(before.proxyToken ?? '', /^[A-Za-z0-9]{64}$/);
  const proxyPods = await waitForPods(admin, NAMESPACE, 'app.kubernetes.io/component=proxy',
    (pods) => pods.length === 1 && pods[0]!.status?.phase === 'Running', { what: 'the proxy pod Running (kwok)', timeoutMs: 120_000 });
  const hubBefore = await apps.readNamespacedDeployment({ name: 'hub', namespace: NAMESPACE });

  const upgraded = await helmHere('upgrade', 'clusterhub', CHART, '-f', CLASS_VALUES, '--set', 'hub.config.culler.idleTimeoutSeconds=1800');
  t.true(upgraded.ok, upgraded.output);
  t.deepEqual(await hubSecret(), before, 'the cookie secret and the proxy token are kept');
  const hubAfter = await apps.readNamespacedDeployment({ name: 'hub', namespace: NAMESPACE });
  t.not(hubAfter.spec?.template.metadata?.annotations?.['checksum/config'], hubBefore.spec?.template.metadata?.annotations?.['checksum/config'],
    'a changed configuration rolls the hub');
  const proxyAfter = await core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: 'app.kubernetes.io/component=proxy' });
  t.deepEqual(proxyAfter.items.map((p) => p.metadata?.uid), [proxyPods[0]!.metadata?.uid], 'the proxy pod (and students\' connections) stays');
  const config = await core.readNamespacedSecret({ name: 'hub-config', namespace: NAMESPACE });
  t.regex(Buffer.from(config.data?.['clusterhub.yaml'] ?? '', 'base64').toString(), /idleTimeoutSeconds: 1800/);
});

/** A namespace as the hub labels a student's (instance `instance`). */
async function studentNamespace(name: string, instance?: string): Promise<void> {
  const labels: Record<string, string> = instance ? { 'app.kubernetes.io/managed-by': 'clusterhub', 'clusterhub.io/instance': instance, ...RESTRICTED } : {};
  await core.createNamespace({ body: { metadata: { name, labels } } });
}

const exists = (name: string) => core.readNamespace({ name }).then((ns) => ns.status?.phase === 'Active', () => false);

test.serial('helm uninstall leaves students\' namespaces; with the removal value its hook removes this hub\'s only', async (t) => {
  t.timeout(10 * 60_000);
  await studentNamespace('clusterhub-alice', 'default');
  await studentNamespace('clusterhub-bob', 'other-hub');
  await studentNamespace('unrelated');
  const kept = await helmHere('uninstall', 'clusterhub');
  t.true(kept.ok, kept.output);
  for (const name of ['clusterhub-alice', 'clusterhub-bob', 'unrelated']) t.true(await exists(name), `${name} stays`);
  t.true(await core.readNamespacedPersistentVolumeClaim({ name: 'hub-db', namespace: NAMESPACE }).then(() => true, () => false), 'the hub\'s state volume outlives an uninstall');

  const reinstalled = await helmHere('install', 'clusterhub', CHART, '-f', CLASS_VALUES, '--set', 'cluster.removeNamespacesOnUninstall=true');
  t.true(reinstalled.ok, `a reinstall adopts the kept volume: ${reinstalled.output}`);
  const hooks = await helmHere('get', 'hooks', 'clusterhub');
  const job = objectsOf(hooks.stdout).find((o) => o.kind === 'Job') as V1Job;
  const container = job.spec!.template.spec!.containers[0]!;

  // The hook's command, run here (kwok never runs it) with the rendered config, as the hub's ServiceAccount.
  const sa = await backendKubeConfig(admin);
  const kubeconfig = join(workDir, 'hub-sa.kubeconfig');
  await writeFile(kubeconfig, sa.exportConfig());
  const configSecret = await core.readNamespacedSecret({ name: 'hub-config', namespace: NAMESPACE });
  const configFile = join(workDir, 'clusterhub.yaml');
  await writeFile(configFile, Buffer.from(configSecret.data!['clusterhub.yaml']!, 'base64'));
  t.is(container.env?.find((e) => e.name === 'CLUSTERHUB_CONFIG')?.value, '/etc/clusterhub/clusterhub.yaml');
  const { stdout } = await promisify(execFile)(process.execPath, ['hub/cli.ts', ...(container.args ?? [])], {
    cwd: join(import.meta.dirname, '..'),
    env: { ...process.env, CLUSTERHUB_CONFIG: configFile, CLUSTERHUB_KUBERNETES_KUBECONFIG: kubeconfig },
  });
  t.regex(stdout, /deleting clusterhub-alice \(instance default\)/);
  // Deletion is under way once the call returns: the namespace is Terminating or already gone.
  t.true(await core.readNamespace({ name: 'clusterhub-alice' }).then((ns) => ns.status?.phase === 'Terminating', () => true), 'this hub\'s namespace goes');
  t.true(await exists('clusterhub-bob'), 'another hub\'s namespace stays');
  t.true(await exists('unrelated'), 'an unlabelled namespace stays');

  // helm creates that Job, as the hub's ServiceAccount, when it uninstalls: watched from before.
  let hookAccount: string | undefined;
  const watching = await new Watch(admin).watch(`/apis/batch/v1/namespaces/${NAMESPACE}/jobs`, {}, (phase, j: V1Job) => {
    if (phase === 'ADDED' && j.metadata?.name === 'remove-student-namespaces') hookAccount = j.spec?.template.spec?.serviceAccountName;
  }, () => {});
  const removed = await helmHere('uninstall', 'clusterhub', '--timeout', '4m');
  watching.abort();
  t.true(removed.ok, removed.output);
  t.is(hookAccount, 'clusterhub');
});

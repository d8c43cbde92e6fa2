/**
 * The Helm chart as helm sees it, without a cluster: lint, rendering with the default and a
 * class's values, RBAC from k8s/rbac, the values schema, the generated secrets.
 */
import test from 'ava';
import type { KubernetesObject, V1Deployment, V1Job, V1Secret } from '@kubernetes/client-node';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { CHART, CLASS_VALUES, ensureHelm, helm, objectsOf, renderChart } from './helpers/helm.ts';
import { rbacObjects } from './helpers/kube-rbac.ts';

let bin: string;

test.before(async (t) => {
  t.timeout(40 * 60_000, 'building helm from its Go module (cold: minutes)');
  bin = await ensureHelm();
});

const find = <T extends KubernetesObject>(objects: KubernetesObject[], kind: string, name: string) =>
  objects.find((o) => o.kind === kind && o.metadata?.name === name) as T | undefined;

/** The hub's configuration file as the chart renders it into the Secret hub-config. */
function hubConfig(objects: KubernetesObject[]): Record<string, Record<string, unknown>> {
  const secret = find<V1Secret>(objects, 'Secret', 'hub-config');
  return parse(secret?.stringData?.['clusterhub.yaml'] ?? '') as Record<string, Record<string, unknown>>;
}

test('helm lint passes with the default values and with a class\'s values', async (t) => {
  for (const args of [[], ['-f', CLASS_VALUES]]) {
    const result = await helm(bin, ['lint', CHART, '--namespace', 'clusterhub', '--strict', ...args]);
    t.true(result.ok, result.output);
  }
});

test('the chart\'s RBAC is k8s/rbac, object for object', async (t) => {
  const rendered = await renderChart(bin);
  const rbac = await rbacObjects();
  const key = (o: KubernetesObject) => `${o.kind}/${o.metadata?.name}`;
  const byKey = (objects: KubernetesObject[]) => [...objects].sort((a, b) => key(a).localeCompare(key(b)));
  // helm orders objects by kind; the objects themselves are the files'.
  t.deepEqual(byKey(rendered.filter((o) => rbac.some((r) => key(r) === key(o)))), byKey(rbac));
  t.is(rendered.filter((o) => /Role|ServiceAccount|AdmissionPolicy/.test(o.kind ?? '')).length, rbac.length, 'no RBAC besides k8s/rbac');
});

test('the packaged chart carries k8s/rbac too (helm package resolves the rbac link)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'clusterhub-chart-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const packaged = await helm(bin, ['package', CHART, '--destination', dir]);
  t.true(packaged.ok, packaged.output);
  const rendered = objectsOf((await helm(bin, ['template', 'clusterhub', join(dir, 'clusterhub-0.1.0.tgz'), '--namespace', 'clusterhub'])).stdout);
  const names = new Set(rendered.map((o) => `${o.kind}/${o.metadata?.name}`));
  for (const obj of await rbacObjects()) t.true(names.has(`${obj.kind}/${obj.metadata?.name}`), `${obj.kind}/${obj.metadata?.name}`);
});

test('installing outside the namespace k8s/rbac names fails and says why', async (t) => {
  const result = await helm(bin, ['template', 'clusterhub', CHART, '--namespace', 'hub']);
  t.false(result.ok);
  t.regex(result.output, /install into the namespace clusterhub/);
});

test('a bad value is refused naming its key, in the chart\'s values and in the hub\'s config', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['proxy.service.type=Public', /at '\/proxy\/service\/type': value must be one of 'LoadBalancer', 'NodePort', 'ClusterIP'/],
    ['hub.config.spawn.maxWorkers=-1', /at '\/hub\/config\/spawn\/maxWorkers': minimum/],
    ['hub.config.spawn.maxWorker=4', /at '\/hub\/config\/spawn': additional properties 'maxWorker' not allowed/],
  ];
  for (const [value, key] of cases) {
    const result = await helm(bin, ['template', 'clusterhub', CHART, '--namespace', 'clusterhub', '--set', value]);
    t.false(result.ok, value);
    t.regex(result.output, key, value);
  }
});

test('the hub config is rendered from values, with the chart\'s wiring on top', async (t) => {
  const objects = await renderChart(bin, ['-f', CLASS_VALUES, '--set', 'hub.config.proxy.mode=managed']);
  const config = hubConfig(objects);
  t.is(config.hub?.publicUrl, 'https://hub.example.edu');
  t.deepEqual(config.auth?.admins, ['the-instructor']);
  t.is(config.proxy?.mode, 'external', 'the chart runs the proxy as its own Deployment');
  t.is(config.proxy?.apiUrl, 'http://proxy-api.clusterhub.svc:8001');
  t.is(config.spawn?.backend, 'kubernetes');
  t.is(config.kubernetes?.image, 'ghcr.io/clusterhub/cluster:0.1.0');
  t.deepEqual(config.kubernetes?.proxyPodSelector, { 'app.kubernetes.io/name': 'clusterhub', 'app.kubernetes.io/instance': 'clusterhub', 'app.kubernetes.io/component': 'proxy' });
  const proxy = find<V1Deployment>(objects, 'Deployment', 'proxy');
  for (const [k, v] of Object.entries(config.kubernetes?.proxyPodSelector as Record<string, string>)) {
    t.is(proxy?.spec?.template.metadata?.labels?.[k], v, `the proxy pods carry ${k}, which students' NetworkPolicies admit`);
  }
});

test('the proxy runs from the hub image by its stable command, with the shared token', async (t) => {
  const objects = await renderChart(bin, ['--set', 'hub.config.hub.userSubdomains=true']);
  const proxy = find<V1Deployment>(objects, 'Deployment', 'proxy')!.spec!.template.spec!.containers[0]!;
  t.deepEqual(proxy.command, ['node', 'proxy/front.ts']);
  t.true(proxy.args?.includes('--host-routing'), 'subdomains turn on host routing');
  t.true(proxy.args?.includes('--default-target=http://hub.clusterhub.svc:8081'));
  t.deepEqual(proxy.env?.[0]?.valueFrom?.secretKeyRef, { name: 'hub-secret', key: 'proxyToken' });
  const hub = find<V1Deployment>(objects, 'Deployment', 'hub')!;
  t.is(hub.spec?.replicas, 1);
  t.is(hub.spec?.strategy?.type, 'Recreate');
  t.is(hub.spec?.template.spec?.serviceAccountName, 'clusterhub');
  t.is(hub.spec?.template.spec?.containers[0]?.readinessProbe?.httpGet?.path, '/hub/health');
});

test('secrets: generated when unset, taken from values when set', async (t) => {
  const secret = (objects: KubernetesObject[]) => find<V1Secret>(objects, 'Secret', 'hub-secret')!.stringData!;
  const a = secret(await renderChart(bin));
  t.regex(a.cookieSecret ?? '', /^[A-Za-z0-9]{64}$/);
  t.regex(a.proxyToken ?? '', /^[A-Za-z0-9]{64}$/);
  const set = secret(await renderChart(bin, ['--set', `hub.cookieSecret=${'c'.repeat(40)}`, '--set', `proxy.secretToken=${'t'.repeat(20)}`]));
  t.deepEqual(set, { cookieSecret: 'c'.repeat(40), proxyToken: 't'.repeat(20) });
});

test('service type, ingress with cert-manager annotations, PDB and the uninstall hook follow their values', async (t) => {
  const plain = await renderChart(bin);
  t.is((find(plain, 'Service', 'proxy-public') as { spec: { type: string } }).spec.type, 'LoadBalancer');
  t.falsy(find(plain, 'Ingress', 'clusterhub'));
  t.falsy(find(plain, 'PodDisruptionBudget', 'proxy'));
  t.falsy(find(plain, 'Job', 'remove-student-namespaces'), 'student namespaces stay by default');
  const cls = await renderChart(bin, ['-f', CLASS_VALUES, '--set', 'proxy.pdb.enabled=true', '--set', 'cluster.removeNamespacesOnUninstall=true']);
  t.is((find(cls, 'Service', 'proxy-public') as { spec: { type: string } }).spec.type, 'ClusterIP');
  const ingress = find(cls, 'Ingress', 'clusterhub') as { metadata: { annotations: Record<string, string> }; spec: { tls: unknown[] } };
  t.is(ingress.metadata.annotations['cert-manager.io/cluster-issuer'], 'letsencrypt');
  t.deepEqual(ingress.spec.tls, [{ secretName: 'clusterhub-tls', hosts: ['hub.example.edu'] }]);
  t.truthy(find(cls, 'PodDisruptionBudget', 'proxy'));
  const job = find<V1Job>(cls, 'Job', 'remove-student-namespaces')!;
  t.is(job.metadata?.annotations?.['helm.sh/hook'], 'pre-delete');
  t.is(job.spec?.template.spec?.serviceAccountName, 'clusterhub');
  t.deepEqual(job.spec?.template.spec?.containers[0]?.args, ['remove-namespaces']);
  t.is(job.spec?.template.spec?.nodeSelector, undefined);
  const placed = await renderChart(bin, ['--set', 'cluster.removeNamespacesOnUninstall=true', '--set', 'hub.nodeSelector.pool=hub',
    '--set', 'hub.tolerations[0].key=pool', '--set', 'hub.tolerations[0].operator=Exists']);
  const placedJob = find<V1Job>(placed, 'Job', 'remove-student-namespaces')!.spec!.template.spec!;
  t.deepEqual(placedJob.nodeSelector, { pool: 'hub' }, 'the hook runs where the hub may run');
  t.deepEqual(placedJob.tolerations, [{ key: 'pool', operator: 'Exists' }]);
});

import test from 'ava';
import { configSchema, type ConfigInput } from '../../config/schema.ts';
import { clusterRef } from './context.ts';
import { renderSchedulerPod, renderWorkerDeployment } from './objects.ts';
import type { LaunchSpec } from './types.ts';
import { renderWorkspaceClaim } from './workspace.ts';

function k8s(input: ConfigInput['kubernetes'] = {}) {
  return configSchema.parse({ kubernetes: input }).kubernetes;
}
const spec = (): LaunchSpec => ({ ...clusterRef(k8s(), 'Alice'), workers: 2, baseUrl: '/user/Alice/', launchId: 'abc' });

test('the claim asks for the configured size, and for the default class when none is named', (t) => {
  const claim = renderWorkspaceClaim(k8s(), clusterRef(k8s(), 'Alice'));
  t.is(claim.metadata!.name, 'workspace');
  t.deepEqual(claim.spec, { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '10Gi' } } });
  const named = renderWorkspaceClaim(k8s({ workspace: { storageClass: 'fast', size: '2Gi', accessMode: 'ReadWriteMany' } }), clusterRef(k8s(), 'Alice'));
  t.deepEqual(named.spec, { accessModes: ['ReadWriteMany'], resources: { requests: { storage: '2Gi' } }, storageClassName: 'fast' });
});

test('the scheduler mounts the claim at /workspace with fsGroup 1000; workers get scratch space unless the claim is ReadWriteMany', (t) => {
  const pod = renderSchedulerPod(k8s(), spec()).spec!;
  t.deepEqual(pod.volumes!.find((v) => v.name === 'workspace'), { name: 'workspace', persistentVolumeClaim: { claimName: 'workspace' } });
  t.true(pod.containers[0]!.volumeMounts!.some((m) => m.name === 'workspace' && m.mountPath === '/workspace'));
  t.like(pod.securityContext, { fsGroup: 1000, fsGroupChangePolicy: 'OnRootMismatch', runAsNonRoot: true });
  t.deepEqual(renderWorkerDeployment(k8s(), spec()).spec!.template.spec!.volumes!.find((v) => v.name === 'workspace'), { name: 'workspace', emptyDir: {} });
  const rwx = renderWorkerDeployment(k8s({ workspace: { accessMode: 'ReadWriteMany' } }), spec()).spec!.template.spec!;
  t.deepEqual(rwx.volumes!.find((v) => v.name === 'workspace'), { name: 'workspace', persistentVolumeClaim: { claimName: 'workspace' } });
});

test('materials: an init container clones them into materials/ only when that folder is absent, from the configured ref', (t) => {
  t.is(renderSchedulerPod(k8s(), spec()).spec!.initContainers, undefined);
  const pod = renderSchedulerPod(k8s({ materialsGitUrl: 'https://example.edu/course.git', materialsGitRef: 'week-1' }), spec()).spec!;
  const init = pod.initContainers![0]!;
  t.is(init.name, 'materials');
  const env = Object.fromEntries((init.env ?? []).map((e) => [e.name, e.value]));
  t.like(env, { MATERIALS_URL: 'https://example.edu/course.git', MATERIALS_REF: 'week-1' });
  const script = init.command!.at(-1)!;
  t.regex(script, /if \[ -e "\$target" \]; then .*exit 0; fi/);
  t.regex(script, /git clone --depth 1 --quiet \$\{MATERIALS_REF:\+--branch "\$MATERIALS_REF"\} "\$MATERIALS_URL" "\$partial"; then mv "\$partial" "\$target"/);
  t.like(init.securityContext, { runAsNonRoot: true, allowPrivilegeEscalation: false });
  t.deepEqual(init.resources, pod.containers[0]!.resources, 'no more than the scheduler itself: no extra quota');
});

test('a bad workspace size or class is refused at start, naming the key', (t) => {
  t.throws(() => configSchema.parse({ kubernetes: { workspace: { size: 'lots' } } }), { message: /workspace.*size|size/ });
  t.throws(() => configSchema.parse({ kubernetes: { workspace: { storageClass: 'Not A Class' } } }), { message: /storageClass/ });
});

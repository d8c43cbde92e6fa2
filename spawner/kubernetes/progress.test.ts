import test from 'ava';
import type { CoreV1Event, V1Pod } from '@kubernetes/client-node';
import { assessLaunch, clusterStateOf, eventFailure, launchEvents, podFailure } from './progress.ts';

let uid = 0;
function pod(component: 'scheduler' | 'workers', status: V1Pod['status'] = {}, extra: Partial<V1Pod['metadata']> = {}): V1Pod {
  return {
    metadata: { name: `${component}-${++uid}`, namespace: 'ns', uid: `uid-${uid}`, labels: { 'app.kubernetes.io/component': component }, ...extra },
    spec: { containers: [{ name: component }], nodeName: status.phase ? 'kwok-node-0' : undefined },
    status,
  };
}
const ready = (component: 'scheduler' | 'workers') =>
  pod(component, { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] });
function event(reason: string, message: string, involved: { kind: string; uid?: string }, at = '2026-11-28T12:00:10Z'): CoreV1Event {
  return { metadata: { name: `e-${++uid}`, namespace: 'ns' }, involvedObject: involved, reason, message, lastTimestamp: at as unknown as Date };
}

test('a scheduler and all workers Ready make the launch ready, with k of N steps on the way', (t) => {
  const half = assessLaunch({ pods: [ready('scheduler'), ready('workers'), pod('workers')], events: [], workers: 2 });
  t.false(half.ready);
  t.is(half.readyWorkers, 1);
  t.deepEqual(half.steps.map((s) => s.message), [
    'Scheduler pod scheduled on kwok-node-0', 'Scheduler running; waiting for Jupyter to answer', 'Scheduler ready', '1 of 2 workers ready',
  ]);
  const all = assessLaunch({ pods: [ready('scheduler'), ready('workers'), ready('workers')], events: [], workers: 2 });
  t.true(all.ready);
  t.is(all.steps.at(-1)!.message, '2 of 2 workers ready');
  t.is(all.steps.at(-1)!.progress, 95);
});

test('a ready scheduler with zero workers is ready', (t) => {
  t.true(assessLaunch({ pods: [ready('scheduler')], events: [], workers: 0 }).ready);
});

test('a terminating pod counts for nothing', (t) => {
  const gone = ready('scheduler');
  gone.metadata!.deletionTimestamp = new Date();
  t.false(assessLaunch({ pods: [gone], events: [], workers: 0 }).ready);
});

test('Scheduled, Pulling and Pulled events of the scheduler pod become steps', (t) => {
  const s = pod('scheduler');
  const involved = { kind: 'Pod', uid: s.metadata!.uid };
  const a = assessLaunch({
    pods: [s],
    events: [
      event('Pulling', 'Pulling image "cluster:1"', involved, '2026-11-28T12:00:11Z'),
      event('Scheduled', 'Successfully assigned ns/scheduler-1 to node-7', involved, '2026-11-28T12:00:10Z'),
      event('Pulled', 'Successfully pulled image', involved, '2026-11-28T12:00:12Z'),
    ],
    workers: 1,
  });
  t.deepEqual(a.steps.map((s) => s.message), ['Scheduler pod scheduled on node-7', 'Pulling the cluster image: Pulling image "cluster:1"', 'Cluster image pulled']);
  t.is(a.failure, undefined);
});

test('an image already on the node is reported as present, not pulled', (t) => {
  const s = pod('scheduler');
  const involved = { kind: 'Pod', uid: s.metadata!.uid };
  const a = assessLaunch({
    pods: [s],
    events: [event('Pulled', 'Container image "cluster:1" already present on machine and can be accessed by the pod', involved, '2026-11-28T12:00:12Z')],
    workers: 1,
  });
  t.deepEqual(a.steps.map((s) => s.message), ['Cluster image already present on the node']);
});

test('an image that cannot be pulled fails the launch with the kubelet\'s words', (t) => {
  const s = pod('scheduler', { phase: 'Pending', containerStatuses: [{
    name: 'scheduler', image: 'nope:1', imageID: '', ready: false, restartCount: 0,
    state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "nope:1"' } },
  }] });
  t.deepEqual(podFailure(s), { message: 'the scheduler cannot start (ImagePullBackOff): Back-off pulling image "nope:1"', status: 503 });
  t.regex(assessLaunch({ pods: [s], events: [], workers: 0 }).failure!.message, /ImagePullBackOff/);
});

test('an unschedulable pod fails the launch with the scheduler\'s message', (t) => {
  const w = pod('workers', { phase: 'Pending', conditions: [{
    type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available: 1 node(s) didn\'t match Pod\'s node affinity/selector.',
  }] });
  t.regex(podFailure(w)!.message, /^a worker cannot be scheduled \(Unschedulable\): 0\/1 nodes/);
  t.regex(eventFailure(event('FailedScheduling', '0/1 nodes are available', { kind: 'Pod' }))!.message, /Unschedulable/);
});

test('a quota refusal on the ReplicaSet fails the launch, the quota warm-up does not', (t) => {
  const exceeded = event('FailedCreate', 'Error creating: pods "workers-x" is forbidden: exceeded quota: cluster, requested: limits.cpu=1, used: limits.cpu=2, limited: limits.cpu=2', { kind: 'ReplicaSet' });
  t.deepEqual(eventFailure(exceeded), { message: `Kubernetes refused to create a pod (FailedCreate): ${exceeded.message}`, status: 422 });
  const warmup = event('FailedCreate', 'Error creating: pods "workers-x" is forbidden: status unknown for quota: cluster, resources: limits.cpu', { kind: 'ReplicaSet' });
  t.is(eventFailure(warmup), undefined);
  t.is(eventFailure(event('SuccessfulCreate', 'Created pod: workers-x', { kind: 'ReplicaSet' })), undefined);
});

test('a PodSecurity refusal is a FailedCreate too', (t) => {
  const e = event('FailedCreate', 'Error creating: pods "scheduler-x" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false', { kind: 'ReplicaSet' });
  t.regex(eventFailure(e)!.message, /violates PodSecurity/);
});

test('a workspace claim of a storage class that does not exist fails the launch; waiting for a volume does not', (t) => {
  const missing = event('ProvisioningFailed', 'storageclass.storage.k8s.io "fast" not found', { kind: 'PersistentVolumeClaim' });
  t.deepEqual(eventFailure(missing), { message: 'the workspace volume cannot be made (ProvisioningFailed): storageclass.storage.k8s.io "fast" not found', status: 503 });
  t.is(eventFailure(event('ProvisioningFailed', 'failed to provision volume: rpc error: timeout', { kind: 'PersistentVolumeClaim' })), undefined, 'the provisioner retries');
  t.is(eventFailure(event('ExternalProvisioning', 'Waiting for a volume to be created', { kind: 'PersistentVolumeClaim' })), undefined);
  t.is(eventFailure(event('FailedScheduling', '0/4 nodes are available: pod has unbound immediate PersistentVolumeClaims.', { kind: 'Pod' })), undefined);
  t.is(eventFailure(event('FailedScheduling', '0/2 nodes are available: persistentvolume "pvc-ca30" not found.', { kind: 'Pod' })), undefined, 'a volume the scheduler\'s cache has not seen yet');
});

test('launch events keep this launch\'s pods and the ReplicaSet and claim events since the namespace was created', (t) => {
  const mine = pod('scheduler');
  const events = [
    event('Scheduled', 'to n', { kind: 'Pod', uid: mine.metadata!.uid }),
    event('Scheduled', 'to n', { kind: 'Pod', uid: 'an-old-pod' }),
    event('FailedCreate', 'old', { kind: 'ReplicaSet' }, '2026-11-28T11:59:59Z'),
    event('FailedCreate', 'new', { kind: 'ReplicaSet' }, '2026-11-28T12:00:00Z'),
    event('Whatever', 'node', { kind: 'Node' }),
    event('ProvisioningFailed', 'old claim', { kind: 'PersistentVolumeClaim' }, '2026-11-28T11:59:59Z'),
    event('ProvisioningFailed', 'claim', { kind: 'PersistentVolumeClaim' }, '2026-11-28T12:00:00Z'),
  ];
  const kept = launchEvents(events, [mine], new Date('2026-11-28T12:00:00Z'));
  t.deepEqual(kept.map((e) => e.message), ['to n', 'new', 'claim']);
});

test('cluster state: running once the scheduler is Ready, failed when it cannot start, else starting', (t) => {
  t.deepEqual(clusterStateOf([ready('scheduler'), ready('workers'), pod('workers')]), { state: 'running', readyWorkers: 1 });
  t.deepEqual(clusterStateOf([pod('scheduler')]), { state: 'starting', readyWorkers: 0 });
  t.deepEqual(clusterStateOf([]), { state: 'starting', readyWorkers: 0 });
  const stuck = pod('scheduler', { phase: 'Pending', containerStatuses: [{
    name: 'scheduler', image: 'x', imageID: '', ready: false, restartCount: 3, state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s' } },
  }] });
  t.is(clusterStateOf([stuck]).state, 'failed');
});

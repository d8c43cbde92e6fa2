import test from 'ava';
import { ApiException } from '@kubernetes/client-node';
import { ApiGate, apiFailure, isAlreadyExists, isAdmissionCatchingUp, isRbacDenial, isRetryable } from './api.ts';
import { Changes } from './watch.ts';

const status = (code: number, reason: string, message: string) =>
  new ApiException(code, 'x', JSON.stringify({ kind: 'Status', reason, message, code }), {});

test('a Kubernetes Status body is read for code, reason and message', (t) => {
  t.deepEqual(apiFailure(status(409, 'AlreadyExists', 'namespaces "a" already exists')), { code: 409, reason: 'AlreadyExists', message: 'namespaces "a" already exists' });
  t.true(isAlreadyExists(status(409, 'AlreadyExists', '')));
  t.false(isAlreadyExists(status(409, 'Conflict', '')));
  t.is(apiFailure(new Error('socket hang up')).message, 'socket hang up');
});

test('throttling, server errors and conflicts are retried; refusals are not', (t) => {
  t.true(isRetryable(status(429, 'TooManyRequests', '')));
  t.true(isRetryable(status(503, 'ServiceUnavailable', '')));
  t.true(isRetryable(status(409, 'Conflict', 'the object has been modified')));
  t.false(isRetryable(status(403, 'Forbidden', 'exceeded quota')));
  t.false(isRetryable(status(404, 'NotFound', '')));
});

test('an RBAC denial is told apart from an admission refusal', (t) => {
  t.true(isRbacDenial(status(403, 'Forbidden', 'secrets is forbidden: User "system:serviceaccount:clusterhub:clusterhub" cannot create resource "secrets" in API group "" in the namespace "x"')));
  t.false(isRbacDenial(status(403, 'Forbidden', 'pods "a" is forbidden: exceeded quota: cluster')));
});

test('admission catching up with a new quota or ServiceAccount is told apart from a refusal', (t) => {
  t.true(isAdmissionCatchingUp(status(403, 'Forbidden', 'pods "scheduler" is forbidden: status unknown for quota: cluster, resources: limits.cpu,limits.memory')));
  t.true(isAdmissionCatchingUp(status(403, 'Forbidden', 'pods "scheduler" is forbidden: error looking up service account clusterhub-bob/cluster: serviceaccount "cluster" not found')));
  t.false(isAdmissionCatchingUp(status(403, 'Forbidden', 'pods "scheduler" is forbidden: exceeded quota: cluster, requested: limits.cpu=2, used: limits.cpu=0, limited: limits.cpu=1')));
  t.false(isAdmissionCatchingUp(status(403, 'Forbidden', 'pods "scheduler" is forbidden: violates PodSecurity "restricted:latest": privileged')));
});

test('the gate never has more than `concurrency` requests in flight', async (t) => {
  const gate = new ApiGate({ concurrency: 3 });
  let inFlight = 0;
  let peak = 0;
  await Promise.all(Array.from({ length: 10 }, () => gate.run('x', async () => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    await new Promise<void>((resolve) => setImmediate(resolve));
    inFlight--;
  })));
  t.is(peak, 3);
});

test('a retryable failure is retried until it succeeds, counting every request', async (t) => {
  let sent = 0;
  const gate = new ApiGate({ concurrency: 1, baseDelayMs: 1, onRequest: () => sent++ });
  let attempts = 0;
  const result = await gate.run('x', async () => {
    if (++attempts < 3) throw status(429, 'TooManyRequests', 'slow down');
    return 'ok';
  });
  t.is(result, 'ok');
  t.is(sent, 3);
});

test('a refusal is thrown at once', async (t) => {
  const gate = new ApiGate({ concurrency: 1, baseDelayMs: 1 });
  let attempts = 0;
  await t.throwsAsync(gate.run('x', async () => {
    attempts++;
    throw status(403, 'Forbidden', 'exceeded quota');
  }), { instanceOf: ApiException });
  t.is(attempts, 1);
});

test('a change made while the loop was busy is not missed', async (t) => {
  const changes = new Changes();
  const seen = changes.version;
  changes.bump();
  await changes.after(seen);
  const controller = new AbortController();
  const waiting = changes.after(changes.version, controller.signal);
  controller.abort(new Error('stop'));
  await t.throwsAsync(waiting, { message: 'stop' });
});

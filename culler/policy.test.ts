import test from 'ava';
import { decide, formatDuration, needsJupyter } from './policy.ts';
import type { PolicyInput } from './policy.ts';
import type { JupyterActivity, RouteEvidence } from './types.ts';

const now = new Date('2030-01-01T12:00:00.000Z');
const ago = (s: number) => new Date(now.getTime() - s * 1000);
const config = { idleTimeoutSeconds: 3600, maxAgeSeconds: 0 };
const running = { phase: 'running' as const, createdAt: ago(86_400).toISOString(), readyAt: ago(86_000).toISOString() };

/** The proxy's evidence: a route idle for `s` seconds, listed by inactive_since when old enough. */
const route = (s: number, inactive = s >= config.idleTimeoutSeconds): RouteEvidence => ({ lastActivity: ago(s), inactive });
const jupyter = (s: number, busyKernels = 0): JupyterActivity => ({ lastActivity: ago(s), kernels: busyKernels, busyKernels, connections: 0 });
const input = (over: Partial<PolicyInput>): PolicyInput => ({ cluster: running, route: route(7200), jupyter: jupyter(7200), now, config, ...over });

test('a cluster idle by proxy and Jupyter is culled with its idle minutes', (t) => {
  const d = decide(input({ route: route(7300), jupyter: jupyter(7200) }));
  t.is(d.action, 'cull');
  t.is(d.reason, 'idle 120 minutes');
  t.is(d.idleSeconds, 7200, 'idle time is the younger of the two views');
  t.is(d.evidence, 'proxy+jupyter');
});

test('a pending launch is never culled, even past max age', (t) => {
  for (const phase of ['starting', 'stopping'] as const) {
    const d = decide(input({ cluster: { ...running, phase, readyAt: null }, config: { idleTimeoutSeconds: 1, maxAgeSeconds: 1 } }));
    t.is(d.action, 'keep', phase);
    t.is(d.cullAt, null);
    t.false(needsJupyter({ cluster: { ...running, phase }, route: 'missing', now, config }));
  }
  t.is(decide(input({ cluster: { ...running, phase: 'starting' } })).reason, 'launch pending');
});

test('max age culls regardless of activity', (t) => {
  const d = decide(input({ route: route(0, false), jupyter: jupyter(0, 2), config: { idleTimeoutSeconds: 3600, maxAgeSeconds: 86_400 } }));
  t.deepEqual([d.action, d.reason, d.evidence], ['cull', 'max age', 'age']);
  t.false(needsJupyter({ cluster: running, route: route(9000), now, config: { idleTimeoutSeconds: 3600, maxAgeSeconds: 60 } }));
});

test('before max age, the cull time is the earlier of the idle deadline and max age', (t) => {
  const d = decide(input({ route: route(600, false), jupyter: null, config: { idleTimeoutSeconds: 3600, maxAgeSeconds: 86_400 + 1800 } }));
  t.is(d.action, 'keep');
  t.deepEqual(d.cullAt, new Date(now.getTime() + 1800 * 1000), 'max age comes before idle timeout');
  const e = decide(input({ route: route(600, false), jupyter: null }));
  t.deepEqual(e.cullAt, new Date(now.getTime() + 3000 * 1000), 'idle for 10 of 60 minutes: 50 minutes left');
});

test('idle exactly at the threshold is culled, one second short is kept', (t) => {
  t.is(decide(input({ route: route(3600), jupyter: jupyter(3600) })).action, 'cull');
  const short = decide(input({ route: route(3600), jupyter: jupyter(3599) }));
  t.is(short.action, 'keep');
  t.is(short.reason, 'idle 59 minutes of 60 minutes');
  t.deepEqual(short.cullAt, new Date(now.getTime() + 1000));
});

test('traffic through the proxy keeps the cluster without asking Jupyter', (t) => {
  const base = { cluster: running, route: route(30, false), now, config };
  t.false(needsJupyter(base));
  const d = decide({ ...base, jupyter: null });
  t.deepEqual([d.action, d.evidence, d.idleSeconds], ['keep', 'proxy', 30]);
  t.is(d.reason, 'proxy traffic 30 seconds ago');
});

test('Jupyter activity keeps a cluster the proxy calls idle', (t) => {
  t.true(needsJupyter({ cluster: running, route: route(7200), now, config }));
  const d = decide(input({ route: route(7200), jupyter: jupyter(60) }));
  t.deepEqual([d.action, d.idleSeconds, d.evidence], ['keep', 60, 'proxy+jupyter']);
});

test('a busy kernel keeps a cluster with no browser open', (t) => {
  const d = decide(input({ route: route(86_000), jupyter: jupyter(86_000, 1) }));
  t.deepEqual([d.action, d.reason, d.idleSeconds, d.cullAt], ['keep', 'a kernel is busy', 0, null]);
  t.is(decide(input({ jupyter: jupyter(9000, 3) })).reason, '3 kernels are busy');
});

test('open connections alone do not keep an idle cluster (an idle open tab is culled)', (t) => {
  const d = decide(input({ jupyter: { lastActivity: ago(7200), kernels: 1, busyKernels: 0, connections: 2 } }));
  t.is(d.action, 'cull');
});

test('Jupyter unreachable: the proxy decides', (t) => {
  const unreachable = { unreachable: 'cannot reach http://10.0.0.1:8888/user/a/api/status: ECONNREFUSED' };
  const idle = decide(input({ route: route(4000), jupyter: unreachable }));
  t.deepEqual([idle.action, idle.reason, idle.evidence], ['cull', 'idle 66 minutes', 'proxy']);
  const busy = decide(input({ route: route(60, false), jupyter: unreachable }));
  t.is(busy.action, 'keep');
});

test('a running cluster with no route yet is judged by Jupyter alone', (t) => {
  t.true(needsJupyter({ cluster: running, route: 'missing', now, config }));
  const idle = decide(input({ route: 'missing', jupyter: jupyter(4000) }));
  t.deepEqual([idle.action, idle.evidence, idle.idleSeconds], ['cull', 'jupyter', 4000]);
  t.is(decide(input({ route: 'missing', jupyter: jupyter(100) })).action, 'keep');
});

test('no route and Jupyter unreachable: no evidence, so the cluster is kept', (t) => {
  const d = decide(input({ route: 'missing', jupyter: { unreachable: 'timeout' } }));
  t.deepEqual([d.action, d.evidence, d.cullAt], ['keep', 'none', null]);
});

test('the proxy API failing keeps everything but max age', (t) => {
  t.is(decide(input({ route: 'unknown', jupyter: null })).action, 'keep');
  t.false(needsJupyter({ cluster: running, route: 'unknown', now, config }));
  t.is(decide(input({ route: 'unknown', jupyter: null, config: { idleTimeoutSeconds: 60, maxAgeSeconds: 60 } })).reason, 'max age');
});

test('clock skew: activity in the future counts as now, not as negative idle time', (t) => {
  const future = new Date(now.getTime() + 3_600_000);
  const d = decide(input({ route: { lastActivity: future, inactive: true }, jupyter: { lastActivity: future, kernels: 0, busyKernels: 0, connections: 0 } }));
  t.deepEqual([d.action, d.idleSeconds], ['keep', 0]);
  t.deepEqual(d.cullAt, new Date(now.getTime() + 3_600_000));
  const created = decide(input({ cluster: { ...running, createdAt: future.toISOString() }, config: { idleTimeoutSeconds: 3600, maxAgeSeconds: 60 } }));
  t.not(created.reason, 'max age', 'a creation time in the future is age 0');
});

test('a cluster is never idle for longer than it has been up', (t) => {
  const fresh = { ...running, readyAt: ago(120).toISOString() };
  const d = decide(input({ cluster: fresh, route: route(7200), jupyter: jupyter(7200) }));
  t.deepEqual([d.action, d.idleSeconds], ['keep', 120]);
});

test('durations read as a person would say them', (t) => {
  t.is(formatDuration(0), '0 seconds');
  t.is(formatDuration(1), '1 second');
  t.is(formatDuration(59.9), '59 seconds');
  t.is(formatDuration(60), '1 minute');
  t.is(formatDuration(3661), '61 minutes');
});

import test from 'ava';
import { recordStatus, type ClusterRecord } from './state.ts';

const record = (over: Partial<ClusterRecord> = {}): ClusterRecord => ({
  version: 1, user: 'alice', phase: 'running', createdAt: '2026-01-01T00:00:00Z', jupyterToken: 't', baseUrl: '/user/alice/',
  ports: { jupyter: 1, dask: 2, dashboard: 3, spark: 4, sparkUi: 5 }, spark: false, enginesPerWorker: 1,
  scheduler: { pgid: 100 }, workers: [{ index: 1, pgid: 101 }, { index: 2, pgid: 102 }], ...over,
});

test('no record is stopped; everything alive is running', (t) => {
  t.deepEqual(recordStatus(undefined, () => true), { state: 'stopped' });
  t.deepEqual(recordStatus(record(), () => true), { state: 'running', workers: 2, readyWorkers: 2 });
});

test('a dead scheduler or worker makes the cluster failed, saying which', (t) => {
  t.regex(recordStatus(record(), (p) => p !== 100).reason!, /scheduler/);
  const s = recordStatus(record(), (p) => p !== 102);
  t.is(s.state, 'failed');
  t.is(s.readyWorkers, 1);
  t.regex(s.reason!, /worker-2/);
});

test('a launch left half-done by a hub restart is failed', (t) => {
  t.is(recordStatus(record({ phase: 'starting' }), () => true).state, 'failed');
});

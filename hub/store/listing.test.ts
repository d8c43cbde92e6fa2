import test from 'ava';
import { openStore } from './sqlite.ts';
import type { ClusterRow } from './types.ts';

const cluster = (user: string, phase: ClusterRow['phase'], extra: Partial<ClusterRow> = {}): ClusterRow => ({
  user, backend: 'local', phase, workers: 2, jupyterToken: 't', url: 'http://127.0.0.1:1', createdAt: '2025-01-01T10:00:00.000Z', readyAt: null, lastActivity: null, ...extra,
});

function classOf(n: number) {
  const store = openStore(':memory:');
  for (let i = 0; i < n; i++) store.upsertUser({ login: `s${String(i).padStart(3, '0')}` });
  return store;
}

test('a page of users comes with the total that match, in a stable order', (t) => {
  const store = classOf(300);
  const first = store.userPage({ offset: 0, limit: 50 });
  t.is(first.total, 300);
  t.deepEqual(first.rows.map((r) => r.login).slice(0, 2), ['s000', 's001']);
  const last = store.userPage({ offset: 250, limit: 100 });
  t.is(last.rows.length, 50);
  const past = store.userPage({ offset: 400, limit: 10 });
  t.deepEqual([past.rows.length, past.total], [0, 300], 'past the end the total is still counted');
  const backwards = store.userPage({ offset: 0, limit: 3, sort: 'name', descending: true });
  t.deepEqual(backwards.rows.map((r) => r.login), ['s299', 's298', 's297']);
});

test('state filters follow the cluster rows: active, ready, inactive', (t) => {
  const store = classOf(4);
  store.putCluster(cluster('s000', 'running'));
  store.putCluster(cluster('s001', 'starting'));
  store.putCluster(cluster('s002', 'stopping'));
  const names = (state: 'active' | 'ready' | 'inactive') => store.userPage({ offset: 0, limit: 10, state }).rows.map((r) => r.login);
  t.deepEqual(names('active'), ['s000', 's001', 's002']);
  t.deepEqual(names('ready'), ['s000']);
  t.deepEqual(names('inactive'), ['s003']);
  t.is(store.userPage({ offset: 5, limit: 10, state: 'ready' }).total, 1);
});

test('the name filter is a substring, case-insensitive, with LIKE wildcards taken literally', (t) => {
  const store = classOf(0);
  for (const login of ['ada', 'Adam', 'bob', 'a_b', 'axb']) store.upsertUser({ login });
  const names = (nameFilter: string) => store.userPage({ offset: 0, limit: 10, nameFilter, sort: 'name' }).rows.map((r) => r.login);
  t.deepEqual(names('AD'), ['Adam', 'ada']);
  t.deepEqual(names('a_b'), ['a_b']);
  t.deepEqual(names('%'), []);
});

test('activity only moves forward and the newest of the user and cluster views is shown', (t) => {
  const store = classOf(1);
  store.putCluster(cluster('s000', 'running'));
  store.recordActivity('s000', new Date('2025-01-01T12:00:00.000Z'));
  store.recordActivity('s000', new Date('2025-01-01T11:00:00.000Z'));
  t.is(store.getCluster('s000')?.lastActivity, '2025-01-01T12:00:00.000Z');
  store.touchUser('s000', new Date('2025-01-01T13:00:00.000Z'));
  t.is(store.userListing('s000')?.lastActivity, '2025-01-01T13:00:00.000Z');
  t.is(store.userPage({ offset: 0, limit: 1, sort: 'last_activity' }).rows[0]?.cluster?.phase, 'running');
});

test('culls and the last event ride on the same row; events page and prune by age', (t) => {
  const store = classOf(2);
  store.addEvent({ actor: 'culler', user: 's000', kind: 'culled', time: new Date('2025-01-01T00:00:00.000Z') });
  store.addEvent({ actor: 'culler', user: 's000', kind: 'culled' });
  store.addEvent({ actor: 'prof', user: 's000', kind: 'scale', detail: { from: 1, to: 2 } });
  const row = store.userListing('s000')!;
  t.is(row.culls, 2);
  t.like(row.lastEvent, { kind: 'scale', actor: 'prof', detail: { from: 1, to: 2 } });
  t.deepEqual(store.userPage({ offset: 0, limit: 1, sort: 'culls', descending: true }).rows.map((r) => r.login), ['s000']);
  t.deepEqual(store.eventPage({ offset: 0, limit: 1, kind: 'culled' }).total, 2);
  t.deepEqual(store.eventPage({ offset: 5, limit: 1, user: 's000' }), { rows: [], total: 3 });
  t.is(store.pruneEvents(new Date('2025-06-01T00:00:00.000Z')), 1);
  t.is(store.userListing('s000')!.culls, 1);
});

test('one user read by login is the same row a page shows', (t) => {
  const store = classOf(3);
  store.putCluster(cluster('s001', 'running'));
  store.addEvent({ actor: 'culler', user: 's001', kind: 'culled' });
  store.addEvent({ actor: 'prof', user: 's001', kind: 'scale', detail: { from: 1, to: 2 } });
  store.recordActivity('s001', new Date('2025-01-01T12:00:00.000Z'));
  const page = store.userPage({ offset: 0, limit: 10 }).rows;
  for (const row of page) t.deepEqual(store.userListing(row.login), row);
  t.is(store.userListing('nobody'), undefined);
});

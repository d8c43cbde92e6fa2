import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, readFileSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { migrate, migrations, userVersion } from './migrations.ts';
import { openStore } from './sqlite.ts';
import type { ClusterRow } from './types.ts';

function tempDb(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'clusterhub-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'state', 'hub.sqlite');
}

const cluster = (user: string, extra: Partial<ClusterRow> = {}): ClusterRow => ({
  user,
  backend: 'local',
  phase: 'starting',
  workers: 2,
  jupyterToken: `jt-${user}`,
  url: null,
  createdAt: '2025-01-01T10:00:00.000Z',
  readyAt: null,
  lastActivity: null,
  ...extra,
});

test('users are created, updated without losing what was not given, listed and touched', (t) => {
  const store = openStore(':memory:');
  const alice = store.upsertUser({ login: 'alice', githubId: 42 });
  t.like(alice, { login: 'alice', githubId: 42, admin: false, lastSeen: null });
  t.regex(alice.createdAt, /^\d{4}-\d\d-\d\dT/);

  t.like(store.upsertUser({ login: 'alice', admin: true }), { githubId: 42, admin: true, createdAt: alice.createdAt });
  t.like(store.upsertUser({ login: 'alice' }), { githubId: 42, admin: true }, 'an upsert without fields changes nothing');
  t.like(store.upsertUser({ login: 'alice', admin: false, githubId: null }), { githubId: null, admin: false });

  store.upsertUser({ login: 'bob' });
  t.deepEqual(store.listUsers().map((u) => u.login), ['alice', 'bob']);
  store.touchUser('bob', new Date('2025-02-03T04:05:06.000Z'));
  t.is(store.getUser('bob')?.lastSeen, '2025-02-03T04:05:06.000Z');
  t.is(store.getUser('nobody'), undefined);
  store.close();
});

test('a cluster row is put, patched field by field, listed and deleted', (t) => {
  const store = openStore(':memory:');
  store.putCluster(cluster('alice'));
  store.putCluster(cluster('bob', { backend: 'kubernetes' }));
  store.updateCluster('alice', { phase: 'running', url: 'http://127.0.0.1:9999', readyAt: '2025-01-01T10:01:00.000Z' });
  t.deepEqual(store.getCluster('alice'), cluster('alice', { phase: 'running', url: 'http://127.0.0.1:9999', readyAt: '2025-01-01T10:01:00.000Z' }));
  store.updateCluster('alice', { url: null, workers: 5 });
  t.like(store.getCluster('alice'), { url: null, workers: 5, phase: 'running' });
  store.updateCluster('alice', {});
  t.notThrows(() => store.updateCluster('nobody', { phase: 'stopping' }));
  t.is(store.getCluster('nobody'), undefined);

  store.putCluster(cluster('bob', { phase: 'stopping' }));
  t.deepEqual(store.listClusters().map((c) => [c.user, c.phase]), [['alice', 'running'], ['bob', 'stopping']]);
  store.deleteCluster('alice');
  t.is(store.getCluster('alice'), undefined);
  t.is(store.listClusters().length, 1);
  store.close();
});

test('clusters are counted by phase', (t) => {
  const store = openStore(':memory:');
  t.is(store.countClusters('running'), 0);
  store.putCluster(cluster('alice', { phase: 'running' }));
  store.putCluster(cluster('bob', { phase: 'running' }));
  store.putCluster(cluster('carol'));
  t.is(store.countClusters('running'), 2);
  t.is(store.countClusters('starting'), 1);
  store.updateCluster('bob', { phase: 'stopping' });
  t.is(store.countClusters('running'), 1);
  t.is(store.countClusters('stopping'), 1);
  store.close();
});

test('writes made atomically land together, or not at all when one throws; a nested call joins the outer one', (t) => {
  const path = tempDb(t);
  const store = openStore(path);
  const reader = openStore(path);
  t.teardown(() => {
    store.close();
    reader.close();
  });
  store.atomically(() => {
    store.putCluster(cluster('alice'));
    t.is(reader.getCluster('alice'), undefined, 'another connection sees nothing before the commit');
    store.atomically(() => store.addEvent({ actor: 'alice', user: 'alice', kind: 'launch' }));
    store.addEvent({ actor: 'hub', user: 'alice', kind: 'ready' });
  });
  t.like(reader.getCluster('alice'), { phase: 'starting' });
  t.deepEqual(reader.listEvents({ user: 'alice' }).map((e) => e.kind), ['ready', 'launch']);

  t.throws(() => store.atomically(() => {
    store.deleteCluster('alice');
    store.addEvent({ actor: 'hub', user: 'alice', kind: 'stop' });
    throw new Error('the backend refused');
  }), { message: 'the backend refused' });
  t.like(store.getCluster('alice'), { phase: 'starting' }, 'the delete was rolled back');
  t.is(store.listEvents({ user: 'alice' }).length, 2);
  t.notThrows(() => store.atomically(() => store.deleteCluster('alice')), 'the store is usable after a rollback');
  t.is(reader.getCluster('alice'), undefined);
});

test('a token secret is shown once, found by its secret, listed and deleted', (t) => {
  const store = openStore(':memory:');
  const { token, row } = store.createToken('alice', { scopes: ['read:cluster', 'admin'], note: 'ci' });
  t.regex(token, /^chub_[A-Za-z0-9_-]{43}$/);
  t.like(row, { owner: 'alice', scopes: ['read:cluster', 'admin'], note: 'ci', expiresAt: null, lastUsed: null });
  t.regex(row.id, /^[A-Za-z0-9_-]{12}$/);
  t.false(JSON.stringify(row).includes(token));

  const found = store.findToken(token);
  t.is(found?.id, row.id);
  t.truthy(found?.lastUsed);
  t.is(store.findToken(token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A')), undefined);
  t.is(store.findToken(''), undefined);

  store.createToken('bob', { scopes: [] });
  t.deepEqual(store.listTokens().map((r) => r.owner).sort(), ['alice', 'bob']);
  t.deepEqual(store.listTokens('alice').map((r) => r.id), [row.id]);
  t.true(store.deleteToken(row.id));
  t.false(store.deleteToken(row.id));
  t.is(store.findToken(token), undefined);
  store.close();
});

test('an expired token is rejected, one about to expire is not', (t) => {
  let clock = new Date('2025-01-01T12:00:00.000Z');
  const store = openStore(':memory:', { now: () => clock });
  const { token } = store.createToken('alice', { scopes: [], expiresAt: new Date('2025-01-01T13:00:00.000Z') });
  t.truthy(store.findToken(token));
  clock = new Date('2025-01-01T12:59:59.999Z');
  t.truthy(store.findToken(token));
  clock = new Date('2025-01-01T13:00:00.000Z');
  t.is(store.findToken(token), undefined);
  const { token: past } = store.createToken('alice', { scopes: [], expiresAt: new Date('2024-12-31T00:00:00.000Z') });
  t.is(store.findToken(past), undefined);
  store.close();
});

test('last_used is written at most once a minute', (t) => {
  let clock = new Date('2025-01-01T12:00:00.000Z');
  const store = openStore(':memory:', { now: () => clock });
  const { token } = store.createToken('alice', { scopes: [] });
  t.is(store.findToken(token)?.lastUsed, '2025-01-01T12:00:00.000Z');
  clock = new Date('2025-01-01T12:00:30.000Z');
  t.is(store.findToken(token)?.lastUsed, '2025-01-01T12:00:00.000Z');
  clock = new Date('2025-01-01T12:01:00.000Z');
  t.is(store.findToken(token)?.lastUsed, '2025-01-01T12:01:00.000Z');
  t.is(store.listTokens('alice')[0]?.lastUsed, '2025-01-01T12:01:00.000Z');
  store.close();
});

test('events are recorded with their detail and listed newest first, filtered and limited', (t) => {
  const store = openStore(':memory:');
  const first = store.addEvent({ actor: 'alice', user: 'alice', kind: 'launch', detail: { workers: 2 }, time: new Date('2025-01-01T00:00:00.000Z') });
  t.deepEqual(first, { id: first.id, time: '2025-01-01T00:00:00.000Z', actor: 'alice', user: 'alice', kind: 'launch', detail: { workers: 2 } });
  store.addEvent({ actor: 'culler', user: 'alice', kind: 'stop' });
  store.addEvent({ actor: 'prof', user: 'bob', kind: 'stop', detail: { reason: 'reset' } });

  t.deepEqual(store.listEvents().map((e) => `${e.user}:${e.kind}`), ['bob:stop', 'alice:stop', 'alice:launch']);
  t.deepEqual(store.listEvents({ user: 'alice' }).map((e) => e.kind), ['stop', 'launch']);
  t.deepEqual(store.listEvents({ kind: 'stop' }).map((e) => e.actor), ['prof', 'culler']);
  t.deepEqual(store.listEvents({ user: 'alice', kind: 'stop' }).map((e) => e.actor), ['culler']);
  t.is(store.listEvents({ limit: 1 })[0]?.user, 'bob');
  t.deepEqual(store.listEvents({ user: 'alice' })[0]?.detail, {});
  store.close();
});

test('deleting a user removes their tokens and cluster row but keeps their events', (t) => {
  const store = openStore(':memory:');
  store.upsertUser({ login: 'alice' });
  store.upsertUser({ login: 'bob' });
  const { token } = store.createToken('alice', { scopes: [] });
  store.createToken('bob', { scopes: [] });
  store.putCluster(cluster('alice'));
  store.addEvent({ actor: 'alice', user: 'alice', kind: 'launch' });

  store.deleteUser('alice');
  t.is(store.getUser('alice'), undefined);
  t.is(store.getCluster('alice'), undefined);
  t.is(store.findToken(token), undefined);
  t.deepEqual(store.listTokens().map((r) => r.owner), ['bob']);
  t.deepEqual(store.listEvents({ user: 'alice' }).map((e) => e.kind), ['launch']);
  t.truthy(store.getUser('bob'));
  store.close();
});

test('a restarted hub finds everything it stored, and reopening does not migrate again', (t) => {
  const path = tempDb(t);
  const first = openStore(path);
  first.upsertUser({ login: 'alice', githubId: 7, admin: true });
  first.putCluster(cluster('alice', { phase: 'running', url: 'http://127.0.0.1:1234' }));
  const { token, row } = first.createToken('alice', { scopes: ['all'] });
  first.addEvent({ actor: 'alice', user: 'alice', kind: 'launch' });
  first.close();

  const db = new DatabaseSync(path);
  t.is(userVersion(db), migrations.length);
  t.deepEqual(migrate(db), { from: migrations.length, to: migrations.length });
  db.close();

  const second = openStore(path);
  t.like(second.getUser('alice'), { githubId: 7, admin: true });
  t.like(second.getCluster('alice'), { phase: 'running', url: 'http://127.0.0.1:1234', jupyterToken: 'jt-alice' });
  t.is(second.findToken(token)?.id, row.id);
  t.is(second.listEvents().length, 1);
  second.close();
});

test('the database file is private to the hub and holds no token secret', (t) => {
  const path = tempDb(t);
  const store = openStore(path);
  const secrets = Array.from({ length: 3 }, () => store.createToken('alice', { scopes: [] }).token);
  t.is(store.findToken(secrets[0]!)?.owner, 'alice');

  const files = [path, `${path}-wal`].filter((f) => existsSync(f));
  t.true(files.length === 2, 'the database runs in WAL mode');
  for (const file of [...files, `${path}-shm`]) t.is(statSync(file).mode & 0o777, 0o600, `${file} is 0600`);
  const bytes = Buffer.concat(files.map((f) => readFileSync(f)));
  for (const secret of secrets) {
    t.false(bytes.includes(secret), 'the secret is not in the file');
    t.false(bytes.includes(secret.slice('chub_'.length)), 'nor its random part');
  }
  store.close();

  const db = new DatabaseSync(path);
  const stored = db.prepare('SELECT hash FROM tokens').all().map((r) => String(r.hash));
  t.true(stored.every((h) => /^[0-9a-f]{64}$/.test(h)));
  db.close();
});

test('a database from a newer clusterhub is refused with a clear message', (t) => {
  const path = tempDb(t);
  openStore(path).close();
  const db = new DatabaseSync(path);
  db.exec(`PRAGMA user_version = ${migrations.length + 1}`);
  db.close();
  t.throws(() => openStore(path), { message: /schema version \d+, newer than this clusterhub knows/ });
});

test('a failing migration step leaves the database as it was', (t) => {
  const db = new DatabaseSync(':memory:');
  const steps = [...migrations, { description: 'broken', sql: 'CREATE TABLE extra (x); SELECT nonsense FROM nowhere;' }];
  t.throws(() => migrate(db, steps), { message: /database migration \d+ \(broken\) failed/ });
  t.is(userVersion(db), migrations.length);
  t.is(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'extra'").get()?.n, 0);
  db.close();
});

test('the version moves with every write, ours or another process\'s, and not with reads', (t) => {
  const path = tempDb(t);
  const store = openStore(path);
  const other = openStore(path);
  t.teardown(() => {
    store.close();
    other.close();
  });
  const seen = [store.version()];
  store.upsertUser({ login: 'ann', admin: false });
  seen.push(store.version());
  store.getUser('ann');
  store.userPage({ offset: 0, limit: 10 });
  t.is(store.version(), seen[1]!, 'reads leave it');
  other.upsertUser({ login: 'bob', admin: false });
  seen.push(store.version());
  store.recordActivity('ann', new Date());
  seen.push(store.version());
  t.is(new Set(seen).size, 4, seen.join(' '));
});

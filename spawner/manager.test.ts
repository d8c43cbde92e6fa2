import test from 'ava';
import type { openStore } from '../hub/store/sqlite.ts';
import { silentLogger } from '../shared/log.ts';
import { setupManager } from '../test/helpers/step-backend.ts';
import { waitUntil } from '../test/helpers/net.ts';
import type { SpawnManager } from './manager.ts';
import { reconcile, removeClusters } from './reconcile.ts';
import { ClusterError, type Backend, type ProgressEvent } from './types.ts';

async function collect(events: AsyncIterable<ProgressEvent>): Promise<ProgressEvent[]> {
  const out: ProgressEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

test('a launch becomes running and gets its route only when ready', async (t) => {
  const { backend, routes, store, manager } = await setupManager(t);
  const launch = manager.launch('alice', 2);
  t.is(manager.view('alice').phase, 'starting');
  t.deepEqual(await routes(), {});
  backend.gate('alice').resolve();
  const final = await launch.done;
  t.true(final.ready);
  t.is(final.url, '/user/alice/');
  t.deepEqual(await routes(), { '/user/alice': 'http://127.0.0.1:9/alice' });
  t.is(store.getCluster('alice')?.phase, 'running');
  t.is(manager.view('alice').phase, 'running');
});

test('progress replays to a late watcher and never goes backwards', async (t) => {
  const { backend, manager } = await setupManager(t);
  manager.launch('alice', 1);
  const early = collect(manager.progress('alice'));
  backend.gate('alice').resolve();
  const events = await early;
  const late = await collect(manager.progress('alice'));
  t.deepEqual(events.map((e) => e.progress), [...events.map((e) => e.progress)].sort((a, b) => a - b));
  t.true(events.at(-1)!.ready);
  t.is(late.length, 1);
  t.true(late[0]!.ready);
});

test('a second launch click joins the pending launch', async (t) => {
  const { backend, manager } = await setupManager(t);
  const first = manager.launch('alice', 2);
  const second = manager.launch('alice', 5);
  t.is(first, second);
  backend.gate('alice').resolve();
  await first.done;
  t.deepEqual(backend.starts, ['alice']);
});

test('launching a running cluster is a 409', async (t) => {
  const { backend, manager } = await setupManager(t);
  backend.gate('alice').resolve();
  await manager.launch('alice', 1).done;
  const err = t.throws(() => manager.launch('alice', 1));
  t.is((err as ClusterError).status, 409);
});

test('workers outside the limits are refused with 422 and nothing changes', async (t) => {
  const { store, manager } = await setupManager(t);
  for (const workers of [-1, 9, 1.5]) {
    const err = t.throws(() => manager.launch('alice', workers));
    t.is((err as ClusterError).status, 422);
  }
  t.is(store.getCluster('alice'), undefined);
  t.is(manager.view('alice').phase, 'stopped');
});

test('a failed launch carries the reason, leaves nothing, and can be retried at once', async (t) => {
  const { backend, routes, store, manager, failures } = await setupManager(t);
  backend.failWith = 'ImagePullBackOff: image not found';
  backend.gate('alice').resolve();
  const final = await manager.launch('alice', 1).done;
  t.true(final.failed);
  t.regex(final.message, /ImagePullBackOff/);
  t.is(store.getCluster('alice'), undefined);
  t.deepEqual(await routes(), {});
  t.deepEqual(backend.stops, ['alice']);
  t.deepEqual(await failures(), { failed: 1 });
  const replay = await collect(manager.progress('alice'));
  t.is(replay.length, 1);
  t.regex(replay[0]!.message, /ImagePullBackOff/);
  backend.failWith = undefined;
  t.true((await manager.launch('alice', 1).done).ready);
});

test('what a failed launch left is removed once an unreachable backend answers again; until then the user is stopping', async (t) => {
  const { backend, store, manager } = await setupManager(t);
  backend.failWith = 'the API server went away';
  backend.stopFailures = 2;
  backend.gate('alice').resolve();
  t.true((await manager.launch('alice', 1).done).failed);
  t.is(store.getCluster('alice')?.phase, 'stopping');
  t.is(manager.view('alice').phase, 'stopping');
  t.throws(() => manager.launch('alice', 1), { message: /stopping/ });
  await waitUntil('the removal retried until the backend answered', () => store.getCluster('alice') === undefined);
  t.deepEqual(backend.stops, ['alice', 'alice', 'alice']);
  t.like(store.listEvents({ user: 'alice', kind: 'cleanup' })[0], { actor: 'hub' });
  t.is(manager.view('alice').phase, 'stopped');
  backend.failWith = undefined;
  t.true((await manager.launch('alice', 1).done).ready);
});

test('a route that cannot be added stops the cluster: no half state', async (t) => {
  const { backend, store, manager } = await setupManager(t, { proxyToken: 'not-the-proxy-token-0123456789' });
  backend.gate('alice').resolve();
  const final = await manager.launch('alice', 1).done;
  t.true(final.failed);
  t.regex(final.message, /403/);
  t.false(backend.running.has('alice'));
  t.is(store.getCluster('alice'), undefined);
});

test('a launch that is not ready in time is stopped with the last step in the reason', async (t) => {
  const { backend, store, manager, failures } = await setupManager(t, { timeout: 0.2 });
  const final = await manager.launch('alice', 1).done;
  t.true(final.failed);
  t.regex(final.message, /not ready after 0 s \(last step: scheduler starting\)/);
  t.deepEqual(await failures(), { timeout: 1 });
  t.deepEqual(backend.stops, ['alice']);
  t.is(store.getCluster('alice'), undefined);
});

test('launches beyond the concurrency limit wait in line and see their position', async (t) => {
  const { backend, manager } = await setupManager(t, { concurrency: 1 });
  manager.launch('a', 1);
  const b = manager.launch('b', 1);
  manager.launch('c', 1);
  t.is(manager.view('b').queuePosition, 1);
  t.is(manager.view('c').queuePosition, 2);
  for await (const e of manager.progress('a')) if (e.progress > 1) break;
  t.deepEqual(backend.starts, ['a']);
  const cEvents = collect(manager.progress('c'));
  backend.gate('a').resolve();
  await t.notThrowsAsync(async () => {
    for await (const e of manager.progress('b')) if (e.progress > 1) break;
  });
  t.is(manager.view('c').queuePosition, 1);
  backend.gate('b').resolve();
  await b.done;
  backend.gate('c').resolve();
  const messages = (await cEvents).map((e) => e.message);
  t.true(messages.includes('Waiting in line: position 2'));
  t.true(messages.includes('Waiting in line: position 1'));
  t.deepEqual(backend.starts, ['a', 'b', 'c']);
});

test('stop during a launch cancels it and cleans up', async (t) => {
  const { backend, routes, store, manager, failures } = await setupManager(t);
  const launch = manager.launch('alice', 1);
  await manager.stop('alice', { actor: 'alice' });
  t.true((await launch.done).failed);
  t.deepEqual(await failures(), { cancelled: 1 });
  t.is(store.getCluster('alice'), undefined);
  t.deepEqual(await routes(), {});
  t.false(backend.running.has('alice'));
});

test('stop removes the route before the cluster and records who stopped it', async (t) => {
  const { backend, routes, store, manager } = await setupManager(t);
  backend.gate('alice').resolve();
  await manager.launch('alice', 1).done;
  await manager.stop('alice', { actor: 'teacher', reason: 'stopped by teacher' });
  t.deepEqual(await routes(), {});
  t.false(backend.running.has('alice'));
  const event = store.listEvents({ user: 'alice', limit: 1 })[0]!;
  t.is(event.kind, 'stop');
  t.is(event.actor, 'teacher');
  t.is(manager.view('alice').phase, 'stopped');
});

test('scale changes the workers of a running cluster and refuses a stopped one', async (t) => {
  const { backend, store, manager } = await setupManager(t);
  await t.throwsAsync(manager.scale('alice', 2), { message: /no running cluster/ });
  backend.gate('alice').resolve();
  await manager.launch('alice', 1).done;
  await manager.scale('alice', 4);
  t.is(backend.running.get('alice')?.workers, 4);
  t.is(store.getCluster('alice')?.workers, 4);
});

test('reconcile at start adopts running clusters, forgets dead ones and cleans abandoned launches', async (t) => {
  const { backend, proxy, routes, store, manager } = await setupManager(t);
  store.upsertUser({ login: 'alive' });
  store.upsertUser({ login: 'orphan' });
  const base = { backend: 'test', workers: 1, jupyterToken: 't', createdAt: new Date().toISOString(), readyAt: null, lastActivity: null };
  store.putCluster({ ...base, user: 'dead', phase: 'running', url: 'http://127.0.0.1:9/dead' });
  store.putCluster({ ...base, user: 'halfway', phase: 'starting', url: null });
  store.putCluster({ ...base, user: 'alive', phase: 'running', url: 'http://old' });
  backend.running.set('alive', { workers: 1, url: 'http://127.0.0.1:9/alive', token: 't' });
  backend.running.set('orphan', { workers: 2, url: 'http://127.0.0.1:9/orphan', token: 'o' });
  await proxy.addRoute('/user/dead', 'http://127.0.0.1:9/dead', { user: 'dead' });
  const report = await reconcile(reconcileDeps(manager, backend, store));
  t.like(report, { adopted: ['orphan'], kept: ['alive'], forgotten: ['dead'], abandoned: ['halfway'], cleaned: [] });
  t.is(store.getCluster('alive')?.url, 'http://127.0.0.1:9/alive');
  t.is(store.getCluster('orphan')?.jupyterToken, 'o');
  t.is(store.getCluster('dead')?.phase, 'stopping', 'what must go is marked at once, so no route is wanted for it');
  await removeClusters(report.removals, (r) => manager.remove(r), { limit: 2, log: silentLogger() });
  t.is(store.getCluster('dead'), undefined);
  t.is(store.getCluster('halfway'), undefined);
  t.false('/user/dead' in await routes(), 'the dead cluster\'s route is gone');
  t.true(backend.stops.includes('halfway'));
  t.is(store.listEvents({ user: 'halfway', limit: 1 })[0]?.kind, 'launch-failed');
});

test('reconcile never adopts a cluster stopped while it was listing', async (t) => {
  const { backend, store, manager } = await setupManager(t);
  store.upsertUser({ login: 'bob' });
  backend.gate('bob').resolve();
  await manager.launch('bob', 1).done;
  // The listing is taken, then the stop runs to its end before reconcile decides.
  const listed = Promise.withResolvers<void>();
  const list = backend.list.bind(backend);
  backend.list = async () => {
    const listing = await list();
    await listed.promise;
    return listing;
  };
  const pass = reconcile(reconcileDeps(manager, backend, store));
  await manager.stop('bob', { actor: 'teacher' });
  backend.running.set('bob', { workers: 1, url: 'http://127.0.0.1:9/bob', token: 't' }); // a namespace still terminating
  listed.resolve();
  const report = await pass;
  t.deepEqual(report.adopted, []);
  t.is(store.getCluster('bob'), undefined);
  t.is(manager.view('bob').phase, 'stopped');
});

test('a launch waits in line without its start timeout running; the line has its own limit', async (t) => {
  const { backend, manager } = await setupManager(t, { concurrency: 1, queueTimeout: 0.3 });
  const first = manager.launch('a', 1);
  const second = manager.launch('b', 1);
  const failed = await second.done;
  t.true(failed.failed);
  t.regex(failed.message, /no launch slot became free within 0 s \(still at position 1 in line\)/);
  t.deepEqual(backend.starts, ['a'], 'the queued launch never reached the backend');
  backend.gate('a').resolve();
  t.true((await first.done).ready);

  // In line for as long as a start timeout (behind a launch that times out), then started: it has its whole start timeout.
  const { backend: b2, manager: m2 } = await setupManager(t, { concurrency: 1, timeout: 3, queueTimeout: 60 });
  const c = m2.launch('c', 1);
  const d = m2.launch('d', 1);
  t.regex((await c.done).message, /not ready after 3 s/);
  for await (const e of m2.progress('d')) if (e.message === 'scheduler starting') break;
  b2.gate('d').resolve();
  const final = await d.done;
  t.true(final.ready, `time in line does not count against the start timeout (${final.message})`);
});

function reconcileDeps(manager: SpawnManager, backend: Backend, store: ReturnType<typeof openStore>) {
  return {
    backend, records: store, log: silentLogger(), busy: () => manager.busyUsers(), generation: () => manager.generation(),
    changedSince: (u: string, since: number) => manager.changedSince(u, since), knownUser: (l: string) => !!store.getUser(l),
  };
}

/**
 * Sweeps against a real configurable-http-proxy. The clusters' Jupyter is unreachable
 * here (nothing listens, as on fake Kubernetes nodes), so the proxy's view decides;
 * test/culler.test.ts covers a real Jupyter Server. Time is compressed by moving the
 * culler's clock forward instead of waiting.
 */
import test from 'ava';
import { ChpClient } from '../proxy/client.ts';
import { waitUntil } from '../test/helpers/net.ts';
import { checkCullerConfig } from './config.ts';
import { Culler } from './job.ts';
import { hostRoutes } from '../proxy/routes.ts';
import { candidate, captureLogger, cullerConfig, deadUrl, PROXY_TOKEN, StandInHub, startProxy } from '../test/helpers/culler.ts';
import type { CullCandidate, CullerConfig } from './types.ts';

const cleanup: Array<() => Promise<void>> = [];
test.after.always(async () => {
  await Promise.all(cleanup.map((fn) => fn()));
});

/** A proxy with the clusters' routes, a stand-in hub, and a culler whose clock runs `skew` seconds ahead. */
async function setup(clusters: CullCandidate[], config: Partial<CullerConfig> = {}) {
  const proxy = await startProxy();
  cleanup.push(proxy.stop);
  const hub = new StandInHub(proxy.client, clusters);
  await hub.addRoutes();
  const clock = { skewSeconds: 0 };
  const log = captureLogger();
  const culler = new Culler(hub.deps(log, () => new Date(Date.now() + clock.skewSeconds * 1000)), cullerConfig({ idleTimeoutSeconds: 60, ...config }));
  cleanup.push(() => culler.stop());
  const routes = async () => Object.keys(await proxy.client.getRoutes()).filter((p) => p !== '/').sort();
  return { proxy, hub, clock, log, culler, routes };
}

test('idle clusters are stopped through the stop path, with the reason the user sees', async (t) => {
  const { hub, clock, culler, routes, log } = await setup([candidate('alice', await deadUrl()), candidate('bob', await deadUrl())]);
  t.deepEqual((await culler.sweep()).culled, [], 'nothing is idle for a minute yet');

  clock.skewSeconds = 125;
  const report = await culler.sweep();
  t.deepEqual(report.culled.sort(), ['alice', 'bob']);
  t.deepEqual(hub.stopped.map((s) => s.reason), ['idle 2 minutes', 'idle 2 minutes']);
  t.deepEqual(await routes(), [], 'the stop path removed the routes');
  const alice = report.clusters.find((c) => c.user === 'alice')!;
  t.is(alice.evidence, 'proxy');
  t.true(alice.stopped);
  t.regex(alice.jupyterUnreachable ?? '', /ECONNREFUSED/);
  const line = log.lines.find((l) => l.msg === 'culling cluster' && l.obj.user === 'alice');
  t.regex(String(line?.obj.evidence), /^proxy only \(Jupyter unreachable: /, 'the log says the proxy decided');
});

test('a dry run reports what it would do and changes nothing', async (t) => {
  const { hub, clock, culler, routes, proxy } = await setup([candidate('alice', await deadUrl())], { dryRun: true, orphanGraceSeconds: 60 });
  await proxy.client.addRoute('/user/ghost', await deadUrl());
  hub.orphans = [{ user: 'old', createdAt: new Date(Date.now() - 3_600_000).toISOString() }];
  clock.skewSeconds = 3600;

  const report = await culler.sweep();
  t.true(report.dryRun);
  t.deepEqual([report.culled, report.routesRemoved, report.orphansRemoved], [['alice'], ['/user/ghost'], ['old']]);
  t.false(report.clusters[0]!.stopped);
  t.deepEqual(hub.stopped, []);
  t.deepEqual(hub.removedOrphans, []);
  t.deepEqual(await routes(), ['/user/alice', '/user/ghost']);

  const real = await culler.sweep({ dryRun: false });
  t.false(real.dryRun, 'an explicit dry_run=false overrides the configured dry run');
  t.deepEqual(hub.stopped.map((s) => s.user), ['alice']);
});

test('orphans are removed once older than the grace period', async (t) => {
  const { hub, clock, culler } = await setup([], { orphanGraceSeconds: 600 });
  const ago = (s: number) => new Date(Date.now() - s * 1000).toISOString();
  hub.orphans = [{ user: 'old', createdAt: ago(700) }, { user: 'young', createdAt: ago(10) }, { user: 'undated' }];

  const first = await culler.sweep();
  t.deepEqual(first.orphansRemoved, ['old']);
  t.deepEqual(first.orphansWaiting.map((o) => o.user), ['young', 'undated'], 'an orphan with no creation time ages from first sight');
  clock.skewSeconds = 601;
  const second = await culler.sweep();
  t.deepEqual(second.orphansRemoved.sort(), ['undated', 'young']);
  t.deepEqual(hub.removedOrphans.sort(), ['old', 'undated', 'young']);
});

test('routes that lead to no known cluster are removed; other routes stay', async (t) => {
  const starting = candidate('carol', null, 5, { phase: 'starting', readyAt: null });
  const { proxy, culler, routes } = await setup([candidate('alice', await deadUrl()), starting]);
  await proxy.client.addRoute('/user/ghost', await deadUrl());
  await proxy.client.addRoute('/user/carol', await deadUrl());
  await proxy.client.addRoute('/services/grader', await deadUrl());

  const report = await culler.sweep();
  t.deepEqual(report.routesRemoved, ['/user/ghost']);
  t.deepEqual(await routes(), ['/services/grader', '/user/alice', '/user/carol']);
  t.is(report.clusters.find((c) => c.user === 'carol')?.reason, 'launch pending');
});

test('with host routing the culler reads and sweeps the routes keyed by host', async (t) => {
  const scheme = hostRoutes('localhost');
  const { proxy, hub, routes } = await setup([candidate('alice', await deadUrl(), 3600, { routePath: scheme.path('alice') })]);
  await proxy.client.addRoute(scheme.path('ghost'), await deadUrl());
  await proxy.client.addRoute('/user/other-tool', await deadUrl());
  const culler = new Culler({ ...hub.deps(captureLogger()), isUserRoute: scheme.manages }, cullerConfig({ idleTimeoutSeconds: 60 }));
  const report = await culler.sweep();
  t.deepEqual(report.routesRemoved, ['/ghost.localhost/user/ghost']);
  t.deepEqual(await routes(), ['/alice.localhost/user/alice', '/user/other-tool']);
  t.deepEqual(report.culled, [], 'alice\'s route has fresh activity: not culled');
});

test('when the hub cannot list its clusters, no route is called stray and no orphan removed', async (t) => {
  const { hub, culler, routes } = await setup([candidate('alice', await deadUrl())], { orphanGraceSeconds: 1 });
  hub.orphans = [{ user: 'old', createdAt: new Date(0).toISOString() }];
  const deps = hub.deps(captureLogger());
  const blind = new Culler({ ...deps, clusters: () => { throw new Error('database is locked'); } }, cullerConfig());
  const report = await blind.sweep();
  t.deepEqual(report.errors, [{ step: 'clusters', message: 'database is locked' }]);
  t.deepEqual([report.routesRemoved, report.orphansRemoved], [[], []]);
  t.deepEqual(await routes(), ['/user/alice']);
  t.is((await culler.sweep()).orphansRemoved[0], 'old', 'the next good sweep does');
});

test('one failing stop does not stop the sweep', async (t) => {
  const users = ['alice', 'bob', 'carol'];
  const { hub, clock, culler } = await setup(await Promise.all(users.map(async (u) => candidate(u, await deadUrl()))));
  hub.stopHook = (user) => {
    if (user === 'bob') throw new Error('namespace clusterhub-bob is stuck terminating');
  };
  clock.skewSeconds = 3600;
  const report = await culler.sweep();
  t.deepEqual(hub.stopped.map((s) => s.user).sort(), ['alice', 'carol']);
  t.deepEqual(report.errors, [{ user: 'bob', step: 'stop', message: 'namespace clusterhub-bob is stuck terminating' }]);
  t.false(report.clusters.find((c) => c.user === 'bob')!.stopped);
});

test('at most culler.concurrency clusters are stopped at once', async (t) => {
  const users = Array.from({ length: 8 }, (_, i) => `user${i}`);
  const { hub, clock, culler } = await setup(await Promise.all(users.map(async (u) => candidate(u, await deadUrl()))), { concurrency: 2 });
  let inFlight = 0;
  let most = 0;
  hub.stopHook = async () => {
    most = Math.max(most, ++inFlight);
    await new Promise<void>((resolve) => setImmediate(resolve));
    inFlight--;
  };
  clock.skewSeconds = 3600;
  await culler.sweep();
  t.is(hub.stopped.length, 8);
  t.true(most <= 2, `at most 2 in flight, saw ${most}`);
});

test('a second sweep while one runs joins it; a dry run waits for it', async (t) => {
  const { hub, clock, culler } = await setup([candidate('alice', await deadUrl())]);
  const reached = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  hub.stopHook = async () => {
    reached.resolve();
    await release.promise;
  };
  clock.skewSeconds = 3600;
  const first = culler.sweep();
  await reached.promise;
  t.is(culler.sweep(), first, 'the same kind of sweep joins the running one');
  const dry = culler.sweep({ dryRun: true });
  t.not(dry, first);
  t.is(culler.sweep({ dryRun: true }), dry, 'and a second dry run joins the waiting one');
  t.is(hub.clustersCalls, 1, 'the dry run has not started');

  release.resolve();
  const [a, b] = await Promise.all([first, dry]);
  t.true(Date.parse(b.startedAt) >= Date.parse(a.finishedAt), 'the dry run ran after the first sweep');
  t.deepEqual(hub.stopped.map((s) => s.user), ['alice']);
  t.deepEqual(b.clusters, [], 'alice was already gone when the dry run looked');
});

test('when the proxy API fails, only max age applies and the error is reported', async (t) => {
  const { hub, clock } = await setup([candidate('alice', await deadUrl()), candidate('old', await deadUrl(), 90_000)]);
  const broken = new ChpClient({ apiUrl: await deadUrl(), authToken: PROXY_TOKEN, timeoutMs: 2000 });
  const log = captureLogger();
  const culler = new Culler({ ...hub.deps(log, () => new Date(Date.now() + clock.skewSeconds * 1000)), proxy: broken },
    cullerConfig({ idleTimeoutSeconds: 60, maxAgeSeconds: 86_400 }));
  clock.skewSeconds = 3600;
  const report = await culler.sweep();
  t.deepEqual(report.culled, ['old']);
  t.is(report.clusters.find((c) => c.user === 'alice')?.reason, 'proxy API unavailable');
  t.is(hub.stopped[0]?.reason, 'max age');
  t.is(report.errors[0]?.step, 'routes');
});

test('the schedule runs sweeps, and skips a tick while a sweep still runs', async (t) => {
  const { hub, clock, culler, log } = await setup([candidate('alice', await deadUrl())], { schedule: '* * * * * *' });
  const release = Promise.withResolvers<void>();
  hub.stopHook = () => release.promise;
  clock.skewSeconds = 3600;
  culler.start();
  t.truthy(culler.nextSweepAt());
  await waitUntil('node-cron to skip a tick', () => log.lines.some((l) => l.level === 'warn' && /overlap/.test(l.msg)));
  t.is(hub.clustersCalls, 1, 'the skipped tick did not start a second sweep');
  release.resolve();
  await culler.stop();
  t.is(culler.nextSweepAt(), null);
  t.deepEqual(hub.stopped.map((s) => s.user), ['alice']);
  t.truthy(culler.lastReport());
});

test('the admin page can tell when a cluster will be culled', async (t) => {
  const { culler } = await setup([candidate('alice', await deadUrl(), 3600, { readyAt: new Date().toISOString() })], { schedule: '*/5 * * * *', idleTimeoutSeconds: 720 });
  const report = await culler.sweep();
  const line = report.clusters[0]!;
  t.is(line.action, 'keep');
  const cullAt = new Date(line.cullAt!);
  t.true(Math.abs(cullAt.getTime() - (Date.now() + 720_000)) < 10_000, 'idle deadline is 12 minutes from the last activity');
  culler.start();
  const next = culler.nextSweepAt()!;
  t.is(next.getMinutes() % 5, 0);
  const sweepAt = culler.sweepAtOrAfter(cullAt)!;
  t.true(sweepAt >= cullAt && sweepAt.getTime() - cullAt.getTime() <= 300_000, 'the first 5-minute sweep after the deadline');
  t.is(sweepAt.getMinutes() % 5, 0);
});

test('a bad schedule fails at start and names culler.schedule', (t) => {
  t.notThrows(() => checkCullerConfig({ culler: cullerConfig({ schedule: '*/10 * * * * *' }) }));
  const err = t.throws(() => checkCullerConfig({ culler: cullerConfig({ schedule: '61 * * * *' }) }));
  t.regex(err.message, /^culler\.schedule: "61 \* \* \* \*" is not a valid cron expression \(minute: /);
  t.throws(() => new Culler({} as never, cullerConfig({ schedule: 'every five minutes' })), { message: /culler\.schedule/ });
});

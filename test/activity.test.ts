/**
 * `last_activity` follows what the culler sees, through the whole hub with the echo backend
 * (a real HTTP server per cluster) and a real configurable-http-proxy: traffic through the
 * proxy moves it at the next sweep (dry runs too) and at the next route repair; without
 * traffic it stays; `GET /hub/api/users` and `GET /hub/api/users/{name}` show the same time.
 * Jupyter's own activity is checked with real clusters in test/culling-local.test.ts.
 */
import test from 'ava';
import { EchoBackend } from './helpers/echo-backend.ts';
import { startTestHub, type TestHub } from './helpers/hub.ts';
import { apiAs, cullNow } from './helpers/hub-api.ts';

interface UserJson { last_activity: string | null; cluster: { phase: string; ready: string | null; last_activity: string | null } }

let hub: TestHub;
let teacher: string;
let ada: string;

const userOf = async (name: string): Promise<UserJson> => {
  // Read as the teacher: ada's own API calls would count as her being seen.
  const res = await apiAs(hub, teacher, `/hub/api/users/${name}`);
  if (res.status !== 200) throw new Error(`GET /hub/api/users/${name}: ${res.status}`);
  return (await res.json()) as UserJson;
};

/** A request through the proxy to ada's cluster, as her browser tab makes; resolves when answered. */
async function browse(): Promise<void> {
  const res = await fetch(`${hub.publicUrl}/user/ada/api/contents`);
  if (res.status !== 200) throw new Error(`through the proxy: ${res.status}`);
  await res.text();
}

test.before(async () => {
  const backend = new EchoBackend();
  // The schedule is once a year: sweeps run when the test asks.
  hub = await startTestHub({ backend, config: { hub: { activityIntervalSeconds: 3600 }, culler: { enabled: true, schedule: '0 0 1 1 *', idleTimeoutSeconds: 3600 } } });
  teacher = hub.token('teacher');
  ada = hub.token('ada');
  const res = await apiAs(hub, ada, '/hub/api/users/ada/cluster', { method: 'POST', json: { workers: 1 } });
  if (res.status !== 202) throw new Error(`launch: ${res.status} ${await res.text()}`);
  for await (const event of hub.manager.progress('ada')) if (event.ready || event.failed) break;
});

test.after.always(() => hub?.destroy());

test.serial('traffic through the proxy moves last_activity at the next sweep (a dry run), and both views agree', async (t) => {
  const before = await userOf('ada');
  t.is(before.cluster.phase, 'running');
  t.is(before.cluster.last_activity, before.cluster.ready, 'at launch, the last activity is the launch');
  const sent = Date.now();
  await browse();
  t.is((await userOf('ada')).cluster.last_activity, before.cluster.last_activity, 'not before a sweep looks');

  const report = await cullNow(hub, teacher, { dry_run: true });
  const after = await userOf('ada');
  const seen = Date.parse(after.cluster.last_activity!);
  t.true(seen >= sent && seen <= Date.now(), `${after.cluster.last_activity} is when ada browsed (${new Date(sent).toISOString()})`);
  t.is(report.clusters.find((c) => c.user === 'ada')?.lastActivity, after.cluster.last_activity, 'the sweep saw what the store says');
  t.is(after.last_activity, after.cluster.last_activity, "the user's last activity includes the cluster's");
  t.deepEqual(report.culled, [], 'nothing was idle');
  t.is(hub.store.getCluster('ada')?.phase, 'running');

  const listed = await apiAs(hub, teacher, '/hub/api/users');
  const rows = (await listed.json()) as Array<{ name: string; last_activity: string | null }>;
  t.is(rows.find((u) => u.name === 'ada')?.last_activity, after.cluster.last_activity, 'the instructors\' list shows the same time');
});

test.serial('without traffic, sweeps leave last_activity where it is', async (t) => {
  const before = (await userOf('ada')).cluster.last_activity;
  await cullNow(hub, teacher, { dry_run: true });
  await cullNow(hub, teacher);
  const after = await userOf('ada');
  t.is(after.cluster.last_activity, before);
  t.is(after.last_activity, before);
  t.is(after.cluster.phase, 'running');
});

test.serial('the periodic route repair records the proxy\'s activity between sweeps', async (t) => {
  const before = Date.parse((await userOf('ada')).cluster.last_activity!);
  const sent = Date.now();
  await browse();
  await hub.repair();
  const after = Date.parse((await userOf('ada')).cluster.last_activity!);
  t.true(after >= sent && after > before, `${new Date(after).toISOString()} after ${new Date(sent).toISOString()}`);
});

test.serial('an older observation never moves last_activity backwards, and the user keeps it after a stop', async (t) => {
  const before = (await userOf('ada')).cluster.last_activity!;
  hub.store.recordActivity('ada', new Date(Date.parse(before) - 60_000));
  t.is((await userOf('ada')).cluster.last_activity, before);

  const res = await apiAs(hub, teacher, '/hub/api/users/ada/cluster', { method: 'DELETE' });
  t.is(res.status, 204);
  const stopped = await userOf('ada');
  t.is(stopped.cluster.phase, 'stopped');
  t.is(stopped.last_activity, before, 'her work in the cluster still counts as her last activity');
});

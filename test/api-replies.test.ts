/**
 * The user list and user models are kept between requests (a class's dashboard polls them):
 * every change shows in the very next reply — launches (with their queue positions), stops,
 * roster changes through the API, and a user added by `clusterhub token` in another process
 * while the hub runs. Real hub and proxy, echo clusters.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { EchoBackend } from './helpers/echo-backend.ts';
import { startTestHub, type TestHub } from './helpers/hub.ts';
import { apiAs } from './helpers/hub-api.ts';

const run = promisify(execFile);
const cli = join(import.meta.dirname, '..', 'hub', 'cli.ts');

let hub: TestHub;
let backend: EchoBackend;
let teacher: string;

test.before(async () => {
  backend = new EchoBackend();
  hub = await startTestHub({ backend, config: { spawn: { concurrency: 1, maxWorkers: 4, defaultWorkers: 1 } } });
  teacher = hub.token('teacher');
  for (const login of ['ann', 'bob']) hub.token(login);
});
test.after.always(() => hub?.destroy());

type Model = { name: string; admin: boolean; pending: string | null; server: string | null; cluster: { phase: string; queue_position?: number } };
const get = async <T>(path: string): Promise<T> => {
  const res = await apiAs(hub, teacher, path);
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
};
const listed = async (name: string) => (await get<Model[]>('/hub/api/users')).find((u) => u.name === name);

test.serial('the same request twice gets the same JSON, typed as JSON', async (t) => {
  const first = await apiAs(hub, teacher, '/hub/api/users?limit=2');
  const second = await apiAs(hub, teacher, '/hub/api/users?limit=2');
  t.is(first.headers.get('content-type'), 'application/json; charset=utf-8');
  t.is(second.headers.get('content-type'), 'application/json; charset=utf-8');
  t.is(await second.text(), await first.text());
  t.is((await get<Model[]>('/hub/api/users?limit=2')).length, 2);
  t.is((await apiAs(hub, teacher, '/hub/api/users/nobody')).status, 404);
});

test.serial('launches, queue positions and stops show in the next list and user reply', async (t) => {
  t.like(await listed('ann'), { pending: null, cluster: { phase: 'stopped' } });
  t.like(await get<Model>('/hub/api/users/bob'), { pending: null, cluster: { phase: 'stopped' } });
  const gate = Promise.withResolvers<void>();
  backend.hold = gate.promise;
  for (const login of ['ann', 'bob']) t.is((await apiAs(hub, teacher, `/hub/api/users/${login}/server`, { method: 'POST', json: {} })).status, 202);
  t.like(await listed('ann'), { pending: 'spawn', cluster: { phase: 'starting' } });
  t.like(await get<Model>('/hub/api/users/bob'), { pending: 'spawn', cluster: { phase: 'queued', queue_position: 1 } });
  t.like(await listed('bob'), { cluster: { queue_position: 1 } });
  backend.hold = undefined;
  gate.resolve();
  for (const login of ['ann', 'bob']) {
    const progress = await (await apiAs(hub, teacher, `/hub/api/users/${login}/server/progress`)).text();
    t.regex(progress, /"ready":true/);
  }
  t.like(await listed('bob'), { pending: null, server: '/user/bob/', cluster: { phase: 'running' } });
  t.like(await get<Model>('/hub/api/users/ann'), { server: '/user/ann/', cluster: { phase: 'running' } });
  t.is((await apiAs(hub, teacher, '/hub/api/users/ann/server', { method: 'DELETE' })).status, 204);
  t.like(await get<Model>('/hub/api/users/ann'), { server: null, cluster: { phase: 'stopped' } });
  t.like(await listed('ann'), { server: null, cluster: { phase: 'stopped' } });
});

test.serial('roster changes through the API show in the next reply', async (t) => {
  t.false((await get<Model>('/hub/api/users/bob')).admin);
  t.is((await apiAs(hub, teacher, '/hub/api/users/bob', { method: 'PATCH', json: { admin: true } })).status, 200);
  t.true((await get<Model>('/hub/api/users/bob')).admin);
  t.true((await listed('bob'))!.admin);
  t.is(await listed('carol'), undefined);
  t.is((await apiAs(hub, teacher, '/hub/api/users', { method: 'POST', json: { usernames: ['carol'] } })).status, 201);
  t.truthy(await listed('carol'));
});

test.serial('a user added by `clusterhub token` while the hub runs is listed at once', async (t) => {
  const total = async () => {
    const res = await fetch(`${hub.publicUrl}/hub/api/users?limit=1`, { headers: { Authorization: `token ${teacher}`, Accept: 'application/jupyterhub-pagination+json' } });
    return ((await res.json()) as { _pagination: { total: number } })._pagination.total;
  };
  const before = await total();
  t.is(await listed('dora'), undefined);
  t.is((await apiAs(hub, teacher, '/hub/api/users/dora')).status, 404);
  const config = join(hub.config.hub.stateDir, 'cli.yaml');
  writeFileSync(config, `hub:\n  stateDir: ${hub.config.hub.stateDir}\n`);
  await run(process.execPath, [cli, 'token', 'dora', '--config', config]);
  t.truthy(await listed('dora'));
  t.is((await get<Model>('/hub/api/users/dora')).name, 'dora');
  t.is(await total(), before + 1);
});

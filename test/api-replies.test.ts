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
import { request } from 'node:http';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
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

/** A GET through the proxy with exactly these headers (fetch would add its own Accept-Encoding). */
const raw = (path: string, headers: Record<string, string>) => new Promise<{ headers: import('node:http').IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
  const req = request(`${hub.publicUrl}${path}`, { headers: { Authorization: `token ${teacher}`, ...headers } }, (res) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
  });
  req.on('error', reject);
  req.end();
});

test.serial('a kept list is gzipped for a client that asks, and only then', async (t) => {
  // A page worth compressing: one user's model is ~300 bytes.
  for (let i = 0; i < 20; i++) hub.store.upsertUser({ login: `student${i}`, admin: false });
  await raw('/hub/api/users', {});
  const plain = await raw('/hub/api/users', {});
  const zipped = await raw('/hub/api/users', { 'Accept-Encoding': 'gzip, deflate' });
  const refused = await raw('/hub/api/users', { 'Accept-Encoding': 'gzip;q=0, identity' });
  t.is(plain.headers['content-encoding'], undefined);
  t.is(refused.headers['content-encoding'], undefined);
  t.is(zipped.headers['content-encoding'], 'gzip');
  for (const reply of [plain, zipped, refused]) t.regex(String(reply.headers.vary), /Accept-Encoding/i);
  t.deepEqual(gunzipSync(zipped.body), plain.body);
  t.deepEqual(refused.body, plain.body);
  // One user's model is too small to be worth it.
  t.is((await raw('/hub/api/users/ann', { 'Accept-Encoding': 'gzip' })).headers['content-encoding'], undefined);
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

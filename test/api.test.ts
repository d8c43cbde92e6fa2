/**
 * Every REST route's authorization rule (anonymous 401, another user 403, admin allowed),
 * and bad input (400/404/422 with {status, message}, nothing changed). Real HTTP through the
 * real proxy; clusters from the echo backend.
 */
import test from 'ava';
import { EchoBackend } from './helpers/echo-backend.ts';
import { startTestHub, type TestHub } from './helpers/hub.ts';
import type { HttpClient } from './helpers/http.ts';

let hub: TestHub;
let backend: EchoBackend;
let api: HttpClient;
const tokens: Record<string, string> = {};

test.before(async () => {
  backend = new EchoBackend();
  hub = await startTestHub({ backend, config: { spawn: { maxWorkers: 4, defaultWorkers: 1 } } });
  api = hub.anonymous();
  for (const login of ['teacher', 'student', 'other', 'target']) tokens[login] = hub.token(login);
});
test.after.always(() => hub?.destroy());

const as = (login: string | undefined): Record<string, string> => (login ? { Authorization: `token ${tokens[login]}` } : {});

interface Route { method: string; path: string; json?: unknown; admin: boolean }

/** Routes about user `target`, and who may call them. */
const routes: Route[] = [
  { method: 'GET', path: '/hub/api/users/target', admin: false },
  { method: 'GET', path: '/hub/api/users/target/cluster/progress', admin: false },
  { method: 'PATCH', path: '/hub/api/users/target/cluster', json: { workers: 2 }, admin: false },
  { method: 'DELETE', path: '/hub/api/users/target/cluster', admin: false },
  { method: 'POST', path: '/hub/api/users/target/cluster', json: { workers: 1 }, admin: false },
  { method: 'GET', path: '/hub/api/users', admin: true },
  { method: 'POST', path: '/hub/api/users/target/reset', admin: true },
  { method: 'DELETE', path: '/hub/api/clusters', admin: true },
  { method: 'GET', path: '/hub/metrics', admin: true },
];

for (const route of routes) {
  test.serial(`${route.method} ${route.path}: anonymous 401, another user 403, ${route.admin ? 'admin' : 'owner and admin'} allowed`, async (t) => {
    const call = (who: string | undefined) => api.request(route.path, { method: route.method, json: route.json, headers: as(who) });
    const anonymous = await call(undefined);
    t.is(anonymous.status, 401);
    t.deepEqual(Object.keys(anonymous.json()), ['status', 'message']);
    t.is((await call('other')).status, 403);
    if (route.admin) t.is((await call('target')).status, 403, 'the user themselves is not enough');
    if (route.method === 'PATCH' || route.method === 'DELETE' || route.path.endsWith('/progress')) {
      if (!hub.store.getCluster('target')) await hub.manager.launch('target', 1).done;
    }
    const allowed = await call('teacher');
    t.true(allowed.status < 400, `admin got ${allowed.status}: ${allowed.text.slice(0, 200)}`);
    if (route.method === 'POST' && route.path.endsWith('/cluster')) await hub.manager.stop('target', { actor: 'test' });
    // A reset signs the student out everywhere: the next routes need a new token.
    if (route.path.endsWith('/reset')) tokens.target = hub.token('target');
  });
}

test.serial('GET /hub/api/user: anonymous 401, anyone signed in sees themselves', async (t) => {
  t.is((await api.get('/hub/api/user')).status, 401);
  const me = await api.get('/hub/api/user', { headers: as('student') });
  t.like(me.json<Record<string, unknown>>(), { name: 'student', admin: false, scopes: ['user'] });
});

test.serial('tokens: create for yourself, not for others unless admin; delete only your own', async (t) => {
  t.is((await api.post('/hub/api/tokens', { json: {} })).status, 401);
  const own = await api.post('/hub/api/tokens', { json: { note: 'mine' }, headers: as('student') });
  t.is(own.status, 201);
  const created = own.json<{ id: string; token: string; scopes: string[] }>();
  t.regex(created.token, /^chub_/);
  t.deepEqual(created.scopes, ['user']);
  t.is((await api.get('/hub/api/user', { headers: { Authorization: `token ${created.token}` } })).status, 200);
  t.is((await api.post('/hub/api/tokens', { json: { owner: 'other' }, headers: as('student') })).status, 403);
  t.is((await api.post('/hub/api/tokens', { json: { scopes: ['admin'] }, headers: as('student') })).status, 422);
  t.is((await api.post('/hub/api/tokens', { json: { owner: 'other' }, headers: as('teacher') })).status, 201);
  t.is((await api.request(`/hub/api/tokens/${created.id}`, { method: 'DELETE', headers: as('other') })).status, 404);
  const listed = await api.get('/hub/api/tokens', { headers: as('student') });
  t.false(listed.text.includes(created.token), 'secrets are never listed');
  t.is((await api.request(`/hub/api/tokens/${created.id}`, { method: 'DELETE', headers: as('student') })).status, 204);
  // A revoked token is refused as JupyterHub refuses a bad token: 403.
  t.is((await api.get('/hub/api/user', { headers: { Authorization: `token ${created.token}` } })).status, 403);
});

test.serial('DELETE /hub/api/users/{name}: admin only; stops and forgets', async (t) => {
  hub.store.upsertUser({ login: 'leaver' });
  await hub.manager.launch('leaver', 1).done;
  t.is((await api.request('/hub/api/users/leaver', { method: 'DELETE' })).status, 401);
  t.is((await api.request('/hub/api/users/leaver', { method: 'DELETE', headers: as('other') })).status, 403);
  t.is((await api.request('/hub/api/users/leaver', { method: 'DELETE', headers: as('teacher') })).status, 204);
  t.is(hub.store.getUser('leaver'), undefined);
  t.false(backend.clusters.has('leaver'));
  t.false('/user/leaver' in await hub.proxy.getRoutes());
});

test.serial('bad input gets a clear 4xx with {status, message} and changes nothing', async (t) => {
  const cases: Array<{ what: string; method: string; path: string; body?: string; json?: unknown; status: number; message: RegExp }> = [
    { what: 'malformed JSON', method: 'POST', path: '/hub/api/users/student/cluster', body: '{"workers": ', status: 400, message: /Malformed/ },
    { what: 'unknown field', method: 'POST', path: '/hub/api/users/student/cluster', json: { workers: 1, gpus: 2 }, status: 400, message: /unknown field: gpus/ },
    { what: 'workers out of range', method: 'POST', path: '/hub/api/users/student/cluster', json: { workers: 5 }, status: 422, message: /workers must be an integer from 0 to 4, got 5/ },
    { what: 'workers not a number', method: 'POST', path: '/hub/api/users/student/cluster', json: { workers: 'many' }, status: 422, message: /workers/ },
    { what: 'workers not whole', method: 'POST', path: '/hub/api/users/student/cluster', json: { workers: 1.5 }, status: 422, message: /workers must be an integer from 0 to 4, got 1.5/ },
    { what: 'scale to fewer than none', method: 'PATCH', path: '/hub/api/users/student/cluster', json: { workers: -1 }, status: 422, message: /workers must be an integer from 0 to 4, got -1/ },
    { what: 'a body that is not an object', method: 'POST', path: '/hub/api/users/student/cluster', json: [1], status: 400, message: /JSON object/ },
    { what: 'unknown user', method: 'POST', path: '/hub/api/users/nobody/cluster', json: {}, status: 404, message: /No such user: nobody/ },
    { what: 'scale without a cluster', method: 'PATCH', path: '/hub/api/users/student/cluster', json: { workers: 2 }, status: 409, message: /no running cluster/ },
    { what: 'scale missing workers', method: 'PATCH', path: '/hub/api/users/student/cluster', json: {}, status: 422, message: /workers/ },
    { what: 'stop without a cluster', method: 'DELETE', path: '/hub/api/users/student/cluster', status: 404, message: /has no cluster/ },
    { what: 'unknown route', method: 'GET', path: '/hub/api/nothing-here', status: 404, message: /Not found/ },
  ];
  for (const c of cases) {
    const res = c.body === undefined
      ? await api.request(c.path, { method: c.method, json: c.json, headers: as('teacher') })
      : await fetch(new URL(c.path, hub.publicUrl), { method: c.method, body: c.body, headers: { ...as('teacher'), 'Content-Type': 'application/json' } });
    const text = await ('text' in res && typeof res.text === 'string' ? res.text : (res as Response).text());
    t.is(res.status, c.status, `${c.what}: ${text}`);
    const body = JSON.parse(text) as { status: number; message: string };
    t.is(body.status, c.status, c.what);
    t.regex(body.message, c.message, c.what);
  }
  t.is(hub.store.getCluster('student'), undefined, 'nothing was launched');
  t.false(backend.clusters.has('student'));
});

test.serial('cookie-authenticated API calls need the CSRF token; token-authenticated ones do not', async (t) => {
  const browser = await hub.signIn('student');
  const noCsrf = await browser.post('/hub/api/users/student/cluster', { json: {} });
  t.is(noCsrf.status, 403);
  t.regex(noCsrf.json<{ message: string }>().message, /CSRF/);
  t.is(hub.store.getCluster('student'), undefined);
});

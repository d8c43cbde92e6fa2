/**
 * The JupyterHub-compatible REST subset as JupyterHub's own clients see it: wire shapes,
 * state filters and pagination, server start/stop/progress, roster and token routes, and
 * the real `HubAuth` from PyPI plus a pagination script walking 1,000 users. Real HTTP through
 * the real proxy; clusters from the echo backend (their start is not what is tested here).
 */
import test from 'ava';
import { EchoBackend } from './helpers/echo-backend.ts';
import { startTestHub, type TestHub } from './helpers/hub.ts';
import { apiAs } from './helpers/hub-api.ts';
import { runPython } from './python/clients.ts';

let hub: TestHub;
let backend: EchoBackend;
const tokens: Record<string, string> = {};

test.before(async () => {
  backend = new EchoBackend();
  hub = await startTestHub({ backend, config: { spawn: { maxWorkers: 4, defaultWorkers: 1 } } });
  for (const login of ['teacher', 'ann', 'bob']) tokens[login] = hub.token(login);
});
test.after.always(() => hub?.destroy());

const api = (as: string, path: string, init: { method?: string; json?: unknown } = {}) => apiAs(hub, tokens[as]!, path, init);
const json = async <T = Record<string, unknown>>(res: Response): Promise<T> => (await res.json()) as T;
type Model = { name: string; admin: boolean; server: string | null; pending: string | null; servers: Record<string, Record<string, unknown>>; last_activity: string | null };

test.serial('GET /hub/api/ answers the version without credentials; /info is for admins', async (t) => {
  const root = await fetch(`${hub.publicUrl}/hub/api/`);
  t.is(root.status, 200);
  const body = await json<{ version: string }>(root);
  t.regex(body.version, /^5\.\d+\.\d+$/);
  t.is((await fetch(`${hub.publicUrl}/hub/api/info`)).status, 401);
  t.is((await api('ann', '/hub/api/info')).status, 403);
  const info = await json(await api('teacher', '/hub/api/info'));
  t.like(info, { version: body.version, spawner: { class: 'clusterhub.backends.echo' } });
});

test.serial('a bad token gets 403, as JupyterHub answers; no credentials 401', async (t) => {
  for (const path of ['/hub/api/user', '/hub/api/users', '/hub/api/users/ann']) {
    const bad = await fetch(`${hub.publicUrl}${path}`, { headers: { Authorization: 'token chub_not-a-real-token' } });
    t.is(bad.status, 403, path);
    t.deepEqual(Object.keys(await json(bad)), ['status', 'message']);
  }
  t.is((await fetch(`${hub.publicUrl}/hub/api/user`)).status, 401);
});

test.serial('HubAuth from PyPI identifies a user by token and refuses a bad one', async (t) => {
  const script = `
import json, os
from jupyterhub.services.auth import HubAuth
auth = HubAuth(api_url=os.environ["HUB_API"], api_token=os.environ["SERVICE_TOKEN"], cache_max_age=0)
good = auth.user_for_token(os.environ["USER_TOKEN"], use_cache=False)
bad = auth.user_for_token("chub_forged", use_cache=False)
print(json.dumps({"good": good and good["name"], "admin": good and good["admin"], "bad": bad}))
`;
  const run = await runPython(script, { HUB_API: `${hub.publicUrl}/hub/api`, SERVICE_TOKEN: tokens.teacher!, USER_TOKEN: tokens.ann! });
  t.is(run.code, 0, run.stderr);
  t.deepEqual(JSON.parse(run.stdout.trim()), { good: 'ann', admin: false, bad: null });
});

test.serial('the user model carries servers, server and pending; start 202, progress, stop 204', async (t) => {
  const stopped = await json<Model>(await api('ann', '/hub/api/users/ann'));
  t.like(stopped, { name: 'ann', server: null, pending: null });
  t.deepEqual(stopped.servers, {});
  const withStopped = await json<Model>(await api('ann', '/hub/api/users/ann?include_stopped_servers'));
  t.like(withStopped.servers[''], { name: '', ready: false, stopped: true, pending: null, url: '/user/ann/' });

  let release!: () => void;
  backend.hold = new Promise((resolve) => { release = resolve; });
  const start = await api('ann', '/hub/api/users/ann/server', { method: 'POST', json: { workers: 2 } });
  t.is(start.status, 202);
  const pending = await json<Model>(await api('ann', '/hub/api/users/ann'));
  t.like(pending, { server: null, pending: 'spawn' });
  t.like(pending.servers[''], { pending: 'spawn', ready: false, user_options: { workers: 2 }, progress_url: '/hub/api/users/ann/server/progress' });
  t.is((await api('ann', '/hub/api/users/ann/server', { method: 'POST', json: {} })).status, 202, 'a second start joins the pending one');

  // The stream stays open with blank-line keepalives while the launch waits.
  const progress = await fetch(`${hub.publicUrl}/hub/api/users/ann/server/progress`, { headers: { Authorization: `token ${tokens.ann}` } });
  t.regex(progress.headers.get('content-type') ?? '', /^text\/event-stream/);
  const reader = progress.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  const started = Date.now();
  while (!/data: .*\n\n\n\n/.test(text)) text += (await reader.read()).value ?? '';
  t.true(Date.now() - started >= 7_000, 'a keepalive came after JupyterHub\'s 8 s interval, with no step in between');
  release();
  backend.hold = undefined;
  while (!text.includes('"ready"')) {
    const chunk = await reader.read();
    if (chunk.done) break;
    text += chunk.value;
  }
  const events = text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)) as Record<string, unknown>);
  t.true(events.slice(0, -1).every((e) => typeof e.progress === 'number' && typeof e.message === 'string' && !('ready' in e)));
  t.deepEqual(events.at(-1), { progress: 100, ready: true, message: 'Server ready at /user/ann/', html_message: 'Server ready at <a href="/user/ann/">/user/ann/</a>', url: '/user/ann/' });

  const ready = await json<Model>(await api('ann', '/hub/api/users/ann'));
  t.like(ready, { server: '/user/ann/', pending: null });
  t.like(ready.servers[''], { ready: true, stopped: false, pending: null, url: '/user/ann/', full_url: `${hub.publicUrl}/user/ann/` });
  t.is((await api('ann', '/hub/api/users/ann/server', { method: 'POST', json: {} })).status, 400, 'already running');
  t.is((await api('ann', '/hub/api/users/ann/server', { method: 'DELETE', json: { remove: true } })).status, 400, 'the default server cannot be removed');
  t.is((await api('ann', '/hub/api/users/ann/server', { method: 'DELETE' })).status, 204);
  t.false(backend.clusters.has('ann'));
  t.is((await api('ann', '/hub/api/users/ann/server', { method: 'DELETE' })).status, 204, 'stopping a stopped server is done already');
  t.is((await api('ann', '/hub/api/users/ann/server/progress')).status, 400, 'no launch to follow');
});

test.serial('user_options are {workers}: anything else is a 400, a bad count a 422', async (t) => {
  const unknown = await api('bob', '/hub/api/users/bob/server', { method: 'POST', json: { profile: 'gpu' } });
  t.is(unknown.status, 400);
  t.regex((await json<{ message: string }>(unknown)).message, /unknown field: profile/);
  t.is((await api('bob', '/hub/api/users/bob/server', { method: 'POST', json: { workers: 9 } })).status, 422);
  t.is(hub.store.getCluster('bob'), undefined);
});

test.serial('a failed launch streams JupyterHub\'s failed event', async (t) => {
  backend.failNext = 'no capacity left';
  t.is((await api('bob', '/hub/api/users/bob/server', { method: 'POST', json: {} })).status, 202);
  for await (const e of hub.manager.progress('bob')) if (e.failed) break;
  const res = await api('bob', '/hub/api/users/bob/server/progress');
  const last = (await res.text()).split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6))).at(-1);
  t.deepEqual(last, { progress: 100, failed: true, message: 'Spawn failed: no capacity left' });
});

test.serial('state, sort and name filters; unknown parameters and states are a 400', async (t) => {
  await hub.manager.launch('bob', 1).done;
  const names = async (query: string) => (await json<Model[]>(await api('teacher', `/hub/api/users${query}`))).map((u) => u.name);
  t.deepEqual(await names('?state=ready'), ['bob']);
  t.deepEqual(await names('?state=active'), ['bob']);
  t.deepEqual((await names('?state=inactive')).sort(), ['ann', 'teacher']);
  t.deepEqual(await names('?sort=-name&name_filter=N'), ['ann']);
  for (const query of ['?state=running', '?stat=active', '?offset=-1', '?limit=many', '?state=ready&state=active']) {
    const res = await api('teacher', `/hub/api/users${query}`);
    t.is(res.status, 400, query);
  }
  t.is((await api('teacher', '/hub/api/users/bob?verbose=1')).status, 400);
  await hub.manager.stop('bob', { actor: 'test' });
});

test.serial('roster: POST /users, POST /users/{name}, PATCH admin; tokens under /users/{name}/tokens', async (t) => {
  const created = await api('teacher', '/hub/api/users', { method: 'POST', json: { usernames: ['cy', 'dee'] } });
  t.is(created.status, 201);
  t.deepEqual((await json<Model[]>(created)).map((u) => [u.name, u.admin]), [['cy', false], ['dee', false]]);
  t.is((await api('teacher', '/hub/api/users', { method: 'POST', json: { usernames: ['cy'] } })).status, 409);
  t.is((await api('teacher', '/hub/api/users', { method: 'POST', json: { usernames: ['not a login'] } })).status, 400);
  t.is((await api('ann', '/hub/api/users', { method: 'POST', json: { usernames: ['eve'] } })).status, 403);
  t.is((await api('teacher', '/hub/api/users/eli', { method: 'POST', json: { admin: true } })).status, 201);
  t.true(hub.store.getUser('eli')!.admin);
  t.like(await json(await api('teacher', '/hub/api/users/eli', { method: 'PATCH', json: { admin: false } })), { admin: false });
  t.is((await api('teacher', '/hub/api/users/teacher', { method: 'PATCH', json: { admin: false } })).status, 409, 'auth.admins stay admins');
  t.is((await api('teacher', '/hub/api/users/cy', { method: 'PATCH', json: { groups: [] } })).status, 400);

  const made = await api('ann', '/hub/api/users/ann/tokens', { method: 'POST', json: { note: 'grading' } });
  t.is(made.status, 201);
  const token = await json<{ id: string; token: string; user: string; kind: string; scopes: string[] }>(made);
  t.like(token, { user: 'ann', kind: 'api_token', scopes: ['user'] });
  t.is((await api('ann', '/hub/api/users/ann/tokens', { method: 'POST', json: { scopes: ['admin'] } })).status, 403, 'no more than the caller has');
  t.is((await api('bob', '/hub/api/users/ann/tokens')).status, 403);
  const short = await json<{ token: string }>(await api('ann', '/hub/api/users/ann/tokens', { method: 'POST', json: { expires_in: 60 } }));
  t.is((await apiAs(hub, short.token, '/hub/api/users/ann/tokens', { method: 'POST', json: {} })).status, 422, 'a token never makes one that outlives it');
  const listed = await json<{ api_tokens: Array<{ id: string }> }>(await api('ann', '/hub/api/users/ann/tokens'));
  t.true(listed.api_tokens.some((x) => x.id === token.id));
  t.false(JSON.stringify(listed).includes(token.token));
  t.is((await apiAs(hub, token.token, '/hub/api/user')).status, 200);
  t.is((await api('ann', `/hub/api/users/ann/tokens/${token.id}`, { method: 'DELETE' })).status, 204);
  t.is((await apiAs(hub, token.token, '/hub/api/user')).status, 403);
});

test.serial('a script following JupyterHub\'s documented pagination walks 1,000 users', async (t) => {
  const usernames = Array.from({ length: 1000 - hub.store.listUsers().length }, (_, i) => `student-${String(i).padStart(4, '0')}`);
  t.is((await api('teacher', '/hub/api/users', { method: 'POST', json: { usernames } })).status, 201);
  const script = `
import json, os, requests
url = os.environ["HUB_API"] + "/users"
headers = {"Authorization": "token " + os.environ["TOKEN"], "Accept": "application/jupyterhub-pagination+json"}
names, pages = [], 0
while url:
    r = requests.get(url, headers=headers, params={"limit": 200} if pages == 0 else None)
    r.raise_for_status()
    page = r.json()
    pages += 1
    names.extend(u["name"] for u in page["items"])
    url = page["_pagination"]["next"]["url"] if page["_pagination"]["next"] else None
print(json.dumps({"pages": pages, "count": len(names), "unique": len(set(names)), "total": page["_pagination"]["total"]}))
`;
  const run = await runPython(script, { HUB_API: `${hub.publicUrl}/hub/api`, TOKEN: tokens.teacher! });
  t.is(run.code, 0, run.stderr);
  t.deepEqual(JSON.parse(run.stdout.trim()), { pages: 5, count: 1000, unique: 1000, total: 1000 });
  const plain = await json<Model[]>(await api('teacher', '/hub/api/users'));
  t.is(plain.length, 200, 'without the pagination header the list stops at JupyterHub\'s page maximum');
});

test.serial('a page of users reads the store once, not once per user', async (t) => {
  const calls: string[] = [];
  const store = hub.store as unknown as Record<string, (...args: unknown[]) => unknown>;
  const originals = new Map<string, (...args: unknown[]) => unknown>();
  for (const name of ['getUser', 'getCluster', 'listEvents', 'userListing', 'userPage', 'listClusters', 'listUsers']) {
    const original = store[name]!;
    originals.set(name, original);
    store[name] = (...args: unknown[]) => {
      calls.push(name);
      return original(...args);
    };
  }
  try {
    const res = await api('teacher', '/hub/api/users?limit=200&offset=400');
    t.is((await json<Model[]>(res)).length, 200);
  } finally {
    for (const [name, original] of originals) store[name] = original;
  }
  // Authentication reads the token's owner; the list itself is one page query.
  t.deepEqual(calls.filter((c) => c !== 'getUser'), ['userPage']);
  t.true(calls.filter((c) => c === 'getUser').length <= 1, calls.join(', '));
});

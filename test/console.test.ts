/**
 * The instructor's console as a person without JavaScript uses it, and its API: adding
 * students and instructors, removing them, the event log, the CSV export, confirmations
 * that say what will be lost, and a class of 300 paged, sorted and filtered by the server.
 * Clusters from the echo backend.
 */
import test from 'ava';
import { EchoBackend } from './helpers/echo-backend.ts';
import { startTestHub, type TestHub } from './helpers/hub.ts';
import { apiAs } from './helpers/hub-api.ts';
import { hiddenField, type HttpClient } from './helpers/http.ts';

let hub: TestHub;
let backend: EchoBackend;
let teacher: HttpClient;

test.before(async () => {
  backend = new EchoBackend();
  hub = await startTestHub({ backend, config: { spawn: { maxWorkers: 4, defaultWorkers: 1 } } });
  teacher = await hub.signIn('teacher');
});
test.after.always(() => hub?.destroy());

/** Submits a form from `page` as `client` would (with the page's CSRF token). */
async function submit(client: HttpClient, page: string, action: string, fields: Record<string, string> = {}) {
  const csrf = hiddenField((await client.get(page)).text, '_csrf');
  if (!csrf) throw new Error(`no CSRF token on ${page}`);
  return client.post(action, { form: { ...fields, _csrf: csrf } });
}
const flash = async (res: { location?: string }) => decodeURIComponent(new URL(res.location!).searchParams.get('done') ?? '');

test.serial('add one student, then a pasted list; a bad login adds nobody', async (t) => {
  const one = await submit(teacher, '/hub/admin', '/hub/admin/users', { logins: 'ann' });
  t.is(one.status, 303);
  t.is(await flash(one), 'added 1 student: ann');
  const list = await submit(teacher, '/hub/admin', '/hub/admin/users', { logins: 'ben, @cat\ndan ann\n\nBEN' });
  t.is(await flash(list), 'added 3 students: ben, cat, dan; already in the class: ann');
  t.like(hub.store.listEvents({ user: 'cat', limit: 1 })[0], { kind: 'user-added', actor: 'teacher' });
  const bad = await submit(teacher, '/hub/admin', '/hub/admin/users', { logins: 'eve\nnot/a/login' });
  t.is(bad.status, 400);
  t.regex(bad.text, /Not a GitHub login[^<]*not\/a\/login/);
  t.is(hub.store.getUser('eve'), undefined, 'nothing was added');
  const page = await teacher.get('/hub/admin');
  for (const login of ['ann', 'ben', 'cat', 'dan']) t.regex(page.text, new RegExp(`<tr data-user="${login}">`));
});

test.serial('make and unmake an instructor; auth.admins cannot be unmade in the console', async (t) => {
  t.is((await submit(teacher, '/hub/admin', '/hub/admin/users/ben/instructor')).status, 303);
  const ben = await hub.signIn('ben');
  t.is((await ben.get('/hub/admin')).status, 200, 'a new instructor reaches the console');
  t.regex((await teacher.get('/hub/admin')).text, /<tr data-user="ben">\s*<td>ben <small class="instructor">\(instructor\)<\/small>/);
  t.is((await submit(ben, '/hub/admin', '/hub/admin/users/teacher/uninstructor')).status, 409);
  t.is((await submit(teacher, '/hub/admin', '/hub/admin/users/ben/uninstructor')).status, 303);
  t.is((await ben.get('/hub/admin')).status, 403);
  t.deepEqual(hub.store.listEvents({ user: 'ben' }).map((e) => e.kind).filter((k) => k.startsWith('instructor')), ['instructor-removed', 'instructor-added']);
});

test.serial('Reset, Remove and Stop all ask first and say what will be lost', async (t) => {
  await hub.manager.launch('ann', 2).done;
  const reset = await submit(teacher, '/hub/admin', '/hub/admin/users/ann/reset');
  t.is(reset.status, 303, 'a reset without confirmation goes to the confirmation');
  t.true(backend.clusters.has('ann'), 'and changes nothing');
  const confirm = await teacher.follow(reset);
  t.regex(confirm.text, /Reset ann\?/);
  t.regex(confirm.text, /ann&#39;s cluster stops: running work is lost/);
  t.regex(confirm.text, /ann&#39;s workspace is deleted: every notebook and file in it/);
  t.is((await submit(teacher, confirm.url, '/hub/admin/users/ann/reset', { confirm: 'yes' })).status, 303);
  t.false(backend.clusters.has('ann'));
  t.is(hub.store.listEvents({ user: 'ann', limit: 1 })[0]?.kind, 'reset');

  const remove = await teacher.get('/hub/admin/confirm?action=remove&user=dan');
  t.regex(remove.text, /dan&#39;s API tokens stop working/);
  t.is((await submit(teacher, '/hub/admin', '/hub/admin/users/dan/remove')).status, 303);
  t.truthy(hub.store.getUser('dan'), 'not removed without confirmation');
  t.is((await submit(teacher, remove.url, '/hub/admin/users/dan/remove', { confirm: 'yes' })).status, 303);
  t.is(hub.store.getUser('dan'), undefined);

  await hub.manager.launch('cat', 1).done;
  const stopAll = await teacher.get('/hub/admin/confirm?action=stop-all');
  t.regex(stopAll.text, /Stop all 1 cluster\?[\s\S]*running computation and unsaved notebook state of cat is lost/);
  t.is((await submit(teacher, '/hub/admin', '/hub/admin/stop-all')).status, 303);
  t.true(backend.clusters.has('cat'));
  t.is((await submit(teacher, stopAll.url, '/hub/admin/stop-all', { confirm: 'yes' })).status, 303);
  t.is(backend.clusters.size, 0);
  t.is((await teacher.get('/hub/admin/confirm?action=explode')).status, 400);
});

test.serial('the event log: who did what to whom and when, filtered by student and kind, paged', async (t) => {
  const log = await teacher.get('/hub/admin/events?user=ann');
  t.is(log.status, 200);
  t.regex(log.text, /<tr data-kind="reset">[\s\S]*?<td>ann<\/a>|data-kind="reset"/);
  t.regex(log.text, /<td>reset<\/td><td>teacher<\/td><td>reset by teacher<\/td>/);
  t.regex(log.text, /<td>added to the class<\/td><td>teacher<\/td>/);
  t.notRegex(log.text, /data-kind="[^"]*">[\s\S]{0,120}>cat</, 'only ann');
  const kinds = await teacher.get('/hub/admin/events?kind=sign-in');
  t.regex(kinds.text, /signed in<\/td><td>ben<\/td><td>via dev-login/);
  t.notRegex(kinds.text, /data-kind="(?!sign-in)/);
  t.is((await teacher.get('/hub/admin/events?kind=nonsense')).status, 400);
  for (let i = 0; i < 60; i++) hub.store.addEvent({ actor: 'hub', user: 'cat', kind: 'scale', detail: { from: 1, to: 2 } });
  const first = await teacher.get('/hub/admin/events?user=cat&kind=scale');
  t.regex(first.text, /Page 1 of 2 \(60 events\)/);
  t.regex(first.text, /<a rel="next" href="\/hub\/admin\/events\?user=cat&amp;kind=scale&amp;page=2">Older<\/a>/);

  const api = await apiAs(hub, hub.token('teacher'), '/hub/api/events?user=cat&kind=scale&limit=50');
  const body = (await api.json()) as { items: Array<{ kind: string; user: string; actor: string; time: string }>; _pagination: { total: number; next: { offset: number } | null } };
  t.is(body.items.length, 50);
  t.like(body._pagination, { total: 60, next: { offset: 50 } });
  t.like(body.items[0], { kind: 'scale', user: 'cat', actor: 'hub' });
  t.is((await apiAs(hub, hub.token('teacher'), '/hub/api/events?student=cat')).status, 400);
  t.is((await apiAs(hub, hub.token('ann'), '/hub/api/events')).status, 403);
});

test.serial('CSV export from the page and the API', async (t) => {
  await hub.manager.launch('cat', 3).done;
  hub.store.addEvent({ actor: 'culler', user: 'ben', kind: 'culled', detail: { reason: 'idle 61 minutes' } });
  const page = await teacher.get('/hub/admin/users.csv');
  t.is(page.status, 200);
  t.regex(page.headers.get('content-type') ?? '', /^text\/csv/);
  t.regex(page.headers.get('content-disposition') ?? '', /attachment; filename="clusterhub-class-\d{4}-\d\d-\d\d\.csv"/);
  const lines = page.text.trim().split('\n');
  t.is(lines[0], 'login,instructor,cluster state,workers,launched,last activity,culls');
  t.regex(lines.find((l) => l.startsWith('cat,'))!, /^cat,no,running,3,\d{4}-\d\d-\d\dT[^,]+,[^,]*,0$/);
  t.regex(lines.find((l) => l.startsWith('ben,'))!, /^ben,no,stopped,,,[^,]*,1$/);
  t.regex(lines.find((l) => l.startsWith('teacher,'))!, /^teacher,yes,/);
  const api = await apiAs(hub, hub.token('teacher'), '/hub/api/users.csv');
  t.is((await api.text()).trim().split('\n').length, lines.length);
  t.is((await apiAs(hub, hub.token('ann'), '/hub/api/users.csv')).status, 403);
  await hub.manager.stop('cat', { actor: 'test' });
});

test.serial('a class of 300: the server pages, sorts and filters', async (t) => {
  const usernames = Array.from({ length: 300 - hub.store.listUsers().length }, (_, i) => `s${String(i).padStart(3, '0')}`);
  t.is((await apiAs(hub, hub.token('teacher'), '/hub/api/users', { method: 'POST', json: { usernames } })).status, 201);
  for (let i = 0; i < 3; i++) hub.store.addEvent({ actor: 'culler', user: 's123', kind: 'culled' });
  const started = performance.now();
  const second = await teacher.get('/hub/admin?page=2');
  const ms = performance.now() - started;
  t.log(`page 2 of 300 users rendered in ${ms.toFixed(0)} ms`);
  t.regex(second.text, /Page 2 of 6 \(300 matches\)/);
  t.is(second.text.match(/<tr data-user=/g)?.length, 50);
  const byCulls = await teacher.get('/hub/admin?sort=culls&dir=desc');
  t.regex(byCulls.text, /<tbody><tr data-user="s123">/);
  t.regex(byCulls.text, /<th aria-sort="descending"><a href="\/hub\/admin\?sort=culls">Culls ↓<\/a>/);
  const filtered = await teacher.get('/hub/admin?q=s12&state=inactive');
  t.regex(filtered.text, /Page 1 of 1 \(10 matches\)/);
  t.regex(filtered.text, /300 users, 0 clusters up/);
  t.is((await teacher.get('/hub/admin?sort=shoe-size')).status, 400);
  t.is((await teacher.get('/hub/admin?page=0')).status, 400);
  t.is((await teacher.get('/hub/admin?state=sleepy')).status, 400);
});

test.serial('console instructors survive a restart; a login taken out of auth.admins loses its rights', async (t) => {
  const stateDir = hub.config.hub.stateDir;
  hub.store.upsertUser({ login: 'ta', instructor: true, admin: true });
  await hub.close();
  hub = await startTestHub({ backend, stateDir, config: { auth: { admins: ['prof'] } } });
  t.false(hub.store.getUser('teacher')!.admin, 'no longer in auth.admins');
  t.true(hub.store.getUser('ta')!.admin, 'the console\'s instructor stays');
  const ta = await hub.signIn('ta');
  t.is((await ta.get('/hub/admin')).status, 200);
  const former = await hub.signIn('teacher');
  t.is((await former.get('/hub/admin')).status, 403);
});

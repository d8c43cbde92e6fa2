/**
 * The pages as a person without JavaScript uses them: forms with CSRF tokens, the home page's
 * states and notices, and the admin page's Stop, Scale, Reset and Stop all.
 */
import test from 'ava';
import { EchoBackend } from './helpers/echo-backend.ts';
import { startTestHub, type TestHub } from './helpers/hub.ts';
import { hiddenField, type HttpClient } from './helpers/http.ts';

let hub: TestHub;
let backend: EchoBackend;
test.before(async () => {
  backend = new EchoBackend();
  hub = await startTestHub({ backend, config: { spawn: { maxWorkers: 6 } } });
});
test.after.always(() => hub?.destroy());

async function form(client: HttpClient, page: string, action: string, fields: Record<string, string> = {}) {
  const html = (await client.get(page)).text;
  const csrf = hiddenField(html, '_csrf');
  if (!csrf) throw new Error(`no CSRF token on ${page}`);
  return client.post(action, { form: { ...fields, _csrf: csrf } });
}

test.serial('signed-out visitors are sent to sign in and come back afterwards', async (t) => {
  const visitor = hub.anonymous();
  const home = await visitor.get('/hub/home');
  t.is(home.status, 302);
  t.is(home.location, `${hub.publicUrl}/hub/login?next=%2Fhub%2Fhome`);
  const root = await visitor.get('/');
  t.is(root.location, `${hub.publicUrl}/hub/home`);
  const login = await visitor.follow(home);
  t.regex(login.text, /Development sign-in/);
});

test.serial('home: Launch and Stop work as plain forms', async (t) => {
  const sam = await hub.signIn('sam');
  const before = await sam.get('/hub/home');
  t.regex(before.text, /Status: <strong id="state">stopped<\/strong>/);
  t.regex(before.text, /<button class="primary" type="submit">Launch<\/button>/);
  t.is((await form(sam, '/hub/home', '/hub/spawn', { workers: '3' })).status, 303);
  for await (const e of hub.manager.progress('sam')) if (e.ready) break;
  const running = await sam.get('/hub/home');
  t.regex(running.text, /running with 3 workers/);
  t.regex(running.text, /href="\/hub\/open\/sam"/);
  t.regex(running.text, /href="\/user\/sam\/dask\/status"/);
  const open = await sam.get('/hub/open/sam');
  t.regex(open.location ?? '', /\/user\/sam\/lab\?token=[\w-]+$/);
  t.is((await form(sam, '/hub/home', '/hub/stop')).status, 303);
  const stopped = (await sam.get('/hub/home')).text;
  t.regex(stopped, /Status: <strong id="state">stopped/);
  t.regex(stopped, /<p id="files"><small>Your files are kept when the cluster stops or is culled/);
});

test.serial('a form without its CSRF token changes nothing', async (t) => {
  const sam = await hub.signIn('sam');
  const res = await sam.post('/hub/spawn', { form: { workers: '1' } });
  t.is(res.status, 403);
  t.is(hub.store.getCluster('sam'), undefined);
});

test.serial('a worker count out of range on the form is refused with its reason', async (t) => {
  const sam = await hub.signIn('sam');
  const res = await form(sam, '/hub/home', '/hub/spawn', { workers: '60' });
  t.is(res.status, 422);
  t.regex(res.text, /workers must be an integer from 0 to 6, got 60/);
  t.is(hub.store.getCluster('sam'), undefined);
});

test.serial('admin page: every user with state; Scale, Stop, Reset and Stop all', async (t) => {
  for (const login of ['ann', 'ben']) {
    hub.store.upsertUser({ login });
    await hub.manager.launch(login, 1).done;
  }
  const student = await hub.signIn('ann');
  t.is((await student.get('/hub/admin')).status, 403);

  const teacher = await hub.signIn('teacher');
  const page = await teacher.get('/hub/admin');
  t.is(page.status, 200);
  t.regex(page.text, /<tr data-user="ann">[\s\S]*?<td class="phase">running<\/td><td class="workers">1<\/td>/);

  t.is((await form(teacher, '/hub/admin', '/hub/admin/users/ann/scale', { workers: '4' })).status, 303);
  t.is(backend.clusters.get('ann')?.workers, 4);
  t.regex((await teacher.get('/hub/admin')).text, /<tr data-user="ann">[\s\S]*?<td class="workers">4<\/td>/);

  t.is((await form(teacher, '/hub/admin', '/hub/admin/users/ann/stop')).status, 303);
  t.false(backend.clusters.has('ann'));
  const annHome = await student.get('/hub/home');
  t.regex(annHome.text, /Your cluster was stopped by teacher/);

  t.is((await form(teacher, '/hub/admin', '/hub/admin/users/ann/reset', { confirm: 'yes' })).status, 303);
  t.is(hub.store.listEvents({ user: 'ann', limit: 1 })[0]?.kind, 'reset');

  t.is((await form(teacher, '/hub/admin', '/hub/admin/stop-all', { confirm: 'yes' })).status, 303);
  t.is(backend.clusters.size, 0);
  t.is(hub.store.listClusters().length, 0);
});

/**
 * Attacks on accounts, each refused: a token minting a stronger or longer-lived token, an
 * admin removed from the config keeping rights, a copied cookie outliving sign-out, reset
 * and delete leaving a student's sessions and tokens alive. Real HTTP through the real proxy.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EchoBackend } from './helpers/echo-backend.ts';
import { startTestHub, type TestHub } from './helpers/hub.ts';
import { hiddenField, type HttpClient } from './helpers/http.ts';

let hub: TestHub;

test.before(async () => {
  hub = await startTestHub({ backend: new EchoBackend() });
});
test.after.always(() => hub?.destroy());

const bearer = (token: string) => ({ Authorization: `token ${token}` });

/** The CSRF token of a signed-in client's home page. */
async function csrfOf(client: HttpClient): Promise<string> {
  const home = await client.get('/hub/home');
  const csrf = hiddenField(home.text, '_csrf');
  if (!csrf) throw new Error(`no CSRF token on /hub/home (${home.status})`);
  return csrf;
}

test.serial('a user-scoped token of an admin cannot mint an admin token', async (t) => {
  const teacher = await hub.signIn('teacher');
  const made = await teacher.post('/hub/api/tokens', { json: { scopes: ['user'] }, headers: { 'X-CSRF-Token': await csrfOf(teacher) } });
  t.is(made.status, 201);
  const userToken = made.json<{ token: string }>().token;
  const minted = await hub.anonymous().post('/hub/api/tokens', { json: { scopes: ['admin'] }, headers: bearer(userToken) });
  t.is(minted.status, 403, minted.text);
  t.regex(minted.json<{ message: string }>().message, /admin/);
  t.false(hub.store.listTokens('teacher').some((r) => r.scopes.includes('admin')));
});

test.serial('a token that expires cannot mint one that lives longer, or never expires', async (t) => {
  const short = hub.store.createToken('teacher', { scopes: ['user', 'admin'], expiresAt: new Date(Date.now() + 60_000) }).token;
  const forever = await hub.anonymous().post('/hub/api/tokens', { json: { scopes: ['user'] }, headers: bearer(short) });
  t.is(forever.status, 422, forever.text);
  const longer = await hub.anonymous().post('/hub/api/tokens', { json: { scopes: ['user'], expires_in: 3600 }, headers: bearer(short) });
  t.is(longer.status, 422, longer.text);
  const shorter = await hub.anonymous().post('/hub/api/tokens', { json: { scopes: ['user'], expires_in: 30 }, headers: bearer(short) });
  t.is(shorter.status, 201, shorter.text);
  t.truthy(shorter.json<{ expires_at: string | null }>().expires_at);
});

test.serial('expires_in out of range is a 422, not a 500', async (t) => {
  const token = hub.token('teacher');
  for (const expires_in of [8_640_000_000_000, 1e300, 0, -5, 1.5]) {
    const res = await hub.anonymous().post('/hub/api/tokens', { json: { expires_in }, headers: bearer(token) });
    t.is(res.status, 422, `expires_in ${expires_in}: ${res.text}`);
    t.deepEqual(Object.keys(res.json()), ['status', 'message']);
  }
});

test.serial('after sign-out a copied session cookie no longer works', async (t) => {
  const student = await hub.signIn('copycat');
  const copy = hub.anonymous();
  for (const c of student.cookiesFor(hub.publicUrl)) copy.setCookie(c.name, c.value);
  t.is((await copy.get('/hub/api/user')).status, 200, 'the copy works while the session lives');
  const out = await student.post('/hub/logout', { form: { _csrf: await csrfOf(student) } });
  t.is(out.status, 303);
  const after = await copy.get('/hub/api/user');
  t.is(after.status, 401, after.text);
  const mint = await copy.post('/hub/api/tokens', { json: {}, headers: { 'X-CSRF-Token': 'x' } });
  t.true(mint.status === 401 || mint.status === 403, `${mint.status}`);
});

test.serial('an instructor signs a student out everywhere: every session and token stops working', async (t) => {
  const laptop = await hub.signIn('roamer');
  const phone = await hub.signIn('roamer');
  const token = hub.token('roamer');
  const teacher = hub.token('teacher');
  t.is((await laptop.get('/hub/api/user')).status, 200);
  const res = await hub.anonymous().request('/hub/api/users/roamer/sessions', { method: 'DELETE', headers: bearer(teacher) });
  t.is(res.status, 204, res.text);
  t.is((await laptop.get('/hub/api/user')).status, 401);
  t.is((await phone.get('/hub/api/user')).status, 401);
  t.is((await hub.anonymous().get('/hub/api/user', { headers: bearer(token) })).status, 403, 'a revoked token is refused as JupyterHub refuses a bad one');
  const byStudent = await hub.anonymous().request('/hub/api/users/teacher/sessions', { method: 'DELETE', headers: bearer(hub.token('roamer')) });
  t.is(byStudent.status, 403, 'a student cannot sign others out');
});

test.serial('the admin page has a Sign out everywhere button that does it', async (t) => {
  const victim = await hub.signIn('pupil');
  const teacher = await hub.signIn('teacher');
  const page = await teacher.get('/hub/admin');
  t.regex(page.text, /action="\/hub\/admin\/users\/pupil\/signout"/);
  const res = await teacher.post('/hub/admin/users/pupil/signout', { form: { _csrf: hiddenField(page.text, '_csrf')! } });
  t.is(res.status, 303);
  t.is((await victim.get('/hub/api/user')).status, 401);
  t.is((await teacher.get('/hub/api/user')).status, 200, 'the instructor stays signed in');
});

test.serial('reset and delete of a user revoke their sessions and tokens', async (t) => {
  const teacher = hub.token('teacher');
  for (const [login, call] of [['resetme', { method: 'POST', path: '/hub/api/users/resetme/reset' }], ['deleteme', { method: 'DELETE', path: '/hub/api/users/deleteme' }]] as const) {
    const session = await hub.signIn(login);
    const token = hub.token(login);
    const res = await hub.anonymous().request(call.path, { method: call.method, headers: bearer(teacher) });
    t.true(res.status < 300, `${call.path}: ${res.status} ${res.text}`);
    t.is((await session.get('/hub/api/user')).status, 401, `${login}'s session ended`);
    t.is((await hub.anonymous().get('/hub/api/user', { headers: bearer(token) })).status, 403, `${login}'s token ended (403: a bad token, as JupyterHub answers)`);
  }
});

test('a login removed from auth.admins loses admin rights at the next start, for its cookie and its tokens', async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'clusterhub-admins-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const first = await startTestHub({ stateDir, backend: new EchoBackend(), config: { auth: { admins: ['formerta'] } } });
  const browser = await first.signIn('formerta');
  const token = first.token('formerta');
  t.is((await browser.get('/hub/api/users')).status, 200);
  const cookies = browser.cookiesFor(first.publicUrl);
  await first.destroy();

  const second = await startTestHub({ stateDir, backend: new EchoBackend(), config: { auth: { admins: ['teacher'] } } });
  t.teardown(() => second.destroy());
  const again = second.anonymous();
  for (const c of cookies) again.setCookie(c.name, c.value);
  t.is((await again.get('/hub/api/user')).status, 200, 'still signed in as a student');
  t.is((await again.get('/hub/api/users')).status, 403, 'the cookie lost admin rights');
  t.is((await second.anonymous().get('/hub/api/users', { headers: bearer(token) })).status, 403, 'the token lost admin rights');
  t.false(second.store.getUser('formerta')!.admin);
});

test.serial('a session key planted before sign-in is not the signed-in session (no fixation)', async (t) => {
  const attacker = hub.anonymous();
  const page = await attacker.get('/hub/login');
  const planted = attacker.cookiesFor(hub.publicUrl);
  t.true(planted.some((c) => c.name === 'clusterhub-session'), 'the sign-in page made a session');
  // The victim's browser carries the attacker's cookies (tossed from a sibling host) and signs in.
  const victim = hub.anonymous();
  for (const c of planted) victim.setCookie(c.name, c.value);
  const res = await victim.post('/hub/dev-login', { form: { name: 'victim', _csrf: hiddenField(page.text, '_csrf')! } });
  t.is(res.status, 303);
  t.is((await victim.get('/hub/api/user')).status, 200);
  t.is((await attacker.get('/hub/api/user')).status, 401, 'the planted key signs the attacker in as nobody');
});

/**
 * Sign-in end to end over real HTTP: a koa app with hub/auth, the SQLite store in memory,
 * and the GitHub emulator. A cookie-jar client plays the browser.
 */
import { bodyParser } from '@koa/bodyparser';
import test, { type ExecutionContext } from 'ava';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import Router from '@koa/router';
import { ConfigError, parseConfig } from '../config/load.ts';
import { configSchema, type ConfigInput } from '../config/schema.ts';
import { createAuth, csrfProtect, requireUser, type AuthUser } from '../hub/auth/index.ts';
import { errorHandler } from '../hub/errors.ts';
import { openStore } from '../hub/store/sqlite.ts';
import type { Store } from '../hub/store/types.ts';
import type { Logger, LogFn } from '../shared/log.ts';
import { startGitHubEmulator, type EmulatedUser, type GitHubEmulator } from './fixtures/github.ts';
import { HttpClient, hiddenField, type HttpResponse } from './helpers/http.ts';

const CLIENT_ID = 'Iv1.clusterhub-test';
const CLIENT_SECRET = 'test-client-secret-0123456789';
const COOKIE_SECRET = 'cookie-secret-for-tests-0123456789abcdef';

const USERS: EmulatedUser[] = [
  { login: 'alice', id: 1001, name: 'Alice' },
  { login: 'bob', id: 1002, orgs: ['physics'] },
  { login: 'carol', id: 1003, orgs: ['chemistry'] },
  { login: 'dave', id: 1004, teams: ['uni:ta'] },
  { login: 'erin', id: 1005, orgs: ['uni'] },
  { login: 'mallory', id: 1666 },
];

interface Hub {
  url: string;
  store: Store;
  github: GitHubEmulator | undefined;
  /** Every log line as JSON text. */
  logs: string[];
  browser(): HttpClient;
}

/** A logger that keeps every line, so tests can look for secrets in it. */
function recordingLogger(lines: string[]): Logger {
  const level = (name: string): LogFn => ((a: unknown, b?: unknown) => { lines.push(JSON.stringify({ level: name, a, b })); }) as LogFn;
  return { debug: level('debug'), info: level('info'), warn: level('warn'), error: level('error') };
}

/**
 * A hub with hub/auth and a few routes, on 127.0.0.1 and a free port. `github: true`
 * configures GitHub sign-in against a fresh emulator; otherwise the dev sign-in is on.
 */
async function startHub(t: ExecutionContext, options: { github?: boolean; auth?: ConfigInput['auth']; publicUrl?: string } = {}): Promise<Hub> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const github = options.github
    ? await startGitHubEmulator({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, users: USERS, callbackUrl: `${url}/hub/oauth_callback` })
    : undefined;
  const config = configSchema.parse({
    hub: { publicUrl: options.publicUrl ?? url },
    auth: {
      ...options.auth,
      ...(github && { github: { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, baseUrl: github.baseUrl, apiUrl: github.apiUrl } }),
    },
  });
  const store = openStore(':memory:');
  const logs: string[] = [];
  const log = recordingLogger(logs);

  const app = new Koa();
  const router = new Router();
  const auth = createAuth({ config, store, log, secrets: { cookieSecret: COOKIE_SECRET } });
  app.use(errorHandler(log));
  app.use(bodyParser({ enableTypes: ['json', 'form'] }));
  auth.install(app, router);
  router.get('/hub/home', requireUser({ loginRedirect: true }), (ctx) => {
    ctx.type = 'html';
    ctx.body = auth.page(ctx, { title: 'Home', body: '<p>Your cluster</p>' });
  });
  router.get('/hub/api/me', requireUser(), (ctx) => {
    ctx.body = ctx.state.user as AuthUser;
  });
  router.get('/hub/api/admin-only', requireUser({ admin: true }), (ctx) => {
    ctx.body = { ok: true };
  });
  router.post('/hub/api/ping', requireUser(), csrfProtect(), (ctx) => {
    ctx.body = { pong: (ctx.state.user as AuthUser).login };
  });
  app.use(router.routes());
  server.on('request', app.callback());

  t.teardown(async () => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    await github?.close();
    store.close();
  });
  return { url, store, github, logs, browser: () => new HttpClient(url) };
}

/**
 * The browser's GitHub round-trip: hub → GitHub authorize (approved as `login`) → hub
 * callback. `tamper` may rewrite the callback URL GitHub sends back. Returns the callback's answer.
 */
async function signInWithGitHub(browser: HttpClient, login: string, options: { next?: string; tamper?: (callback: URL) => void } = {}): Promise<HttpResponse> {
  const start = await browser.get(options.next === undefined ? '/hub/oauth_login' : `/hub/oauth_login?next=${encodeURIComponent(options.next)}`);
  if (start.status !== 302 || !start.location) throw new Error(`oauth_login answered ${start.status}`);
  const authorize = new URL(start.location);
  authorize.searchParams.set('login', login);
  const approved = await browser.get(authorize.href);
  if (approved.status !== 302 || !approved.location) throw new Error(`authorize answered ${approved.status}: ${approved.text}`);
  const callback = new URL(approved.location);
  options.tamper?.(callback);
  return browser.get(callback.href);
}

async function me(browser: HttpClient, headers?: Record<string, string>): Promise<HttpResponse> {
  return browser.get('/hub/api/me', { headers });
}

/** Sign in through the development form. */
async function devSignIn(browser: HttpClient, name: string): Promise<HttpResponse> {
  const page = await browser.get('/hub/login');
  return browser.post('/hub/dev-login', { form: { name, _csrf: hiddenField(page.text, '_csrf') ?? '' } });
}

test('a student signs in with GitHub, reaches a protected route, signs out and is refused after', async (t) => {
  const hub = await startHub(t, { github: true, auth: { allowedUsers: ['alice'] } });
  const browser = hub.browser();

  t.is((await me(browser)).status, 401);
  const home = await browser.get('/hub/home');
  t.is(home.status, 302);
  t.is(home.location, `${hub.url}/hub/login?next=%2Fhub%2Fhome`);

  const login = await browser.get('/hub/login');
  t.regex(login.text, /Sign in with GitHub/);
  t.notRegex(login.text, /Development sign-in/);

  const done = await signInWithGitHub(browser, 'alice');
  t.is(done.status, 303);
  t.is(done.location, `${hub.url}/hub/home`);

  const authorize = hub.github!.requests.find((r) => r.path === '/login/oauth/authorize')!;
  t.is(authorize.query.client_id, CLIENT_ID);
  t.is(authorize.query.redirect_uri, `${hub.url}/hub/oauth_callback`);
  t.is(authorize.query.scope, 'read:user');
  t.true((authorize.query.state ?? '').length >= 16, 'a state nonce is sent to GitHub');
  const profile = hub.github!.requests.find((r) => r.path === '/api/v3/user')!;
  t.regex(String(profile.headers.authorization), /^Bearer gho_/);

  const who = await me(browser);
  t.is(who.status, 200);
  t.deepEqual(who.json(), { login: 'alice', admin: false, via: 'session', scopes: ['all'] });
  const row = hub.store.getUser('alice')!;
  t.is(row.githubId, 1001);
  t.false(row.admin);
  t.truthy(row.lastSeen, 'last seen is recorded');

  const page = await browser.follow(done);
  t.is(page.status, 200);
  t.regex(page.text, /Your cluster/);
  t.regex(page.text, /alice/);
  t.notRegex(page.text, /href="\/hub\/admin"/, 'no Admin link for a student');

  const logoutPage = await browser.get('/hub/logout');
  t.is(logoutPage.status, 200);
  t.is((await me(browser)).status, 200, 'GET /hub/logout changes nothing');
  const out = await browser.post('/hub/logout', { form: { _csrf: hiddenField(logoutPage.text, '_csrf') ?? '' } });
  t.is(out.status, 303);
  t.is(out.location, `${hub.url}/hub/login`);
  const after = await me(browser);
  t.is(after.status, 401);
  t.deepEqual(after.json(), { status: 401, message: 'Sign in required.' });
});

test('a callback whose state does not match the session is refused and signs nobody in', async (t) => {
  const hub = await startHub(t, { github: true, auth: { allowAll: true } });
  const browser = hub.browser();
  const forged = await signInWithGitHub(browser, 'alice', { tamper: (cb) => cb.searchParams.set('state', 'forged-state') });
  t.is(forged.status, 403);
  t.regex(forged.text, /sign-in failed: state mismatch/);
  t.is((await me(browser)).status, 401);

  const missing = await signInWithGitHub(browser, 'alice', { tamper: (cb) => cb.searchParams.delete('state') });
  t.is(missing.status, 403);
  t.regex(missing.text, /state mismatch/);

  // Login CSRF: a victim's browser that never started sign-in is handed an attacker's code.
  const attacker = hub.browser();
  let stolen = '';
  const spent = await signInWithGitHub(attacker, 'mallory', { tamper: (cb) => { stolen = cb.href; cb.searchParams.set('code', 'spent'); } });
  t.is(spent.status, 502, 'a code GitHub does not know fails the token exchange');
  t.regex(spent.text, /GitHub did not answer as expected/);
  const victim = hub.browser();
  const planted = await victim.get(stolen);
  t.is(planted.status, 403);
  t.is((await me(victim)).status, 401);
  t.is(hub.store.getUser('mallory'), undefined);

  const noCode = await browser.get('/hub/oauth_callback?state=x');
  t.is(noCode.status, 400);
});

test('a user on no allow-list sees a clear 403 page and is neither signed in nor stored', async (t) => {
  const hub = await startHub(t, { github: true, auth: { allowedUsers: ['alice'], allowedOrgs: ['physics'] } });
  const browser = hub.browser();
  const refused = await signInWithGitHub(browser, 'mallory');
  t.is(refused.status, 403);
  t.regex(refused.headers.get('content-type') ?? '', /text\/html/);
  t.true(refused.text.includes('mallory is not on this hub&#39;s allow-list. Ask your instructor.'));
  t.is(hub.store.getUser('mallory'), undefined);
  t.is((await me(browser)).status, 401);
});

test('an org member is allowed after GitHub confirms the membership; read:org is asked for', async (t) => {
  const hub = await startHub(t, { github: true, auth: { allowedOrgs: ['physics'] } });
  const bob = hub.browser();
  t.is((await signInWithGitHub(bob, 'bob')).status, 303);
  t.is((await me(bob)).json<AuthUser>().login, 'bob');
  const authorize = hub.github!.requests.find((r) => r.path === '/login/oauth/authorize')!;
  t.is(authorize.query.scope, 'read:user,read:org');
  t.true(hub.github!.requests.some((r) => r.path === '/api/v3/orgs/physics/members/bob'));

  const carol = hub.browser();
  t.is((await signInWithGitHub(carol, 'carol')).status, 403, 'a member of another org is refused');
  t.is(hub.store.getUser('carol'), undefined);
});

test('a team member is allowed; an org member outside the team is not', async (t) => {
  const hub = await startHub(t, { github: true, auth: { allowedOrgs: ['uni:ta'] } });
  const dave = hub.browser();
  t.is((await signInWithGitHub(dave, 'dave')).status, 303);
  t.is((await me(dave)).status, 200);
  t.true(hub.github!.requests.some((r) => r.path === '/api/v3/orgs/uni/teams/ta/memberships/dave'));
  const erin = hub.browser();
  t.is((await signInWithGitHub(erin, 'erin')).status, 403);
});

test('admins from the config get the admin flag, and only they pass admin routes', async (t) => {
  const hub = await startHub(t, { github: true, auth: { admins: ['alice'], allowedUsers: ['bob'] } });
  const alice = hub.browser();
  await signInWithGitHub(alice, 'alice');
  t.true((await me(alice)).json<AuthUser>().admin);
  t.true(hub.store.getUser('alice')!.admin);
  t.is((await alice.get('/hub/api/admin-only')).status, 200);
  t.regex((await alice.get('/hub/home')).text, /href="\/hub\/admin"/);

  const bob = hub.browser();
  await signInWithGitHub(bob, 'bob');
  const denied = await bob.get('/hub/api/admin-only');
  t.is(denied.status, 403);
  t.deepEqual(denied.json(), { status: 403, message: 'Only admins may do this.' });
});

test('after sign-in the browser returns to a local next path, never to another site', async (t) => {
  const hub = await startHub(t, { github: true, auth: { allowAll: true } });
  const local = await signInWithGitHub(hub.browser(), 'alice', { next: '/user/alice/lab' });
  t.is(local.location, `${hub.url}/user/alice/lab`);
  const evil = await signInWithGitHub(hub.browser(), 'alice', { next: '//evil.example/' });
  t.is(evil.location, `${hub.url}/hub/home`);
});

test('the development sign-in works only when enabled, and shows its warning', async (t) => {
  const dev = await startHub(t);
  const browser = dev.browser();
  const page = await browser.get('/hub/login');
  t.regex(page.text, /Development sign-in: anyone can sign in as anyone; only on loopback/);
  t.notRegex(page.text, /Sign in with GitHub/);

  const noToken = await browser.post('/hub/dev-login', { form: { name: 'alice' } });
  t.is(noToken.status, 403, 'the form needs its CSRF token');
  const badName = await browser.post('/hub/dev-login', { form: { name: '<script>', _csrf: hiddenField(page.text, '_csrf')! } });
  t.is(badName.status, 400);
  t.notRegex(badName.text, /<script>/);
  const ok = await devSignIn(browser, 'alice');
  t.is(ok.status, 303);
  t.is(ok.location, `${dev.url}/hub/home`);
  t.deepEqual((await me(browser)).json(), { login: 'alice', admin: false, via: 'session', scopes: ['all'] });
  const home = await browser.get('/hub/home');
  t.regex(home.text, /Development sign-in: anyone can sign in as anyone/, 'every page shows the banner');

  const withGitHub = await startHub(t, { github: true, auth: { allowAll: true } });
  const other = withGitHub.browser();
  const login = await other.get('/hub/login');
  t.notRegex(login.text, /Development sign-in/);
  const refused = await other.post('/hub/dev-login', { form: { name: 'alice', _csrf: hiddenField(login.text, '_csrf')! } });
  t.is(refused.status, 404);

  const err = t.throws(() => parseConfig({ hub: { bind: '0.0.0.0' } }), { instanceOf: ConfigError });
  t.regex(err.message, /config key `hub\.bind`: is not a loopback address, but auth\.github is not set/);
});

test('the session cookie is HttpOnly, SameSite=Lax and signed: a tampered cookie signs nobody in', async (t) => {
  const hub = await startHub(t);
  const browser = hub.browser();
  const signedIn = await devSignIn(browser, 'alice');
  const header = signedIn.setCookies.find((c) => c.startsWith('clusterhub-session='))!;
  t.truthy(header);
  t.regex(header, /httponly/i);
  t.regex(header, /samesite=lax/i);
  t.notRegex(header, /secure/i, 'plain http public URL: no Secure flag');
  t.truthy(browser.cookie('clusterhub-session.sig'), 'the cookie carries a signature');
  t.is((await me(browser)).status, 200);

  // The cookie holds only a random key to a session kept on the server: nothing to edit in it.
  const value = browser.cookie('clusterhub-session')!.value;
  t.notRegex(Buffer.from(value, 'base64').toString('latin1'), /alice/);
  t.notRegex(value, /alice/);
  // Claim to be an existing admin with a forged session: only the signature can tell.
  hub.store.upsertUser({ login: 'root', admin: true });
  browser.setCookie('clusterhub-session', Buffer.from(JSON.stringify({ passport: { user: 'root' } })).toString('base64'));
  t.is((await me(browser)).status, 401);

  const https = await startHub(t, { publicUrl: 'https://hub.example.edu', github: true, auth: { allowAll: true } });
  const login = await https.browser().get('/hub/login');
  t.regex(login.setCookies.find((c) => c.startsWith('clusterhub-session='))!, /;\s*secure/i);
});

test('a cookie-authenticated POST needs the CSRF token; one from another session is refused', async (t) => {
  const hub = await startHub(t);
  const browser = hub.browser();
  await devSignIn(browser, 'alice');
  const csrf = hiddenField((await browser.get('/hub/logout')).text, '_csrf')!;

  const without = await browser.post('/hub/api/ping', { json: {} });
  t.is(without.status, 403);
  t.deepEqual(without.json(), { status: 403, message: 'Missing or invalid CSRF token: reload the page and try again.' });
  t.is((await browser.post('/hub/api/ping', { json: {}, headers: { 'X-CSRF-Token': csrf } })).status, 200);
  t.is((await browser.post('/hub/api/ping', { form: { _csrf: csrf } })).status, 200);

  const other = hub.browser();
  await devSignIn(other, 'bob');
  t.is((await other.post('/hub/api/ping', { json: {}, headers: { 'X-CSRF-Token': csrf } })).status, 403);
});

test('API tokens: token and Bearer schemes work, bad tokens are 401, admin needs the row and the scope', async (t) => {
  const hub = await startHub(t, { auth: { admins: ['alice'] } });
  const api = hub.browser();
  hub.store.upsertUser({ login: 'alice', admin: true });
  const { token: all } = hub.store.createToken('alice', { scopes: ['all'] });
  const { token: narrow } = hub.store.createToken('alice', { scopes: ['clusters'] });

  const byToken = await me(api, { Authorization: `token ${all}` });
  t.deepEqual(byToken.json(), { login: 'alice', admin: true, via: 'token', scopes: ['all'] });
  t.is((await me(api, { Authorization: `Bearer ${all}` })).status, 200);
  t.is((await api.post('/hub/api/ping', { json: {}, headers: { Authorization: `token ${all}` } })).status, 200, 'no CSRF token needed');
  t.false((await me(api, { Authorization: `token ${narrow}` })).json<AuthUser>().admin, 'no admin without the admin scope');

  const bad = await me(api, { Authorization: 'token not-a-real-token' });
  t.is(bad.status, 401);
  t.deepEqual(bad.json(), { status: 401, message: 'Invalid or expired API token.' });
  t.is((await me(api, { Authorization: 'Basic YWxpY2U6eA==' })).status, 401);

  t.is((await api.get('/hub/api/admin-only', { headers: { Authorization: `token ${narrow}` } })).status, 403);
  // Rights come from the config, not the stored flag (test/security-accounts.test.ts restarts without the admin).
  hub.store.upsertUser({ login: 'bob', admin: true });
  const { token: bobs } = hub.store.createToken('bob', { scopes: ['all'] });
  t.false((await me(api, { Authorization: `token ${bobs}` })).json<AuthUser>().admin, 'a stored flag alone gives no admin rights');
});

test('a request with a token is decided by the token alone: the browser\'s session is not read, and no session cookie is set', async (t) => {
  const hub = await startHub(t);
  const browser = hub.browser();
  await devSignIn(browser, 'alice');
  hub.store.upsertUser({ login: 'bob', admin: false });
  const { token } = hub.store.createToken('bob', { scopes: ['all'] });

  const byToken = await me(browser, { Authorization: `token ${token}` });
  t.like(byToken.json(), { login: 'bob', via: 'token' }, 'alice\'s cookie went along, the token decided');
  t.deepEqual(byToken.setCookies, []);
  // A page asked for with a token makes no session either.
  const page = await hub.browser().get('/hub/home', { headers: { Authorization: `token ${token}` } });
  t.is(page.status, 200);
  t.deepEqual(page.setCookies, []);
  // A bad token never falls back to the cookie, and the cookie still signs alice in on its own.
  t.is((await me(browser, { Authorization: 'token not-a-real-token' })).status, 401);
  t.like((await me(browser)).json(), { login: 'alice', via: 'session' });
});

test('the session of a user deleted from the store ends', async (t) => {
  const hub = await startHub(t);
  const browser = hub.browser();
  await devSignIn(browser, 'alice');
  t.is((await me(browser)).status, 200);
  hub.store.deleteUser('alice');
  t.is((await me(browser)).status, 401);
});

test('logs carry no access tokens, client or cookie secrets, or cookies', async (t) => {
  const hub = await startHub(t, { github: true, auth: { allowedOrgs: ['physics'] } });
  const bob = hub.browser();
  await signInWithGitHub(bob, 'bob');
  await signInWithGitHub(hub.browser(), 'mallory');
  await signInWithGitHub(hub.browser(), 'bob', { tamper: (cb) => cb.searchParams.set('state', 'x') });
  const text = hub.logs.join('\n');
  t.regex(text, /signed in/);
  t.regex(text, /refused sign-in/);
  t.notRegex(text, /gho_/);
  t.false(text.includes(CLIENT_SECRET));
  t.false(text.includes(COOKIE_SECRET));
  t.false(text.includes(bob.cookie('clusterhub-session')!.value));
});

test('the GitHub emulator answers the token endpoint in JSON or urlencoded, like GitHub', async (t) => {
  const github = await startGitHubEmulator({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, users: USERS });
  t.teardown(() => github.close());
  github.signInAs('alice');
  const code = async (): Promise<string> => {
    const res = await fetch(`${github.baseUrl}/login/oauth/authorize?client_id=${CLIENT_ID}&redirect_uri=http://127.0.0.1:1/cb&state=s1`, { redirect: 'manual' });
    const location = new URL(res.headers.get('location')!);
    t.is(location.searchParams.get('state'), 's1');
    return location.searchParams.get('code')!;
  };
  const form = await fetch(`${github.baseUrl}/login/oauth/access_token`, {
    method: 'POST', body: new URLSearchParams({ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, code: await code() }),
  });
  const fields = new URLSearchParams(await form.text());
  t.is(fields.get('token_type'), 'bearer');
  const json = await fetch(`${github.baseUrl}/login/oauth/access_token`, {
    method: 'POST', headers: { Accept: 'application/json', 'Content-Type': 'application/json' },
    body: JSON.stringify({ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, code: await code() }),
  });
  const token = (await json.json()) as { access_token: string };
  const user = await fetch(`${github.apiUrl}/user`, { headers: { Authorization: `token ${token.access_token}` } });
  t.like(await user.json(), { login: 'alice', id: 1001 });
  const wrongSecret = await fetch(`${github.baseUrl}/login/oauth/access_token`, {
    method: 'POST', headers: { Accept: 'application/json' }, body: new URLSearchParams({ client_id: CLIENT_ID, client_secret: 'nope', code: 'x' }),
  });
  t.like(await wrongSecret.json(), { error: 'incorrect_client_credentials' });
});

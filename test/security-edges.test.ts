/**
 * Attacks and bad input at the hub's edges, each refused: a dev sign-in forwarded from
 * elsewhere, pages without security headers, bodies in other formats or too big, odd
 * methods, malformed URLs on the public port, an instructor walking into a student's
 * JupyterLab unasked. Real HTTP through the real proxy; clusters from the echo backend.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseConfig } from '../config/load.ts';
import { startHub } from '../hub/main.ts';
import { createLogger } from '../hub/log.ts';
import { EchoBackend } from './helpers/echo-backend.ts';
import { startTestHub, type TestHub } from './helpers/hub.ts';
import { hiddenField } from './helpers/http.ts';
import { freePort } from './helpers/net.ts';

let hub: TestHub;
let logs = '';

test.before(async () => {
  const sink = new Writable({ write(chunk, _enc, done) { logs += chunk.toString(); done(); } });
  hub = await startTestHub({ backend: new EchoBackend(), log: createLogger('info', sink), config: { hub: { maxBodyBytes: 4096 } } });
});
test.after.always(() => hub?.destroy());

/** One raw HTTP request (fetch refuses TRACE and normalises some URLs). */
function raw(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path, headers: { ...headers, ...(body === undefined ? {} : { 'Content-Length': String(Buffer.byteLength(body)) }) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const errorLines = () => logs.trim().split('\n').filter((l) => l && JSON.parse(l).level >= 50);

test.serial('a dev sign-in forwarded by another proxy is refused; a direct one works', async (t) => {
  const page = await hub.anonymous().get('/hub/login');
  const csrf = hiddenField(page.text, '_csrf')!;
  const client = hub.anonymous();
  const form = await client.get('/hub/login');
  const forwarded: Array<Record<string, string>> = [{ 'X-Forwarded-For': '203.0.113.9' }, { Forwarded: 'for=203.0.113.9' }, { 'X-Real-IP': '203.0.113.9' }];
  for (const headers of forwarded) {
    const res = await client.post('/hub/dev-login', { form: { name: 'teacher', _csrf: hiddenField(form.text, '_csrf')! }, headers });
    t.is(res.status, 403, `${JSON.stringify(headers)}: ${res.status}`);
    t.is((await client.get('/hub/api/user')).status, 401, 'nobody was signed in');
  }
  const forwardedPage = await client.get('/hub/login', { headers: { 'X-Forwarded-For': '203.0.113.9' } });
  t.notRegex(forwardedPage.text, /action="\/hub\/dev-login"/, 'a forwarded visitor is not offered the form');
  t.truthy(csrf);
  t.is((await (await hub.signIn('direct')).get('/hub/api/user')).status, 200);
});

test('without GitHub, a public URL that is not loopback stops the hub at start, naming auth.github', async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'clusterhub-public-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const config = parseConfig({ hub: { publicUrl: 'https://hub.example.edu', stateDir, port: await freePort(), hubPort: await freePort() } }, 'test');
  const err = await t.throwsAsync(startHub(config, { backend: new EchoBackend() }));
  t.regex(err!.message, /auth\.github/);
  t.regex(err!.message, /hub\.publicUrl/);
});

test.serial('every hub page sends a strict CSP, Referrer-Policy, nosniff, and no-store with a CSRF token', async (t) => {
  const teacher = await hub.signIn('teacher');
  for (const path of ['/hub/login', '/hub/home', '/hub/admin', '/hub/logout', '/hub/nowhere']) {
    const res = await teacher.get(path, { headers: { Accept: 'text/html' } });
    const csp = res.headers.get('content-security-policy') ?? '';
    t.regex(csp, /frame-ancestors 'none'/, path);
    t.regex(csp, /default-src 'none'/, path);
    t.notRegex(csp, /unsafe-inline|unsafe-eval/, path);
    t.regex(res.headers.get('referrer-policy') ?? '', /no-referrer|same-origin/, path);
    t.is(res.headers.get('x-content-type-options'), 'nosniff', path);
    if (res.text.includes('_csrf')) t.regex(res.headers.get('cache-control') ?? '', /no-store/, path);
  }
  const api = await teacher.get('/hub/api/user');
  t.is(api.headers.get('x-content-type-options'), 'nosniff');
});

test.serial('a JSON body sent as text/plain, XML or multipart is a 415, and nothing is launched', async (t) => {
  const token = hub.token('shaper');
  const body = JSON.stringify({ workers: 1 });
  for (const type of ['text/plain', 'application/xml', 'multipart/form-data; boundary=x']) {
    const res = await raw(hub.publicUrl, 'POST', '/hub/api/users/shaper/cluster', { Authorization: `token ${token}`, 'Content-Type': type }, body);
    t.is(res.status, 415, `${type}: ${res.text}`);
    t.deepEqual(Object.keys(JSON.parse(res.text)), ['status', 'message']);
  }
  t.is(hub.manager.view('shaper').phase, 'stopped');
});

test.serial('a body over hub.maxBodyBytes is a 413', async (t) => {
  const token = hub.token('bulky');
  const body = JSON.stringify({ workers: 1, pad: 'x'.repeat(10_000) });
  const res = await raw(hub.publicUrl, 'POST', '/hub/api/users/bulky/cluster', { Authorization: `token ${token}`, 'Content-Type': 'application/json' }, body);
  t.is(res.status, 413, res.text);
  t.is(JSON.parse(res.text).status, 413);
});

test.serial('an unknown method is a 405 with Allow; PROPFIND and TRACE too, and none is logged as an error', async (t) => {
  const before = errorLines().length;
  const put = await raw(hub.publicUrl, 'PUT', '/hub/home');
  t.is(put.status, 405);
  t.regex(String(put.headers.allow), /GET/);
  for (const method of ['PROPFIND', 'TRACE']) {
    const res = await raw(hub.publicUrl, method, '/hub/home');
    t.is(res.status, 405, `${method}: ${res.text}`);
    t.truthy(res.headers.allow, `${method} says what is allowed`);
  }
  const bad = await raw(hub.publicUrl, 'GET', '/%FF');
  t.is(bad.status, 400, bad.text);
  t.is(JSON.parse(bad.text).status, 400);
  const badUser = await raw(hub.publicUrl, 'GET', '/user/%E0%A4%A/lab');
  t.is(badUser.status, 400);
  t.deepEqual(errorLines().slice(before), [], 'no error lines');
});

test.serial('instructors cannot open a student\'s JupyterLab unless the config allows it, and then the page warns', async (t) => {
  await hub.manager.launch('lab-owner', 1, 'lab-owner').done;
  const teacher = await hub.signIn('teacher');
  const refused = await teacher.get('/hub/open/lab-owner', { headers: { Accept: 'text/html' } });
  t.is(refused.status, 403);
  t.regex(refused.text, /auth\.adminAccess/);
  t.notRegex((await teacher.get('/hub/admin')).text, /href="\/hub\/open\/lab-owner"/);
  await hub.manager.stop('lab-owner', { actor: 'test' });

  const open = await startTestHub({ backend: new EchoBackend(), config: { auth: { adminAccess: true } } });
  t.teardown(() => open.destroy());
  await open.manager.launch('lab-owner', 1, 'lab-owner').done;
  const instructor = await open.signIn('teacher');
  const warning = await instructor.get('/hub/open/lab-owner');
  t.is(warning.status, 200);
  t.regex(warning.text, /runs with lab-owner's rights|as lab-owner/);
  const form = hiddenField(warning.text, '_csrf')!;
  const go = await instructor.post('/hub/open/lab-owner', { form: { _csrf: form } });
  t.is(go.status, 303);
  t.regex(go.location ?? '', /\/user\/lab-owner\/lab\?token=/);
  const student = await open.signIn('lab-owner');
  const own = await student.get('/hub/open/lab-owner');
  t.is(own.status, 302, 'the owner goes straight in');
});

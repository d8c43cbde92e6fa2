/** The hub's logs as an operator reads them: JSON, one line per request with an id, no secrets. */
import { Writable } from 'node:stream';
import test from 'ava';
import { createLogger } from '../hub/log.ts';
import { EchoBackend } from './helpers/echo-backend.ts';
import { startTestHub } from './helpers/hub.ts';

test('one JSON line per request with a request id, and no token, cookie or Jupyter secret anywhere', async (t) => {
  let text = '';
  const sink = new Writable({ write(chunk, _enc, done) { text += chunk.toString(); done(); } });
  const backend = new EchoBackend();
  const hub = await startTestHub({ backend, log: createLogger('info', sink) });
  t.teardown(() => hub.destroy());
  const token = hub.token('lin');
  const res = await fetch(`${hub.publicUrl}/hub/api/users/lin/cluster?token=${token}`, { method: 'POST', headers: { Authorization: `token ${token}`, 'Content-Type': 'application/json' }, body: '{}' });
  t.is(res.status, 202);
  const reqId = res.headers.get('x-request-id');
  t.truthy(reqId);
  for await (const e of hub.manager.progress('lin')) if (e.ready) break;
  const browser = await hub.signIn('lin');
  await browser.get('/hub/home');

  const lines = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const request = lines.filter((l) => l.msg === 'request' && l.reqId === reqId);
  t.is(request.length, 1);
  t.like(request[0], { method: 'POST', path: '/hub/api/users/lin/cluster', status: 202, user: 'lin' });
  t.false(text.includes(token), 'the API token is not logged (nor its query string)');
  t.false(text.includes(hub.store.getCluster('lin')!.jupyterToken), 'the Jupyter token is not logged');
  const cookie = browser.cookie('clusterhub-session')!.value;
  t.false(text.includes(cookie), 'the session cookie is not logged');
});

test('an error is logged under err with its type, message and stack; the response body an OAuth error carries is redacted', (t) => {
  let text = '';
  const sink = new Writable({ write(chunk, _enc, done) { text += chunk.toString(); done(); } });
  const log = createLogger('info', sink);
  // The shape of passport-oauth2's InternalOAuthError: GitHub's answer under `oauthError`.
  const err = Object.assign(new Error('Failed to obtain access token'), { name: 'InternalOAuthError', oauthError: { statusCode: 401, data: 'access_token=gho_leaked' } });
  log.warn({ err }, 'GitHub sign-in failed');
  const line = JSON.parse(text) as { err: { type: string; message: string; stack: string; oauthError: unknown } };
  t.is(line.err.message, 'Failed to obtain access token');
  t.is(line.err.type, 'Error');
  t.true(line.err.stack.includes('logs.test.ts'));
  t.is(line.err.oauthError, '[redacted]');
  t.false(text.includes('gho_leaked'));
});

test('a client that lists users without paging is told the list was cut, once a minute at most; one that pages is not told', async (t) => {
  let text = '';
  const sink = new Writable({ write(chunk, _enc, done) { text += chunk.toString(); done(); } });
  const hub = await startTestHub({ backend: new EchoBackend(), log: createLogger('info', sink) });
  t.teardown(() => hub.destroy());
  const token = hub.token('teacher');
  for (let i = 0; i < 210; i++) hub.store.upsertUser({ login: `s${i}`, admin: false });
  const list = async (query: string) => {
    const res = await fetch(`${hub.publicUrl}/hub/api/users${query}`, { headers: { Authorization: `token ${token}` } });
    t.is(res.status, 200);
    t.is(((await res.json()) as unknown[]).length, 200);
  };
  const warnings = () => text.trim().split('\n').map((l) => JSON.parse(l) as { level: number; msg: string; total?: number })
    .filter((l) => l.msg.startsWith('GET /hub/api/users without pagination'));

  await list('?limit=200');
  await list('?offset=0');
  t.is(warnings().length, 0, 'offset or limit: the client pages on purpose');
  await list('');
  await list('');
  await list('');
  t.is(warnings().length, 1, 'a client polling the unpaged list is warned once, not per request');
  t.like(warnings()[0], { level: 40, total: 211 });
});

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

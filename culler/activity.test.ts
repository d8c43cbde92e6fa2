/**
 * The edges of asking Jupyter: URL joining, and servers that hang or answer nonsense
 * (real HTTP servers on loopback). A real Jupyter Server is in test/culler.test.ts.
 */
import test from 'ava';
import { startHttpTarget } from '../test/helpers/net.ts';
import { fetchActivity, jupyterApiUrl } from './activity.ts';

test('the API URL keeps the proxy prefix, whatever the slashes', (t) => {
  t.is(jupyterApiUrl('http://127.0.0.1:9000', '/user/alice/', 'api/status'), 'http://127.0.0.1:9000/user/alice/api/status');
  t.is(jupyterApiUrl('http://127.0.0.1:9000/', 'user/alice', 'api/status'), 'http://127.0.0.1:9000/user/alice/api/status');
  t.is(jupyterApiUrl('http://10.0.0.5:8888', '/', 'api/kernels'), 'http://10.0.0.5:8888/api/kernels');
});

test('a Jupyter that never answers is unreachable after the timeout', async (t) => {
  const hang = await startHttpTarget('hang', () => {});
  t.teardown(hang.close);
  const started = Date.now();
  const activity = await fetchActivity({ url: hang.url, baseUrl: '/user/alice/', jupyterToken: 'x' }, { timeoutMs: 300 });
  t.regex('unreachable' in activity ? activity.unreachable : '', /^no answer from .* within 300 ms$/);
  t.true(Date.now() - started < 5000);
  t.is(hang.requests[0]?.headers.authorization, 'token x', 'the token goes in the Authorization header');
});

test('something that is not a Jupyter Server is unreachable, with the reason', async (t) => {
  const html = await startHttpTarget('html', (_req, res) => { res.writeHead(200, { 'Content-Type': 'text/html' }); res.end('<html>hi</html>'); });
  const other = await startHttpTarget('other');
  t.teardown(html.close);
  t.teardown(other.close);
  const cluster = { baseUrl: '/user/alice/', jupyterToken: 'x' };
  t.like(await fetchActivity({ ...cluster, url: html.url }), { unreachable: `${html.url}/user/alice/api/status?no_track_activity=1 did not answer JSON` });
  t.like(await fetchActivity({ ...cluster, url: other.url }), { unreachable: `${other.url}/user/alice/api/status?no_track_activity=1 has no valid last_activity (is it a Jupyter Server?)` });
  t.like(await fetchActivity({ ...cluster, url: null }), { unreachable: 'the cluster has no URL yet' });
});

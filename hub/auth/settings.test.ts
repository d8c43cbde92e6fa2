import test from 'ava';
import { configSchema, type ConfigInput } from '../../config/schema.ts';
import { callbackUrl, checkAuthConfig, devLoginEnabled, githubScopes, isDirectLoopbackRequest, isLoginShape, isLoopback, publicUrl, safeNext } from './settings.ts';

const config = (input: ConfigInput) => configSchema.parse(input);
const github = { clientId: 'id', clientSecret: 'secret' };

test('loopback addresses are 127/8, ::1 and localhost; nothing else', (t) => {
  for (const host of ['127.0.0.1', '127.9.8.7', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) t.true(isLoopback(host), host);
  for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'hub.example.edu', '128.0.0.1', 'localhost.example.com']) t.false(isLoopback(host), host);
});

test('the development sign-in is on only without GitHub and on loopback', (t) => {
  t.true(devLoginEnabled(config({})));
  t.false(devLoginEnabled(config({ auth: { github } })));
  t.false(devLoginEnabled(config({ hub: { bind: '0.0.0.0' } })));
});

test('a non-loopback bind without GitHub is refused at start, naming hub.bind', (t) => {
  const err = t.throws(() => checkAuthConfig(config({ hub: { bind: '0.0.0.0' } })));
  t.regex(err.message, /hub\.bind/);
  t.regex(err.message, /auth\.github/);
  t.notThrows(() => checkAuthConfig(config({})));
  t.notThrows(() => checkAuthConfig(config({ hub: { bind: '0.0.0.0', publicUrl: 'https://hub.example.edu' }, auth: { github } })));
});

test('GitHub on a wildcard bind needs a public URL to call back to', (t) => {
  const err = t.throws(() => checkAuthConfig(config({ hub: { bind: '0.0.0.0' }, auth: { github } })));
  t.regex(err.message, /hub\.publicUrl/);
});

test('public and callback URLs default from bind and port', (t) => {
  t.is(publicUrl(config({ hub: { port: 9000 } })), 'http://127.0.0.1:9000');
  t.is(publicUrl(config({ hub: { bind: '::1' } })), 'http://[::1]:8000');
  t.is(callbackUrl(config({ hub: { publicUrl: 'https://hub.example.edu/' }, auth: { github } })), 'https://hub.example.edu/hub/oauth_callback');
  t.is(callbackUrl(config({ auth: { github: { ...github, callbackUrl: 'https://x.edu/cb' } } })), 'https://x.edu/cb');
});

test('read:org is asked for only when orgs or teams decide', (t) => {
  t.deepEqual(githubScopes(config({})), ['read:user']);
  t.deepEqual(githubScopes(config({ auth: { allowedOrgs: ['uni:ta'] } })), ['read:user', 'read:org']);
});

test('next only ever points at a local path', (t) => {
  t.is(safeNext('/user/alice/lab?x=1'), '/user/alice/lab?x=1');
  for (const bad of ['//evil.example', '/\\evil.example', 'https://evil.example/', 'home', '', '/a\r\nSet-Cookie: x', 42, undefined]) {
    t.is(safeNext(bad), undefined, String(bad));
  }
});

test('login shape follows GitHub', (t) => {
  t.true(isLoginShape('alice-b2'));
  for (const bad of ['', '-alice', 'a'.repeat(40), 'al ice', 'al<ice>', 'alice_b']) t.false(isLoginShape(bad), bad);
});

test('the development sign-in is off behind a public URL that is not loopback', (t) => {
  t.false(devLoginEnabled(config({ hub: { publicUrl: 'https://hub.example.edu' } })));
  t.true(devLoginEnabled(config({ hub: { publicUrl: 'http://localhost:8000' } })));
});

test('only a request made on this machine, at most through the hub\'s own proxy, counts as direct', (t) => {
  t.true(isDirectLoopbackRequest('127.0.0.1', {}));
  t.true(isDirectLoopbackRequest('::ffff:127.0.0.1', { 'x-forwarded-for': '127.0.0.1' }), 'one loopback hop: the managed proxy');
  t.false(isDirectLoopbackRequest('10.1.2.3', {}), 'the socket is not loopback');
  t.false(isDirectLoopbackRequest(undefined, {}));
  t.false(isDirectLoopbackRequest('127.0.0.1', { 'x-forwarded-for': '203.0.113.9' }), 'relayed for someone else');
  t.false(isDirectLoopbackRequest('127.0.0.1', { 'x-forwarded-for': '127.0.0.1, 127.0.0.1' }), 'two hops: another proxy in front');
  t.false(isDirectLoopbackRequest('127.0.0.1', { forwarded: 'for=127.0.0.1' }));
  t.false(isDirectLoopbackRequest('127.0.0.1', { 'x-real-ip': '127.0.0.1' }));
});

import test from 'ava';
import { configSchema } from '../config/schema.ts';
import { checkOriginConfig, routeScheme, serverUrlOf, userOriginSources } from './origins.ts';

const config = (hub: Record<string, unknown>) => configSchema.parse({ hub });

test('without subdomains every student is a path on the hub\'s origin', (t) => {
  const c = config({ publicUrl: 'https://hub.example.edu' });
  t.is(routeScheme(c).path('Ada'), '/user/Ada');
  t.is(serverUrlOf(c)('Ada'), '/user/Ada/');
  t.deepEqual(userOriginSources(c), []);
});

test('with subdomains each student has a host of their own under the hub\'s', (t) => {
  const c = config({ publicUrl: 'https://hub.example.edu:8443/', userSubdomains: true });
  const routes = routeScheme(c);
  t.is(routes.path('Ada'), '/ada.hub.example.edu/user/Ada');
  t.is(serverUrlOf(c)('Ada'), 'https://ada.hub.example.edu:8443/user/Ada/');
  t.deepEqual(userOriginSources(c), ['https://*.hub.example.edu:8443']);
  t.true(routes.manages('/ada.hub.example.edu/user/Ada'));
  t.false(routes.manages('/'), 'the hub\'s own default route is not a user route');
  t.false(routes.manages('/user/Ada'), 'nor a path route');
  t.false(routes.manages('/ada.elsewhere.org/user/Ada'), 'nor another domain\'s');
});

test('subdomains need a public URL with a host name, and the error names the keys', (t) => {
  t.notThrows(() => checkOriginConfig(config({ publicUrl: 'http://localhost:8000', userSubdomains: true })));
  const err = t.throws(() => checkOriginConfig(config({ userSubdomains: true })));
  t.regex(err.message, /hub\.userSubdomains/);
  t.regex(err.message, /hub\.publicUrl/);
});

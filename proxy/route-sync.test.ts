import test from 'ava';
import { diffRoutes, normalizeRoutePath, type WantedRoute } from './route-sync.ts';
import type { RouteInfo } from './types.ts';

const route = (target: string, extra: Record<string, unknown> = {}): RouteInfo => ({
  target,
  last_activity: '2025-01-01T00:00:00.000Z',
  ...extra,
});
const wanted = (entries: Array<[string, string]>): Map<string, WantedRoute> =>
  new Map(entries.map(([path, target]) => [path, { target, data: { user: path.split('/')[2] } }]));

test('a wanted route the proxy lacks is added, with its data', (t) => {
  const diff = diffRoutes({ '/': route('http://hub') }, wanted([['/user/a', 'http://a']]));
  t.deepEqual(diff, { add: [{ path: '/user/a', target: 'http://a', data: { user: 'a' } }], fix: [], remove: [] });
});

test('a route with the wrong target is fixed', (t) => {
  const diff = diffRoutes({ '/user/a': route('http://old') }, wanted([['/user/a', 'http://new']]));
  t.deepEqual(diff.fix, [{ path: '/user/a', target: 'http://new', data: { user: 'a' } }]);
  t.deepEqual(diff.add, []);
  t.deepEqual(diff.remove, []);
});

test('a route that is right is left alone whatever its extra data', (t) => {
  const diff = diffRoutes({ '/user/a': route('http://a', { user: 'a', cluster: true }) }, wanted([['/user/a', 'http://a']]));
  t.deepEqual(diff, { add: [], fix: [], remove: [] });
});

test('a /user/ route nobody wants is removed', (t) => {
  const diff = diffRoutes({ '/user/gone': route('http://gone'), '/user/a': route('http://a') }, wanted([['/user/a', 'http://a']]));
  t.deepEqual(diff.remove, ['/user/gone']);
});

test('the default route and routes outside /user/ are never removed', (t) => {
  const diff = diffRoutes({ '/': route('http://hub'), '/services/x': route('http://x'), '/username': route('http://u') }, new Map());
  t.deepEqual(diff, { add: [], fix: [], remove: [] });
});

test('trailing slashes do not make a route look different (CHP strips them)', (t) => {
  const diff = diffRoutes({ '/user/a': route('http://a') }, wanted([['/user/a/', 'http://a']]));
  t.deepEqual(diff, { add: [], fix: [], remove: [] });
});

test('the managed prefix can be changed', (t) => {
  const diff = diffRoutes({ '/user/a': route('http://a'), '/c/b': route('http://b') }, new Map(), '/c/');
  t.deepEqual(diff.remove, ['/c/b']);
});

test('an empty proxy gets every wanted route', (t) => {
  const diff = diffRoutes({}, wanted([['/user/a', 'http://a'], ['/user/b', 'http://b']]));
  t.deepEqual(diff.add.map((r) => r.path), ['/user/a', '/user/b']);
});

test('route paths are normalised the way CHP stores them', (t) => {
  t.is(normalizeRoutePath('/user/a/'), '/user/a');
  t.is(normalizeRoutePath('user/a'), '/user/a');
  t.is(normalizeRoutePath('/'), '/');
  t.is(normalizeRoutePath('//'), '/');
});

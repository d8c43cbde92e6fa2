import test from 'ava';
import { configSchema, type ConfigInput } from '../../config/schema.ts';
import { allowReason, isAdminLogin, isAllowed, membershipsToCheck } from './allow.ts';

const config = (auth: ConfigInput['auth']) => configSchema.parse({ auth });
const alice = { login: 'alice', id: 1 };
const none = new Set<string>();

test('nobody is allowed when every list is empty', (t) => {
  t.false(isAllowed(alice, config({}), none));
});

test('admins are always allowed, whatever the other lists say', (t) => {
  const c = config({ admins: ['Alice'], allowedUsers: ['bob'] });
  t.is(allowReason(alice, c, none), 'admin');
  t.true(isAdminLogin('ALICE', c));
  t.false(isAdminLogin('bob', c));
});

test('allowAll lets any GitHub user in', (t) => {
  t.is(allowReason({ login: 'stranger', id: 9 }, config({ allowAll: true }), none), 'allowAll');
});

test('allowedUsers matches logins case-insensitively', (t) => {
  const c = config({ allowedUsers: ['ALICE'] });
  t.is(allowReason(alice, c, none), 'allowedUsers');
  t.false(isAllowed({ login: 'alice2', id: 2 }, c, none));
});

test('an org member is allowed only when GitHub confirmed the membership', (t) => {
  const c = config({ allowedOrgs: ['Physics-101'] });
  t.false(isAllowed(alice, c, none));
  t.is(allowReason(alice, c, new Set(['physics-101'])), 'allowedOrgs');
});

test('a team entry needs that team, not just the org', (t) => {
  const c = config({ allowedOrgs: ['uni:ta-staff'] });
  t.false(isAllowed(alice, c, new Set(['uni'])));
  t.true(isAllowed(alice, c, new Set(['uni:ta-staff'])));
});

test('memberships are ignored unless they were asked for by the config', (t) => {
  t.false(isAllowed(alice, config({ allowedOrgs: ['uni'] }), new Set(['other'])));
});

test('membership is only asked of GitHub when the login alone does not decide', (t) => {
  const c = config({ allowedOrgs: ['uni', 'uni:ta'], allowedUsers: ['bob'], admins: ['carol'] });
  t.deepEqual(membershipsToCheck(alice, c), ['uni', 'uni:ta']);
  t.deepEqual(membershipsToCheck({ login: 'bob', id: 2 }, c), []);
  t.deepEqual(membershipsToCheck({ login: 'carol', id: 3 }, c), []);
  t.deepEqual(membershipsToCheck(alice, config({ allowAll: true, allowedOrgs: ['uni'] })), []);
});

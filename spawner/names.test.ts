import test from 'ava';
import { createHash } from 'node:crypto';
import { isSafeName, namespaceFor, safeName } from './names.ts';

const hash8 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex').slice(0, 8);

test('a login that is already a clean DNS label is kept', (t) => {
  t.is(safeName('alice'), 'alice');
  t.is(safeName('bob-smith'), 'bob-smith');
  t.is(namespaceFor('clusterhub', 'alice'), 'clusterhub-alice');
});

test('leading digits are valid in a DNS-1123 label and kept', (t) => {
  t.is(safeName('42answers'), '42answers');
  t.is(safeName('0'), '0');
});

test('uppercase logins are lowercased and hashed, so Alice and alice differ', (t) => {
  t.is(safeName('Alice'), `alice---${hash8('Alice')}`);
  t.not(safeName('Alice'), safeName('alice'));
});

test('a double dash is reserved for hashed names', (t) => {
  t.is(safeName('a--b'), `a-b---${hash8('a--b')}`);
  t.false(isSafeName('a--b'));
});

test('a trailing dash does not leave a run of four dashes', (t) => {
  t.is(safeName('alice-'), `alice---${hash8('alice-')}`);
  t.is(safeName('-bob'), `bob---${hash8('-bob')}`);
});

test('unicode and punctuation become single dashes', (t) => {
  t.is(safeName('Zoë.Ünïcode'), `zo-n-code---${hash8('Zoë.Ünïcode')}`);
  t.is(safeName('ÿÿÿ'), `x---${hash8('ÿÿÿ')}`);
});

test('a 39-character login fits a namespace with the longest prefix', (t) => {
  const login = 'a'.repeat(39);
  const prefix = 'p'.repeat(20);
  t.is(namespaceFor(prefix, login), `${prefix}-${login}`);
  t.true(namespaceFor(prefix, login).length <= 63);
  const upper = 'A'.repeat(39);
  const ns = namespaceFor(prefix, upper);
  t.is(ns.length, 63);
  t.true(ns.endsWith(`---${hash8(upper)}`));
  t.regex(ns, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
});

test('truncation never ends the slug with a dash', (t) => {
  const name = safeName('ab_'.repeat(20), 20);
  t.is(name.length <= 20, true);
  t.regex(name, /^[a-z0-9]+(-[a-z0-9]+)*---[0-9a-f]{8}$/);
});

test('every odd login yields a label-safe value of at most the limit', (t) => {
  for (const login of ['Alice', '9lives', 'x--y', 'a'.repeat(39), 'Ω', 'trailing-', 'UPPER-CASE-39-CHARACTERS-LONG-LOGIN-NAME', '']) {
    for (const max of [12, 20, 42, 63]) {
      const name = safeName(login, max);
      t.true(name.length <= max, `${login} @${max}`);
      t.regex(name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
  }
});

test('distinct logins get distinct names', (t) => {
  const logins = ['Alice', 'alice', 'ALICE', 'a-lice', 'a--lice', 'a_lice', 'alice-'];
  t.is(new Set(logins.map((l) => safeName(l))).size, logins.length);
});

test('a limit too small for a hashed name is refused', (t) => {
  t.throws(() => safeName('Alice', 11), { instanceOf: RangeError });
});

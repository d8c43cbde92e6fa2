import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accountName } from './accounts.ts';
import { baseRules, studentRules } from './firewall.ts';
import { sharedAccountRefusal, studentDirFor } from './tenancy.ts';

const rule = { sharedAccount: false, admins: ['teacher'] };

test('not root: the first student launches; a second non-admin student is refused, naming local.sharedAccount', (t) => {
  t.is(sharedAccountRefusal('alice', [], rule), undefined);
  t.is(sharedAccountRefusal('alice', ['alice'], rule), undefined, 'her own workspace is no reason');
  const refusal = sharedAccountRefusal('bob', ['alice'], rule);
  t.regex(refusal ?? '', /bob cannot launch.*alice's files.*local\.sharedAccount: true/);
});

test('not root: instructors are not counted, and local.sharedAccount lets everyone in', (t) => {
  t.is(sharedAccountRefusal('teacher', ['alice'], rule), undefined, 'an instructor launches beside a student');
  t.is(sharedAccountRefusal('bob', ['teacher'], rule), undefined, 'an instructor\'s workspace does not block a student');
  t.is(sharedAccountRefusal('bob', ['alice', 'carol'], { ...rule, sharedAccount: true }), undefined);
});

test('OS account names: the login when it is a clean lowercase name, a hash otherwise, never over 32 characters', (t) => {
  t.is(accountName('clusterhub-', 'alice'), 'clusterhub-alice');
  const upper = accountName('clusterhub-', 'Alice');
  t.regex(upper, /^clusterhub-alice---[0-9a-f]{8}$/);
  t.not(upper, accountName('clusterhub-', 'alice'), 'Alice and alice are two accounts');
  const long = accountName('clusterhub-', 'a-very-long-github-login-of-39-chars-xx');
  t.true(long.length <= 32);
  t.regex(long, /^[a-z][a-z0-9-]*$/, 'a name useradd accepts');
});

test('firewall rules: a student\'s listeners refuse every connection not tagged as theirs or the hub\'s', (t) => {
  const [tagRule, checkRule] = studentRules({ name: 'clusterhub-alice', uid: 1234, gid: 1234 }, 0);
  t.regex(tagRule!, /SYN,RST,ACK,FIN SYN -m owner --uid-owner 1234 .*--set-xmark 0x200004d2\/0x3fffffff/);
  t.regex(checkRule!, /SYN,ACK SYN,ACK -m owner --uid-owner 1234 -m connmark ! --mark 0x200004d2\/0x3fffffff -m connmark ! --mark 0x20000000\/0x3fffffff/);
  t.regex(checkRule!, /--comment clusterhub:clusterhub-alice/);
  const base = baseRules(0);
  t.regex(base[0]!, /REJECT --reject-with tcp-reset/, 'a refused connection\'s retried SYN is reset first');
  t.regex(base.at(-1)!, /-j DROP$/, 'the refused SYN-ACK is dropped last');
});

test('students\' directories stay in stateDir when every account can reach it, else move to /var/lib/clusterhub', (t) => {
  const closed = mkdtempSync(join(tmpdir(), 'clusterhub-closed-')); // 0700, like /root
  t.teardown(() => rmSync(closed, { recursive: true, force: true }));
  const open = join(tmpdir(), 'clusterhub-open-state');
  t.is(studentDirFor(open, 'accounts'), open);
  t.regex(studentDirFor(join(closed, 'state'), 'accounts'), /^\/var\/lib\/clusterhub\/students-[0-9a-f]{12}$/);
  t.not(studentDirFor(join(closed, 'state'), 'accounts'), studentDirFor(join(closed, 'other'), 'accounts'), 'one directory per stateDir');
  t.is(studentDirFor(join(closed, 'state'), 'shared'), join(closed, 'state'), 'one account: nothing to move');
});

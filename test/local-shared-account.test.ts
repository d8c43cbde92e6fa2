/**
 * The local backend when the hub is not root: every cluster runs as the hub's own account.
 * The hub says so (start log, admin page) and lets only one non-admin student launch unless
 * `local.sharedAccount: true`. CI runs as root, so the backend is put in this mode explicitly.
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { LocalBackend } from '../spawner/local/backend.ts';
import { makeLocalBackend } from './helpers/local-backend.ts';
import type { Logger } from '../shared/log.ts';
import { startTestHub } from './helpers/hub.ts';
import { apiAs } from './helpers/hub-api.ts';

function capturingLogger(lines: string[]): Logger {
  const keep = (level: string) => (a: object | string, b?: string) => { lines.push(`${level} ${typeof a === 'string' ? a : b ?? ''}`); };
  return { debug: () => {}, info: keep('info'), warn: keep('warn'), error: keep('error') };
}

async function sharedBackend(t: import('ava').ExecutionContext, sharedAccount = false) {
  const made = await makeLocalBackend({ config: { spark: 'off', sharedAccount }, extra: { mode: 'shared', admins: ['teacher'] } });
  t.teardown(made.cleanup);
  return made;
}

/** The first progress event of a launch, then the launch is abandoned (nothing is started yet). */
async function firstStep(backend: LocalBackend, user: string): Promise<string> {
  const launch = backend.start(user, { workers: 0, jupyterToken: 'x'.repeat(32), baseUrl: `/user/${user}/` })[Symbol.asyncIterator]();
  try {
    const first = await launch.next();
    return first.done ? 'done' : first.value.message;
  } finally {
    await launch.return?.(undefined);
  }
}

test('not root: the start log and the admin page say that every cluster shares one OS account', async (t) => {
  const { backend, stateDir } = await sharedBackend(t);
  const lines: string[] = [];
  const hub = await startTestHub({ backend, stateDir, log: capturingLogger(lines) });
  t.teardown(() => hub.close());
  t.true(lines.some((l) => l.startsWith('warn The hub does not run as root: every cluster runs as the hub\'s own OS account')), lines.join('\n'));
  const teacher = await hub.signIn('teacher');
  const page = await teacher.get('/hub/admin');
  t.is(page.status, 200);
  t.regex(page.text, /class="banner warning" role="alert">The hub does not run as root: every cluster runs as the hub&#39;s own OS account, so students are not isolated/);
});

test('not root: a second non-admin student\'s launch is refused with the reason, and leaves nothing', async (t) => {
  const { backend, stateDir } = await sharedBackend(t);
  const hub = await startTestHub({ backend, stateDir });
  t.teardown(() => hub.close());
  // alice launched before: her workspace is there (and bob's code could read it).
  await mkdir(join(stateDir, 'workspaces', 'alice'), { recursive: true });
  const res = await apiAs(hub, hub.token('bob'), '/hub/api/users/bob/cluster', { method: 'POST', json: { workers: 0 } });
  await res.body?.cancel();
  let failure = '';
  for await (const event of hub.manager.progress('bob')) if (event.failed) failure = event.message;
  t.regex(failure, /bob cannot launch: the hub does not run as root.*alice's files.*local\.sharedAccount: true/);
  t.false(existsSync(join(stateDir, 'workspaces', 'bob')), 'no workspace for bob');
  t.is((await backend.status('bob')).state, 'stopped');
  t.is(await firstStep(backend, 'teacher'), 'Checking the environment', 'an instructor may launch beside alice');
});

test('not root with local.sharedAccount: true, a second student may launch', async (t) => {
  const { backend, stateDir } = await sharedBackend(t, true);
  await mkdir(join(stateDir, 'workspaces', 'alice'), { recursive: true });
  t.is(await firstStep(backend, 'bob'), 'Checking the environment');
});

import test from 'ava';
import { existsSync } from 'node:fs';
import { backendContract } from './contracts/backend.ts';
import { waitGroupsGone } from '../spawner/local/processes.ts';
import { clusterPaths, readRecord } from '../spawner/local/state.ts';
import { clusterProcesses, makeLocalBackend } from './helpers/local-backend.ts';

const dirs = new Map<string, string>();

async function leftovers(user: string): Promise<string[]> {
  const out: string[] = [];
  for (const stateDir of dirs.values()) {
    out.push(...await clusterProcesses(stateDir, user));
    if (existsSync(clusterPaths(stateDir, user).stateFile)) out.push(`state file of ${user} in ${stateDir}`);
  }
  return out;
}

// Spark is covered by test/local-cluster.test.ts; here it is off to keep the contract quick.
backendContract(test, async () => {
  const made = await makeLocalBackend({ config: { spark: 'off' } });
  dirs.set('contract', made.stateDir);
  return made;
}, {
  name: 'local',
  user: 'contract-alice',
  workers: 1,
  scaledWorkers: 2,
  failingUser: 'contract-bob',
  // An engine that cannot start: the scheduler refuses a malformed memory size.
  makeFailing: async () => {
    const made = await makeLocalBackend({ config: { spark: 'off', workerMemory: 'lots of it' } });
    dirs.set('failing', made.stateDir);
    return made;
  },
  leftovers,
});

test.serial('an aborted launch throws and leaves nothing behind', async (t) => {
  const made = await makeLocalBackend({ config: { spark: 'off' } });
  dirs.set('abort', made.stateDir);
  t.teardown(made.cleanup);
  const abort = new AbortController();
  const err = await t.throwsAsync(async () => {
    for await (const event of made.backend.start('contract-carol', { workers: 1, jupyterToken: 'x', baseUrl: '/user/contract-carol/', signal: abort.signal })) {
      if (event.message.startsWith('Scheduler starting')) abort.abort();
    }
  });
  t.regex(err!.message, /cancelled/);
  t.is((await made.backend.status('contract-carol')).state, 'stopped');
  t.deepEqual(await leftovers('contract-carol'), []);
});

test.serial('a cluster whose scheduler died is failed, and list() cleans it up', async (t) => {
  const made = await makeLocalBackend({ config: { spark: 'off' } });
  dirs.set('dead', made.stateDir);
  t.teardown(made.cleanup);
  const user = 'contract-dave';
  for await (const event of made.backend.start(user, { workers: 0, jupyterToken: 'x', baseUrl: `/user/${user}/` })) void event;
  const record = await readRecord(clusterPaths(made.stateDir, user).stateFile);
  process.kill(-record!.scheduler!.pgid, 'SIGKILL');
  t.true(await waitGroupsGone([record!.scheduler!.pgid], 10_000));
  const status = await made.backend.status(user);
  t.is(status.state, 'failed');
  t.regex(status.reason!, /scheduler/);
  t.deepEqual(await made.backend.list(), []);
  t.false(existsSync(clusterPaths(made.stateDir, user).stateFile));
  t.deepEqual(await leftovers(user), []);
});

import { createServer, type Server } from 'node:net';
import test from 'ava';
import { freePorts } from './processes.ts';
import { clusterPaths, readRecord } from './state.ts';
import { clusterProcesses, makeLocalBackend } from '../../test/helpers/local-backend.ts';
import type { ProgressEvent } from '../types.ts';

test('a port taken between picking and binding makes the launch start again on other ports', async (t) => {
  // Another program grabs a port right after we picked it: here, before the Dask scheduler binds it.
  const squatter: Server = createServer();
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => squatter.close(() => resolve())));
  const taken = (squatter.address() as { port: number }).port;
  let calls = 0;
  const ports = async (count: number) => {
    const fresh = await freePorts(count);
    // The second of the five is the Dask scheduler's port.
    if (calls++ === 0) fresh[1] = taken;
    return fresh;
  };
  const { backend, stateDir, cleanup } = await makeLocalBackend({ config: { spark: 'off' }, extra: { ports } });
  t.teardown(cleanup);
  const events: ProgressEvent[] = [];
  for await (const e of backend.start('racer', { workers: 0, jupyterToken: 'port-race-token-0123', baseUrl: '/user/racer/' })) events.push(e);
  t.teardown(() => backend.stop('racer'));
  // What the student sees: a message that it started again, then a cluster that is ready.
  t.true(events.at(-1)!.ready);
  t.true(events.some((e) => /port was taken/.test(e.message)), events.map((e) => e.message).join(' | '));
  t.is((await backend.status('racer')).state, 'running');
  // On other ports (how many attempts it took depends on what else takes ports on the machine).
  const record = await readRecord(clusterPaths(stateDir, 'racer').stateFile);
  t.not(record?.ports.dask, taken);
  t.false(Object.values(record!.ports).includes(taken));
  await backend.stop('racer');
  t.deepEqual(await clusterProcesses(stateDir, 'racer'), []);
});

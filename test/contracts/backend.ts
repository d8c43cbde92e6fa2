/**
 * The behaviour every Backend must show, as ava tests any backend's test file can run:
 *
 *   backendContract(test, async () => ({ backend, cleanup }), { user: 'alice', ... })
 *
 * One cluster is started and carried through status, scale, list and stop (serial tests),
 * then a start that must fail shows it throws and leaves nothing behind.
 */
import type { TestFn } from 'ava';
import type { Backend, ProgressEvent } from '../../spawner/types.ts';

export interface BackendUnderTest {
  backend: Backend;
  /** Release what `make` built (the contract has already stopped its clusters). */
  cleanup(): Promise<void>;
}

export interface ContractOptions {
  /** Shown in front of every test title, e.g. `local`. */
  name: string;
  /** The login of the contract's cluster. */
  user: string;
  /** Workers at start, and after a scale (must differ). */
  workers: number;
  scaledWorkers: number;
  /** A backend (or the same one) whose `start(failingUser)` must fail after starting real work. */
  makeFailing(): Promise<BackendUnderTest>;
  failingUser: string;
  /**
   * What the backend left running of a user's cluster (process groups, pods, workloads…),
   * as a list of descriptions; empty when nothing is left. The workspace is not a leftover.
   */
  leftovers(user: string): Promise<string[]>;
}

async function collect(events: AsyncIterable<ProgressEvent>): Promise<ProgressEvent[]> {
  const out: ProgressEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}

/** Register the contract tests on `test` (ava's default export). */
export function backendContract(test: TestFn, make: () => Promise<BackendUnderTest>, opts: ContractOptions): void {
  const { user } = opts;
  let under: BackendUnderTest | undefined;
  const backend = () => {
    if (!under) throw new Error('the backend was not built (an earlier contract test failed)');
    return under.backend;
  };

  test.serial.before(async () => {
    under = await make();
  });
  test.serial.after.always(async () => {
    if (!under) return;
    await under.backend.stop(user).catch(() => {});
    await under.cleanup();
  });

  test.serial(`${opts.name}: start yields increasing progress and ends ready with a url`, async (t) => {
    const events = await collect(backend().start(user, {
      workers: opts.workers, jupyterToken: `contract-${Date.now()}`, baseUrl: `/user/${user}/`,
    }));
    t.true(events.length >= 2, 'more than one progress event');
    for (let i = 1; i < events.length; i++) t.true(events[i]!.progress >= events[i - 1]!.progress, `progress never goes back (${events[i]!.message})`);
    const last = events.at(-1)!;
    t.is(last.progress, 100);
    t.true(last.ready);
    t.regex(last.url ?? '', /^https?:\/\//);
    t.falsy(events.slice(0, -1).some((e) => e.ready), 'only the last event is ready');
  });

  test.serial(`${opts.name}: a started cluster is running with its workers`, async (t) => {
    const status = await backend().status(user);
    t.is(status.state, 'running');
    t.is(status.workers, opts.workers);
  });

  test.serial(`${opts.name}: scale changes the number of workers`, async (t) => {
    await backend().scale(user, opts.scaledWorkers);
    const status = await backend().status(user);
    t.is(status.state, 'running');
    t.is(status.workers, opts.scaledWorkers);
  });

  test.serial(`${opts.name}: list includes the running cluster with its url`, async (t) => {
    const found = (await backend().list()).find((c) => c.user === user);
    t.truthy(found);
    t.is(found?.state, 'running');
    t.regex(found?.url ?? '', /^https?:\/\//);
  });

  test.serial(`${opts.name}: stop leaves nothing running (the workspace stays); status is stopped and list excludes it`, async (t) => {
    await backend().stop(user);
    t.is((await backend().status(user)).state, 'stopped');
    t.falsy((await backend().list()).some((c) => c.user === user));
    t.deepEqual(await opts.leftovers(user), []);
  });

  test.serial(`${opts.name}: stop is idempotent`, async (t) => {
    await t.notThrowsAsync(backend().stop(user));
    await t.notThrowsAsync(backend().stop('nobody-here'));
    t.is((await backend().status('nobody-here')).state, 'stopped');
  });

  test.serial(`${opts.name}: a failing start throws with a reason and leaves nothing`, async (t) => {
    const failing = await opts.makeFailing();
    try {
      const seen: ProgressEvent[] = [];
      const err = await t.throwsAsync(async () => {
        for await (const event of failing.backend.start(opts.failingUser, { workers: 1, jupyterToken: 'contract-fail', baseUrl: `/user/${opts.failingUser}/` })) seen.push(event);
      });
      t.truthy(err?.message);
      t.falsy(seen.some((e) => e.ready), 'no ready event');
      t.is((await failing.backend.status(opts.failingUser)).state, 'stopped');
      t.falsy((await failing.backend.list()).some((c) => c.user === opts.failingUser));
      t.deepEqual(await opts.leftovers(opts.failingUser), []);
    } finally {
      await failing.backend.stop(opts.failingUser).catch(() => {});
      await failing.cleanup();
    }
  });
}

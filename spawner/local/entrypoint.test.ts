/**
 * The image's entrypoint as the local backend runs it: supervision and the no-Java path,
 * with real processes (a worker pointed at a scheduler that is not there is enough).
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, symlink, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ENTRYPOINT } from './backend.ts';
import { freePorts, groupAlive } from './processes.ts';
import { ensureVenv, REQUIREMENTS_FILE } from './venv.ts';

async function startWorker(t: { teardown(fn: () => Promise<void>): void }, env: Record<string, string>) {
  const dir = await mkdtemp(join(tmpdir(), 'clusterhub-entry-'));
  const [dask] = await freePorts(1);
  const child = spawn(ENTRYPOINT, ['worker'], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      CLUSTER_BIND: '127.0.0.1', CLUSTER_DASK_PORT: String(dask), CLUSTER_ENGINES: '2',
      CLUSTER_WORKSPACE: join(dir, 'ws'), CLUSTER_RUNTIME_DIR: join(dir, 'rt'), CLUSTER_WORKER_NAME: 'w1',
      HOME: dir, ...env,
    },
  });
  const lines: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (m: RegExpMatchArray) => void }> = [];
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      lines.push(line);
      for (const w of [...waiters]) {
        const m = line.match(w.re);
        if (m) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    });
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // A line that never comes fails the wait when the process ends, with what it printed.
  const ended = exited.then(() => Promise.reject(new Error(`exited before the line; output:\n${lines.join('\n')}`)));
  ended.catch(() => {});
  t.teardown(async () => {
    if (groupAlive(child.pid!)) process.kill(-child.pid!, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  const line = (re: RegExp) => {
    const seen = lines.map((l) => l.match(re)).find(Boolean);
    return seen ? Promise.resolve(seen) : Promise.race([new Promise<RegExpMatchArray>((resolve) => waiters.push({ re, resolve })), ended]);
  };
  return { pgid: child.pid!, exited, lines, line };
}

test('when one engine dies, the worker stops every child and exits non-zero', async (t) => {
  const venv = await ensureVenv({ python: 'python3', requirementsFile: REQUIREMENTS_FILE, log: () => {} });
  const w = await startWorker(t, { PATH: `${venv.bin}:${process.env.PATH}`, CLUSTER_SPARK: 'off' });
  const [, pid] = (await w.line(/started ipengine-1 \(pid (\d+)\)/))!;
  await w.line(/\[ipengine-1\].*Waiting up to/);
  process.kill(Number(pid), 'SIGKILL');
  t.is(await w.exited, 1);
  t.true(w.lines.some((l) => l.includes('ipengine-1 died')), 'the log says which engine died');
  t.false(groupAlive(w.pgid), 'nothing of the group is left');
});

test('without Java, Spark is skipped with a clear log line and the other engines start', async (t) => {
  const venv = await ensureVenv({ python: 'python3', requirementsFile: REQUIREMENTS_FILE, log: () => {} });
  // A PATH with bash and the venv only: no java anywhere, no JAVA_HOME.
  const bin = await mkdtemp(join(tmpdir(), 'clusterhub-nojava-'));
  t.teardown(() => rm(bin, { recursive: true, force: true }));
  await mkdir(bin, { recursive: true });
  await symlink('/bin/bash', join(bin, 'bash'));
  const w = await startWorker(t, { PATH: `${venv.bin}:${bin}` });
  await w.line(/Spark skipped: no java/);
  await w.line(/\[ipengine-1\].*Waiting up to/);
  await w.line(/started dask-worker/);
  process.kill(-w.pgid, 'SIGTERM');
  t.is(await w.exited, 0, 'SIGTERM is a clean stop');
  t.false(w.lines.some((l) => l.includes('spark-worker')));
  t.false(groupAlive(w.pgid));
});

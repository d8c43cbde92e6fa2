/**
 * IPython Parallel across hosts that share no files (the Kubernetes mode of the cluster
 * image): `start scheduler` and `start worker` run with separate runtime dirs and find
 * each other through CLUSTER_IPP_KEY, CLUSTER_IPP_PORTS and CLUSTER_SCHEDULER_HOST only.
 * Real processes on 127.0.0.1; a notebook's `ipyparallel.Client()` sees the worker's engines.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { ENTRYPOINT } from '../spawner/local/backend.ts';
import { killGroups } from '../spawner/local/processes.ts';
import { testPorts } from './helpers/ports.ts';
import { ensureVenv, REQUIREMENTS_FILE } from '../spawner/local/venv.ts';

type Teardown = { teardown(fn: () => Promise<void>): void };

/** One mode of the entrypoint as its own process group; `line` waits for a log line (or the exit). */
function startMode(t: Teardown, mode: 'scheduler' | 'worker', env: Record<string, string>) {
  const child = spawn(ENTRYPOINT, [mode], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
  const lines: string[] = [];
  const waiters = new Set<{ re: RegExp; resolve: (m: RegExpMatchArray) => void }>();
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (text) => {
      lines.push(text);
      for (const w of waiters) {
        const m = text.match(w.re);
        if (m) {
          waiters.delete(w);
          w.resolve(m);
        }
      }
    });
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ended = exited.then(() => Promise.reject(new Error(`${mode} exited; output:\n${lines.join('\n')}`)));
  ended.catch(() => {});
  t.teardown(() => killGroups([child.pid!], 10_000));
  const line = (re: RegExp) => {
    const seen = lines.map((l) => l.match(re)).find(Boolean);
    return seen ? Promise.resolve(seen) : Promise.race([new Promise<RegExpMatchArray>((resolve) => waiters.add({ re, resolve })), ended]);
  };
  return { line, lines };
}

/** Runs Python code with the venv's interpreter; resolves with stdout, rejects with stderr. */
function python(bin: string, code: string, env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(bin, 'python'), ['-c', code], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`python exited ${code}:\n${err}`))));
  });
}

// What a notebook on the scheduler runs: no arguments, the kernel's IPYTHONDIR finds the client file.
const NOTEBOOK = `
import json, os, ipyparallel
rc = ipyparallel.Client(timeout=30)
rc.wait_for_engines(2, timeout=90)
view = rc[:]
print(json.dumps({
    'ids': rc.ids,
    'squares': view.map_sync(lambda x: x * x, range(8)),
    'runtime_dirs': sorted(set(view.apply_sync(lambda: __import__('os').environ['CLUSTER_RUNTIME_DIR']))),
    'key_in_env': any(view.apply_sync(lambda: 'CLUSTER_IPP_KEY' in __import__('os').environ)),
}))
rc.close()
`;

test('engines on a worker with its own runtime dir reach the controller from the environment alone', async (t) => {
  const venv = await ensureVenv({ python: 'python3', requirementsFile: REQUIREMENTS_FILE, log: () => {} });
  const root = await mkdtemp(join(tmpdir(), 'clusterhub-ipp-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const [jupyter, dask, dashboard, ...ipp] = await testPorts(3 + 16);
  const key = randomBytes(32).toString('hex');
  const common = {
    PATH: `${venv.bin}:${process.env.PATH}`,
    CLUSTER_PYTHON: join(venv.bin, 'python'),
    CLUSTER_BIND: '127.0.0.1',
    CLUSTER_SCHEDULER_HOST: '127.0.0.1',
    CLUSTER_SPARK: 'off',
    CLUSTER_DASK_PORT: String(dask),
    CLUSTER_IPP_KEY: key,
    CLUSTER_IPP_PORTS: ipp.join(','),
    CLUSTER_STOP_GRACE: '5',
  };
  // Two "hosts": nothing on disk in common.
  const host = (name: string) => ({ HOME: join(root, name), CLUSTER_RUNTIME_DIR: join(root, name, 'rt'), CLUSTER_WORKSPACE: join(root, name, 'work') });
  const schedulerHost = host('scheduler');
  const workerHost = host('worker');

  // As on Kubernetes, the worker may come up first: its engines register before any controller listens.
  const worker = startMode(t, 'worker', { ...common, ...workerHost, CLUSTER_ENGINES: '2', CLUSTER_WORKER_NAME: 'w1' });
  await worker.line(/connection file written from CLUSTER_IPP_KEY/);
  await Promise.all([worker.line(/\[ipengine-0\].*Registering with controller/), worker.line(/\[ipengine-1\].*Registering with controller/)]);
  // The scenario, not a wait for state: a scheduler pod that starts later than ipengine's default
  // registration timeout (5 s) after its workers.
  await delay(6000);
  const scheduler = startMode(t, 'scheduler', {
    ...common, ...schedulerHost,
    CLUSTER_JUPYTER_TOKEN: randomBytes(16).toString('hex'),
    CLUSTER_JUPYTER_PORT: String(jupyter), CLUSTER_DASK_DASHBOARD_PORT: String(dashboard),
  });
  await scheduler.line(/Hub listening on tcp:\/\/127\.0\.0\.1:\d+ for registration/);
  const security = (h: typeof schedulerHost) => join(h.CLUSTER_RUNTIME_DIR, 'ipython', 'profile_default', 'security');
  t.false(existsSync(join(security(workerHost), 'ipcontroller-client.json')), 'the worker never saw the controller\'s files');
  const engineFile = JSON.parse(await readFile(join(security(workerHost), 'ipcontroller-engine.json'), 'utf8'));
  t.like(engineFile, { interface: 'tcp://127.0.0.1', registration: ipp[0], key, signature_scheme: 'hmac-sha256' });

  const started = performance.now();
  const answer = JSON.parse(await python(venv.bin, NOTEBOOK, {
    PATH: common.PATH, HOME: schedulerHost.HOME, IPYTHONDIR: join(schedulerHost.CLUSTER_RUNTIME_DIR, 'ipython'),
  }).catch((err: Error) => {
    // When the engines never come, what the two "hosts" said is what tells why.
    throw new Error(`${err.message}\nworker:\n${worker.lines.slice(-40).join('\n')}\nscheduler:\n${scheduler.lines.slice(-40).join('\n')}`);
  }));
  t.log(`engines registered and ran a map within ${Math.round(performance.now() - started)} ms of the controller listening`);
  t.false(worker.lines.some((l) => l.includes('Registration timed out')), 'no engine gave up waiting');
  t.is(answer.ids.length, 2, 'both engines of the worker registered');
  t.deepEqual(answer.squares, [0, 1, 4, 9, 16, 25, 36, 49]);
  t.deepEqual(answer.runtime_dirs, [workerHost.CLUSTER_RUNTIME_DIR], 'the engines are the worker\'s');
  t.false(answer.key_in_env, 'user code on the engines does not see the key in its environment');
});

/**
 * The two hubs the hub benchmark compares, behind one shape: each runs as its own process
 * (managed configurable-http-proxy, sqlite, info logs), seeded with the same users, and
 * routes every server to the same instant HTTP target.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openStore } from '../../hub/store/sqlite.ts';
import { adjacentPorts } from '../../test/helpers/hub.ts';
import { api, waitForApi } from './http.ts';

const root = resolve(import.meta.dirname, '../..');
const chp = join(root, 'node_modules', '.bin', 'configurable-http-proxy');

/** A running hub under test. */
export interface HubUnderTest {
  name: 'JupyterHub' | 'clusterhub';
  pid: number;
  publicUrl: string;
  /** `http://127.0.0.1:{port}/hub/api` */
  apiUrl: string;
  token: string;
  proxyApiUrl: string;
  proxyToken: string;
  /** Path of one launch and one stop request, relative to apiUrl. */
  serverPath(user: string): string;
  launchBody: unknown;
  /** The list request the load test sends (same page size for both). */
  listPath: string;
  /** How long start → API ready took. */
  startupMs: number;
  stop(): Promise<void>;
}

export interface HubSetup {
  users: string[];
  targetUrl: string;
}

/** A free port on loopback (the OS picks it). */
function listenOnce(port: number): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
      const { port: bound } = server.address() as import('node:net').AddressInfo;
      server.close(() => resolvePort(bound));
    });
  });
}

function launchProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv, logFile: string): ChildProcess {
  const out = openSync(logFile, 'a');
  return spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', out, out], detached: true });
}

function stopProcess(child: ChildProcess): Promise<void> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    child.once('exit', () => done());
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      done();
    }
    setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }, 10_000).unref();
  });
}

/** A seeded state directory for each hub, made once per benchmark run. */
export interface Seeded {
  clusterhubState: string;
  clusterhubToken: string;
  jupyterhubState: string;
  jupyterhubToken: string;
  /** JupyterHub's database back to just the seeded users: servers a round left (KubeSpawner's pending spawns) are forgotten. */
  resetJupyterHub(): void;
  cleanup(): void;
}

/** Seeds both hubs' state; `jupyterhub: false` leaves JupyterHub's empty (a run without it). */
export async function seed(setup: HubSetup, venvBin: string, which: { jupyterhub?: boolean } = {}): Promise<Seeded> {
  const base = mkdtempSync(join(tmpdir(), 'clusterhub-bench-'));
  const clusterhubState = join(base, 'clusterhub');
  const jupyterhubState = join(base, 'jupyterhub');
  // clusterhub: users and the bench admin's token straight into its store.
  mkdirSync(clusterhubState, { recursive: true, mode: 0o700 });
  mkdirSync(jupyterhubState, { recursive: true, mode: 0o700 });
  const store = openStore(join(clusterhubState, 'clusterhub.sqlite'));
  for (const login of setup.users) store.upsertUser({ login, admin: false });
  store.upsertUser({ login: 'bench', admin: true });
  const clusterhubToken = store.createToken('bench', { scopes: ['user', 'admin'], note: 'bench' }).token;
  store.close();
  // JupyterHub: the same users through its own API (one request), then stopped.
  const jupyterhubToken = randomBytes(24).toString('hex');
  const db = join(jupyterhubState, 'jupyterhub.sqlite');
  const pristine = join(base, 'jupyterhub-seeded.sqlite');
  const seeded: Seeded = {
    clusterhubState, clusterhubToken, jupyterhubState, jupyterhubToken,
    resetJupyterHub: () => {
      for (const f of [`${db}-journal`, `${db}-wal`, `${db}-shm`]) rmSync(f, { force: true });
      copyFileSync(pristine, db);
    },
    cleanup: () => rmSync(base, { recursive: true, force: true }),
  };
  if (which.jupyterhub === false) return seeded;
  const jh = await startJupyterHub(setup, seeded, venvBin);
  try {
    const res = await api(jh.apiUrl, jh.token, 'POST', '/users', { usernames: setup.users });
    if (res.status !== 201) throw new Error(`JupyterHub did not add the users: ${res.status} ${res.text.slice(0, 200)}`);
  } finally {
    await jh.stop();
  }
  copyFileSync(db, pristine);
  return seeded;
}

export async function startJupyterHub(setup: HubSetup, seeded: Seeded, venvBin: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<HubUnderTest> {
  const port = await adjacentPorts();
  const hubPort = await listenOnce(0);
  const proxyToken = randomBytes(24).toString('hex');
  const started = performance.now();
  const child = launchProcess(join(venvBin, 'jupyterhub'), ['-f', join(root, 'bench', 'peer', 'jupyterhub_config.py')], {
    BENCH_PORT: String(port), BENCH_HUB_PORT: String(hubPort), BENCH_CHP: chp, BENCH_PROXY_TOKEN: proxyToken,
    BENCH_STATE: seeded.jupyterhubState, BENCH_TOKEN: seeded.jupyterhubToken,
    BENCH_TARGET_PORT: new URL(setup.targetUrl).port, PATH: `${venvBin}:${join(root, 'node_modules', '.bin')}:${process.env.PATH}`,
    ...extraEnv,
  }, join(seeded.jupyterhubState, 'jupyterhub.log'));
  const publicUrl = `http://127.0.0.1:${port}`;
  const apiUrl = `${publicUrl}/hub/api`;
  await waitForApi(apiUrl, seeded.jupyterhubToken, child, join(seeded.jupyterhubState, 'jupyterhub.log'));
  return {
    name: 'JupyterHub', pid: child.pid!, publicUrl, apiUrl, token: seeded.jupyterhubToken,
    proxyApiUrl: `http://127.0.0.1:${port + 1}`, proxyToken,
    serverPath: (user) => `/users/${user}/server`, launchBody: {},
    listPath: '/users?limit=200',
    startupMs: performance.now() - started,
    stop: () => stopProcess(child),
  };
}

/** How clusterhub runs: the instant backend (hub bench) or the real CLI with extra config (kube bench). */
export interface ClusterhubRun {
  /** Extra YAML lines (top-level sections the base config does not have). */
  config?: string[];
  /** `instant`: bench/side-by-side/instant-hub.ts; `cli`: bin/clusterhub.mjs start, as `npm start` runs it. */
  entry?: 'instant' | 'cli';
}

export async function startClusterhub(setup: HubSetup, seeded: Seeded, run: ClusterhubRun = {}): Promise<HubUnderTest> {
  const port = await adjacentPorts();
  const hubPort = await listenOnce(0);
  const proxyToken = randomBytes(24).toString('hex');
  const configFile = join(seeded.clusterhubState, 'bench.yaml');
  writeFileSync(configFile, [
    'hub:', `  port: ${port}`, `  hubPort: ${hubPort}`, `  stateDir: ${seeded.clusterhubState}`, '  logLevel: info',
    'proxy:', `  authToken: ${proxyToken}`,
    'auth:', '  admins: [bench]',
    'culler:', '  enabled: false',
    ...(run.config ?? []), '',
  ].join('\n'));
  const started = performance.now();
  const logFile = join(seeded.clusterhubState, 'clusterhub.log');
  // As `npm start` and the hub image start it: Node's compile cache on before any .ts loads.
  const argv = run.entry === 'cli'
    ? [join(root, 'bin', 'clusterhub.mjs'), 'start', '--config', configFile]
    : ['--import', join(root, 'bin', 'compile-cache.mjs'), join(root, 'bench', 'side-by-side', 'instant-hub.ts'), configFile];
  const child = launchProcess(process.execPath, argv, { BENCH_TARGET_URL: setup.targetUrl }, logFile);
  const publicUrl = `http://127.0.0.1:${port}`;
  const apiUrl = `${publicUrl}/hub/api`;
  await waitForApi(apiUrl, seeded.clusterhubToken, child, logFile);
  return {
    name: 'clusterhub', pid: child.pid!, publicUrl, apiUrl, token: seeded.clusterhubToken,
    proxyApiUrl: `http://127.0.0.1:${port + 1}`, proxyToken,
    serverPath: (user) => `/users/${user}/cluster`, launchBody: { workers: 1 },
    listPath: '/users?limit=200',
    startupMs: performance.now() - started,
    stop: () => stopProcess(child),
  };
}

/**
 * The hub process's own life: a signal while it starts, and a health endpoint that says
 * when its managed proxy is down so an outside process manager can act. Real processes:
 * `hub/cli.ts` and configurable-http-proxy.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestHub } from './helpers/hub.ts';
import { EchoBackend } from './helpers/echo-backend.ts';
import { freshCopy, killProcessesUnder, processesUnder, removeCopy } from './helpers/fresh-copy.ts';
import { adjacentPorts } from './helpers/hub.ts';
import { alive, childPids, kubeHubConfig } from './helpers/kube-hub.ts';
import { freePort, waitUntil } from './helpers/net.ts';

const CLI = join(import.meta.dirname, '..', 'hub', 'cli.ts');

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

test('SIGTERM while the hub is still starting stops the proxy it started, and frees its ports', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'clusterhub-sigterm-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // An API server that accepts connections and never answers: the start stays in its reconcile.
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  silent.listen({ host: '127.0.0.1', port: 0 });
  await once(silent, 'listening');
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const kubeconfig = join(dir, 'kubeconfig.json');
  await writeFile(kubeconfig, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'c',
    clusters: [{ name: 'c', cluster: { server: `https://127.0.0.1:${(silent.address() as { port: number }).port}`, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'u', user: { token: 'nobody' } }],
    contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
  }));
  const config = await kubeHubConfig({ stateDir: join(dir, 'state'), kubeconfig, prefix: 'sigterm' });
  const file = join(dir, 'clusterhub.json');
  await writeFile(file, JSON.stringify(config));

  const hub = spawn(process.execPath, [CLI, 'start', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  hub.stdout.on('data', (d) => (output += d));
  hub.stderr.on('data', (d) => (output += d));
  const exited = once(hub, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  t.teardown(() => void hub.kill('SIGKILL'));
  // The proxy answers for the hub: both are up, and the hub is still waiting for its backend.
  await waitUntil('the proxy to answer', async () => (await fetch(`http://127.0.0.1:${config.hub.port}/hub/health`)).status === 200, { timeoutMs: 60_000, intervalMs: 100 });
  const [proxyPid] = childPids(hub.pid!);
  t.truthy(proxyPid, 'the hub started a proxy');
  t.notRegex(output, /clusterhub is up/);

  hub.kill('SIGTERM');
  const [code, signal] = await exited;
  t.deepEqual({ code, signal }, { code: 0, signal: null }, output.slice(-2000));
  t.regex(output, /SIGTERM while starting: stopping what was started/);
  t.false(alive(proxyPid!), 'the proxy was stopped before the hub exited');
  t.true(await portFree(config.hub.port), 'the public port is free for the next start');
  t.true(await portFree(config.hub.port + 1), 'and so is the proxy API port');
});

// A service manager, `kill <pid>` or a terminal closing sends SIGTERM to npm alone, not to its
// process group. npm hands it to the script's process: the hub itself, not a shell around it
// that would die and leave the hub and its proxy running, holding the ports.
test('npm start ended by SIGTERM to npm alone stops the hub and its proxy, and frees the ports', async (t) => {
  const dir = await freshCopy();
  t.teardown(async () => {
    await killProcessesUnder(dir);
    await removeCopy(dir);
  });
  const port = await adjacentPorts();
  const env = { ...process.env, CLUSTERHUB_HUB_PORT: String(port), CLUSTERHUB_HUB_HUB_PORT: String(await freePort()) };
  const npm = spawn('npm', ['start'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  npm.stdout.on('data', (d) => (output += d));
  npm.stderr.on('data', (d) => (output += d));
  const npmExited = once(npm, 'exit');
  await waitUntil('the hub to say it runs', () => /clusterhub is running/.test(output) || npm.exitCode !== null, { timeoutMs: 180_000, intervalMs: 100 });
  t.regex(output, /clusterhub is running/, output.slice(-2000));
  const hubPids = (await processesUnder(dir)).map((line) => Number(line.split(':')[0])).filter((pid) => pid !== npm.pid);
  t.true(hubPids.length >= 2, `the hub and its proxy run from the copy: ${hubPids.join(', ')}`);

  npm.kill('SIGTERM');
  await npmExited;
  const left = await waitUntil('every process started by npm start to end', async () => {
    const running = await processesUnder(dir);
    return running.length === 0 ? running : undefined;
  }, { timeoutMs: 30_000 }).catch(() => processesUnder(dir));
  t.deepEqual(left, [], output.slice(-2000));
  t.regex(output, /SIGTERM: stopping the hub/, 'the hub itself got the signal and shut down');
  t.true(await portFree(port), 'the public port is free for the next start');
  t.true(await portFree(port + 1), 'and so is the proxy API port');
});

test('/hub/health reports the managed proxy: 503 with the reason while it cannot come back, 200 once it is back', async (t) => {
  const hub = await startTestHub({ backend: new EchoBackend() });
  t.teardown(() => hub.destroy());
  const health = async () => {
    const res = await fetch(`${hub.hubUrl}/hub/health`);
    return { status: res.status, body: (await res.json()) as { status: string; proxy: { state: string; lastError?: string; restarts: number; pid?: number } } };
  };
  t.like(await health(), { status: 200, body: { status: 'ok', proxy: { mode: 'managed', state: 'running', restarts: 0 } } });

  // The proxy dies and something takes its public port: it cannot come back for now.
  const squatter = createServer();
  hub.supervisor!.once('exit', () => squatter.listen({ host: '127.0.0.1', port: hub.config.hub.port, exclusive: true }));
  process.kill(hub.supervisor!.pid!, 'SIGKILL');
  const down = await waitUntil('health to report the proxy down', async () => {
    const h = await health();
    return h.status === 503 && /not available/.test(h.body.proxy.lastError ?? '') && h;
  }, { timeoutMs: 30_000 });
  t.like(down.body, { status: 'degraded', proxy: { state: 'restarting' } });
  t.regex(down.body.proxy.lastError!, new RegExp(`public port 127\\.0\\.0\\.1:${hub.config.hub.port} is not available \\(EADDRINUSE\\)`));
  t.is(down.body.proxy.pid, undefined);

  await new Promise<void>((resolve) => squatter.close(() => resolve()));
  const up = await waitUntil('health to report the proxy back', async () => {
    const h = await health();
    return h.status === 200 && h;
  }, { timeoutMs: 30_000 });
  t.like(up.body, { status: 'ok', proxy: { state: 'running', restarts: 1 } });
  t.is((await fetch(`${hub.publicUrl}/hub/health`)).status, 200, 'students reach the hub again');
});

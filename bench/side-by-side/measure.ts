/** What the hub benchmark measures on one running hub (either one: they share the shape). */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { api, routes } from './http.ts';
import type { HubUnderTest } from './hubs.ts';
import { waitUntil } from '../../test/helpers/net.ts';

const run = promisify(execFile);

/** Resident memory of a process in MiB (VmRSS). */
export function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  if (!line) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(line.split(/\s+/)[1]) / 1024;
}

/** Resolves when `done(routes)` holds, reading the proxy's table back to back (a loaded machine takes minutes). */
async function untilRoutes(hub: HubUnderTest, done: (table: Record<string, unknown>) => boolean, what: string, timeoutMs = 300_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (done(await routes(hub.proxyApiUrl, hub.proxyToken))) return;
  }
  throw new Error(`${hub.name}: ${what} not reached within ${timeoutMs / 1000}s`);
}

async function send(hub: HubUnderTest, method: 'POST' | 'DELETE', user: string): Promise<void> {
  const res = await api(hub.apiUrl, hub.token, method, hub.serverPath(user), method === 'POST' ? hub.launchBody : undefined);
  if (res.status >= 300) throw new Error(`${hub.name}: ${method} ${hub.serverPath(user)} → ${res.status} ${res.text.slice(0, 200)}`);
}

/** Launch requests for `users` at once → every `/user/{name}` route in the proxy. */
export async function launchAll(hub: HubUnderTest, users: string[]): Promise<number> {
  const started = performance.now();
  await Promise.all(users.map((u) => send(hub, 'POST', u)));
  await untilRoutes(hub, (t) => users.every((u) => `/user/${u}` in t || `/user/${u}/` in t), `${users.length} routes`);
  return performance.now() - started;
}

/** Stop requests for `users` at once → none of their routes left. */
export async function stopAll(hub: HubUnderTest, users: string[]): Promise<number> {
  const started = performance.now();
  await Promise.all(users.map((u) => send(hub, 'DELETE', u)));
  await untilRoutes(hub, (t) => users.every((u) => !(`/user/${u}` in t) && !(`/user/${u}/` in t)), `${users.length} routes gone`);
  const elapsed = performance.now() - started;
  // Not timed: a stop answered 202 may still be finishing; the next round must not find it running.
  await untilNoneActive(hub);
  return elapsed;
}

async function untilNoneActive(hub: HubUnderTest, timeoutMs = 300_000): Promise<void> {
  await waitUntil(`${hub.name}: no server active after the stops`, async () => {
    const res = await api(hub.apiUrl, hub.token, 'GET', '/users?state=active&limit=1');
    return res.status === 200 && (JSON.parse(res.text) as unknown[]).length === 0;
  }, { timeoutMs, intervalMs: 200 });
}

export interface LoadResult {
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  timeouts: number;
  errors: number;
  bytesPerReply: number;
}

/** wrk's latency figure (`1.23ms`, `456.00us`, `2.01s`) in ms. */
function ms(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) throw new Error(`unreadable wrk latency: ${text}`);
  const scale = { us: 0.001, ms: 1, s: 1000, m: 60_000 }[m[2] as 'us' | 'ms' | 's' | 'm'];
  return Number(m[1]) * scale;
}

/** `wrk -t2 -c16 --latency` (or `connections`) against one API path for `seconds`. */
export async function load(hub: HubUnderTest, path: string, seconds = 10, connections = 16): Promise<LoadResult> {
  const url = `${hub.apiUrl}${path}`;
  const probe = await api(hub.apiUrl, hub.token, 'GET', path);
  if (probe.status !== 200) throw new Error(`${hub.name}: GET ${path} → ${probe.status} ${probe.text.slice(0, 200)}`);
  const { stdout } = await run('wrk', [`-t${Math.min(2, connections)}`, `-c${connections}`, `-d${seconds}s`, '--timeout', '2s', '--latency', '-H', `Authorization: token ${hub.token}`, url], { maxBuffer: 1 << 20 })
    .catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new Error('the hub bench loads the API with wrk, which is not on PATH (Debian: apt-get install wrk)');
      throw err;
    });
  const pick = (re: RegExp) => re.exec(stdout)?.[1];
  const errorsLine = /Non-2xx or 3xx responses: (\d+)/.exec(stdout);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  return {
    reqPerSec: Number(pick(/Requests\/sec:\s+([\d.]+)/)),
    p50Ms: ms(pick(/^\s+50%\s+(\S+)/m) ?? 'NaNms'),
    p99Ms: ms(pick(/^\s+99%\s+(\S+)/m) ?? 'NaNms'),
    maxMs: ms(/Latency\s+\S+\s+\S+\s+(\S+)/.exec(stdout)?.[1] ?? 'NaNms'),
    timeouts: Number(socket?.[4] ?? 0),
    errors: Number(errorsLine?.[1] ?? 0) + Number(socket?.[1] ?? 0) + Number(socket?.[2] ?? 0) + Number(socket?.[3] ?? 0),
    bytesPerReply: Buffer.byteLength(probe.text),
  };
}

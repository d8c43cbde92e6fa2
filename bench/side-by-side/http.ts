/** HTTP helpers of the side-by-side benchmarks (both hubs speak token-authenticated JSON). */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface Reply {
  status: number;
  text: string;
}

/** One API request with `Authorization: token …`. */
export async function api(base: string, token: string, method: string, path: string, body?: unknown): Promise<Reply> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: `token ${token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}

/** The route table of a configurable-http-proxy. */
export async function routes(proxyApiUrl: string, proxyToken: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${proxyApiUrl}/api/routes`, { headers: { Authorization: `token ${proxyToken}` } });
  if (res.status !== 200) throw new Error(`CHP /api/routes: ${res.status}`);
  return (await res.json()) as Record<string, unknown>;
}

/**
 * Resolves when `GET {api}/user` answers 200: the moment a client can use the hub. Polls
 * back to back (no pause), so the reading is as close to the real moment as the loop allows.
 */
export async function waitForApi(apiUrl: string, token: string, child: ChildProcess, logFile: string, timeoutMs = 120_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the hub exited (${child.exitCode}) before its API answered:\n${tail(logFile)}`);
    try {
      const res = await api(apiUrl, token, 'GET', '/user');
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`the hub's API did not answer within ${timeoutMs / 1000}s:\n${tail(logFile)}`);
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-25).join('\n');
  } catch {
    return '(no log)';
  }
}

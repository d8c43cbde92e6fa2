/**
 * Loopback networking for tests: free ports and a tiny HTTP server that says who it is,
 * so a test can tell where a request through the proxy ended up.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { testPorts } from './ports.ts';
import { setTimeout as delay } from 'node:timers/promises';

/** A port nobody listens on, outside the ephemeral range (./ports.ts); listen on 0 where you can instead. */
export async function freePort(): Promise<number> {
  return (await testPorts(1))[0]!;
}

/** A request as the target saw it. */
export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
}

export interface HttpTarget {
  /** `http://127.0.0.1:{port}` */
  url: string;
  port: number;
  /** Every request so far, oldest first. */
  requests: SeenRequest[];
  close(): Promise<void>;
}

/**
 * Start an HTTP server on 127.0.0.1 and a free port. By default it answers every request
 * with 200 and JSON `{name, method, url}`; pass `handler` to answer differently.
 */
export async function startHttpTarget(
  name: string,
  handler?: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<HttpTarget> {
  const requests: SeenRequest[] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers });
    if (handler) return handler(req, res);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ name, method: req.method, url: req.url }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/**
 * Poll `check` until it returns a value other than `undefined`/`false`, at most `timeoutMs`.
 * For state that has no event to await (another process's port, a file); the error names `what`.
 */
export async function waitUntil<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs = 10_000, intervalMs = 50 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await delay(intervalMs);
  }
}

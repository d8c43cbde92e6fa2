/**
 * The hub's HTTP client for its own short calls (the proxy's REST API, Jupyter's status API):
 * node:http with kept-alive connections, not `fetch`.
 *
 * `fetch` (Node's bundled undici) sets itself up on first use: web streams, its own
 * WebAssembly HTTP parser, a connection pool. Measured in the hub that is about 15-20 MiB of
 * resident memory that stays, and a few hundred milliseconds of a start on a busy 2-core
 * machine, for what node:http (loaded anyway: the hub is an HTTP server) does with plain
 * requests.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';

export interface HttpCall {
  method?: string;
  headers?: Record<string, string>;
  /** Sent as is (the caller sets Content-Type). */
  body?: string;
  /** Give up after this long, from the request to the last byte of the answer. */
  timeoutMs: number;
  /** Read at most this many bytes of the answer (default 16 MiB); more is an error. */
  maxBytes?: number;
}

export interface HttpReply {
  status: number;
  statusText: string;
  headers: IncomingMessage['headers'];
  text: string;
}

/** No complete answer within the time given; `name` is `TimeoutError`, as `fetch` says it. */
export class HttpTimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

/** A request that got no answer: `code` is Node's (ECONNREFUSED, ECONNRESET, ...) when it has one. */
export interface HttpFailure extends Error {
  code?: string;
}

const agents: { http?: HttpAgent; https?: HttpsAgent } = {};

function agentFor(protocol: string): Promise<HttpAgent | HttpsAgent> | HttpAgent {
  if (protocol === 'http:') return (agents.http ??= new HttpAgent({ keepAlive: true }));
  if (protocol !== 'https:') throw new TypeError(`not an http(s) URL: ${protocol}`);
  // node:https (and TLS) only for a deployment that asks for it.
  return import('node:https').then(({ Agent }) => (agents.https ??= new Agent({ keepAlive: true })));
}

/**
 * One request; resolves with the whole answer (any status), rejects when there is none.
 * A kept-alive connection that the server closed just as it was reused is retried once on a
 * fresh one (every call the hub makes this way is idempotent).
 */
export async function request(url: string | URL, call: HttpCall): Promise<HttpReply> {
  const target = typeof url === 'string' ? new URL(url) : url;
  const agent = await agentFor(target.protocol);
  const send = target.protocol === 'https:' ? (await import('node:https')).request : httpRequest;
  const deadline = Date.now() + call.timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await once(send, target, agent, call, Math.max(1, deadline - Date.now()));
    } catch (err) {
      if (attempt === 0 && (err as { reused?: boolean }).reused) continue;
      throw err;
    }
  }
}

function once(send: typeof httpRequest, url: URL, agent: HttpAgent | HttpsAgent, call: HttpCall, timeoutMs: number): Promise<HttpReply> {
  const maxBytes = call.maxBytes ?? 16 * 1024 * 1024;
  return new Promise<HttpReply>((resolve, reject) => {
    const headers: Record<string, string | number> = { ...call.headers };
    if (call.body !== undefined) headers['Content-Length'] = Buffer.byteLength(call.body);
    const options: RequestOptions = { method: call.method ?? 'GET', headers, agent: agent as HttpAgent };
    const req = send(url, options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) req.destroy(new Error(`the answer is larger than ${maxBytes} bytes`));
        else chunks.push(chunk);
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', headers: res.headers, text: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', fail);
    });
    const timer = setTimeout(() => req.destroy(new HttpTimeoutError(`no answer within ${timeoutMs} ms`)), timeoutMs);
    function fail(err: Error): void {
      clearTimeout(timer);
      // Reset before a byte of the answer on a reused connection: the server had just closed it.
      const code = (err as HttpFailure).code;
      if (req.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE')) Object.assign(err, { reused: true });
      reject(err);
    }
    req.on('error', fail);
    req.end(call.body);
  });
}

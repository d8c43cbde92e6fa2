/**
 * The hub's client of configurable-http-proxy's REST API (the `Proxy` contract).
 * Running a managed proxy is `supervisor.ts`; repairing routes is `route-sync.ts`.
 */
import { request } from '../shared/http.ts';
import type { Proxy, RouteInfo } from './types.ts';

export interface ChpClientOptions {
  /** Base URL of the REST API, e.g. `http://127.0.0.1:8001` (no `/api/routes`). */
  apiUrl: string;
  /** CONFIGPROXY_AUTH_TOKEN. */
  authToken: string;
  /** Give up on one API request after this long (default 10 s). */
  timeoutMs?: number;
}

/** A failed call to the proxy API: says which call, and what the proxy answered. */
export class ProxyApiError extends Error {
  /** HTTP status, or 0 when the proxy could not be reached. */
  readonly status: number;
  readonly method: string;
  readonly path: string;
  constructor(method: string, path: string, status: number, detail: string) {
    super(`configurable-http-proxy ${method} ${path} failed: ${detail}`);
    this.name = 'ProxyApiError';
    this.status = status;
    this.method = method;
    this.path = path;
  }
}

/** Talks to configurable-http-proxy's REST API with `Authorization: token …`. */
export class ChpClient implements Proxy {
  readonly apiUrl: string;
  readonly #authToken: string;
  readonly #timeoutMs: number;

  constructor(options: ChpClientOptions) {
    const url = new URL(options.apiUrl);
    this.apiUrl = url.href.replace(/\/+$/, '');
    this.#authToken = options.authToken;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** `POST /api/routes{path}` with `{...data, target}`; the proxy answers 201. */
  async addRoute(path: string, target: string, data: Record<string, unknown> = {}): Promise<void> {
    await this.#request('POST', routesPath(path), [201], { ...data, target });
  }

  /** `DELETE /api/routes{path}`. A route that is already gone counts as deleted. */
  async deleteRoute(path: string): Promise<void> {
    await this.#request('DELETE', routesPath(path), [204, 404]);
  }

  /** `GET /api/routes[?inactive_since=ISO]`: every route, or those idle since the date. */
  async getRoutes(inactiveSince?: Date): Promise<Record<string, RouteInfo>> {
    const query = inactiveSince ? `?inactive_since=${encodeURIComponent(inactiveSince.toISOString())}` : '';
    const path = `/api/routes${query}`;
    const body = await this.#request('GET', path, [200]);
    try {
      return JSON.parse(body) as Record<string, RouteInfo>;
    } catch {
      throw new ProxyApiError('GET', path, 200, `the answer is not JSON: ${body.slice(0, 100)}`);
    }
  }

  /** One API call; resolves with the body of an expected answer (read in full, so the connection is reused). */
  async #request(method: string, path: string, ok: number[], body?: unknown): Promise<string> {
    const headers: Record<string, string> = { Authorization: `token ${this.#authToken}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(this.apiUrl + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), timeoutMs: this.#timeoutMs });
    } catch (err) {
      throw new ProxyApiError(method, path, 0, unreachable(err, this.apiUrl, this.#timeoutMs));
    }
    const text = res.text;
    if (ok.includes(res.status)) return text;
    const hint = res.status === 403 ? ' (the auth token does not match CONFIGPROXY_AUTH_TOKEN)' : '';
    const said = text.trim().slice(0, 200);
    throw new ProxyApiError(method, path, res.status, `${res.status} ${res.statusText}${hint}${said ? `: ${said}` : ''}`);
  }
}

/** `/user/a b/` → `/api/routes/user/a%20b/`: CHP decodes the path it receives. */
function routesPath(path: string): string {
  if (!path.startsWith('/')) throw new TypeError(`route path must start with "/": ${JSON.stringify(path)}`);
  return '/api/routes' + path.split('/').map(encodeURIComponent).join('/');
}

/** Words for a request that got no answer: timeout, refused, or whatever Node said. */
function unreachable(err: unknown, apiUrl: string, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; code?: string };
  if (e.name === 'TimeoutError') return `no answer from ${apiUrl} within ${timeoutMs} ms`;
  return `cannot reach ${apiUrl}: ${e.code ?? e.message ?? String(err)}`;
}

/**
 * Asks a cluster's Jupyter Server for its own view of activity: `GET {base}api/status`
 * (last activity, kernels, connections) and, when there are kernels, `GET {base}api/kernels`
 * for busy ones. Asking never counts as activity: Jupyter is asked directly, not through
 * the proxy, and with `no_track_activity` (Jupyter Server's flag for exactly this).
 * Never throws: a Jupyter that cannot be asked is `{unreachable: why}`.
 */
import { request } from '../shared/http.ts';
import type { CullCandidate, JupyterActivity } from './types.ts';

export interface ActivityOptions {
  /** Give up on each request after this long (default 5 s). */
  timeoutMs?: number;
}

/** Jupyter's last activity, kernels, busy kernels and open connections, or why it could not be asked. */
export async function fetchActivity(
  cluster: Pick<CullCandidate, 'url' | 'baseUrl' | 'jupyterToken'>,
  options: ActivityOptions = {},
): Promise<JupyterActivity> {
  if (!cluster.url) return { unreachable: 'the cluster has no URL yet' };
  const get = (path: string) => getJson(jupyterApiUrl(cluster.url!, cluster.baseUrl, path), cluster.jupyterToken, options);

  const status = await get('api/status?no_track_activity=1');
  if ('unreachable' in status) return status;
  const body = status.body as { last_activity?: unknown; kernels?: unknown; connections?: unknown };
  const lastActivity = typeof body.last_activity === 'string' ? new Date(body.last_activity) : null;
  if (!lastActivity || Number.isNaN(lastActivity.getTime())) {
    return { unreachable: `${status.url} has no valid last_activity (is it a Jupyter Server?)` };
  }
  const kernels = count(body.kernels);
  const connections = count(body.connections);
  if (kernels === 0) return { lastActivity, kernels, busyKernels: 0, connections };

  const list = await get('api/kernels?no_track_activity=1');
  if ('unreachable' in list) return list;
  if (!Array.isArray(list.body)) return { unreachable: `${list.url} did not answer with a list of kernels` };
  const busyKernels = list.body.filter((k) => (k as { execution_state?: unknown })?.execution_state === 'busy').length;
  return { lastActivity, kernels, busyKernels, connections };
}

/** `http://h:p` + `/user/a/` + `api/status` → `http://h:p/user/a/api/status` (CHP keeps the prefix). */
export function jupyterApiUrl(url: string, baseUrl: string, path: string): string {
  const parts = [url.replace(/\/+$/, ''), baseUrl.replace(/^\/+|\/+$/g, ''), path].filter((p) => p !== '');
  return parts.join('/');
}

async function getJson(url: string, token: string, options: ActivityOptions): Promise<{ url: string; body: unknown } | { unreachable: string }> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  try {
    // Redirects are not followed: Jupyter answers its API itself.
    const res = await request(url, { headers: { Authorization: `token ${token}`, Accept: 'application/json' }, timeoutMs });
    if (res.status !== 200) {
      const hint = res.status === 403 || res.status === 401 ? ' (the Jupyter token was refused)' : '';
      return { unreachable: `${url} answered ${res.status}${hint}` };
    }
    return { url, body: JSON.parse(res.text) as unknown };
  } catch (err) {
    return { unreachable: describe(err, url, timeoutMs) };
  }
}

/** A non-negative integer from Jupyter's JSON, 0 when absent. */
function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0;
}

function describe(err: unknown, url: string, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; code?: string };
  if (e.name === 'TimeoutError') return `no answer from ${url} within ${timeoutMs} ms`;
  if (e.name === 'SyntaxError') return `${url} did not answer JSON`;
  return `cannot reach ${url}: ${e.code ?? e.message ?? String(err)}`;
}

/** The hub's REST API as a script would call it: JSON through the proxy with an API token. */
import type { SweepReport } from '../../culler/types.ts';
import type { TestHub } from './hub.ts';

/** A JSON request to `path` on the hub's public address, authenticated with `token`. */
export function apiAs(hub: TestHub, token: string, path: string, init: { method?: string; json?: unknown } = {}): Promise<Response> {
  return fetch(`${hub.publicUrl}${path}`, {
    method: init.method ?? 'GET',
    headers: { Authorization: `token ${token}`, 'Content-Type': 'application/json' },
    body: init.json === undefined ? undefined : JSON.stringify(init.json),
  });
}

/** `POST /hub/api/cull` with an admin's token; the sweep's report. */
export async function cullNow(hub: TestHub, adminToken: string, body: { dry_run?: boolean } = {}): Promise<SweepReport> {
  const res = await apiAs(hub, adminToken, '/hub/api/cull', { method: 'POST', json: body });
  if (res.status !== 200) throw new Error(`POST /hub/api/cull: ${res.status} ${await res.text()}`);
  return (await res.json()) as SweepReport;
}

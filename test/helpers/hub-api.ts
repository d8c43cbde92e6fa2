/** The hub's REST API as a script would call it: JSON through the proxy with an API token. */
import { setTimeout as delay } from 'node:timers/promises';
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

/**
 * Sends `request` twice a second until the returned function is called; that function
 * resolves with every status seen (0 when the request failed).
 */
export function trafficLoop(request: () => Promise<Response>): () => Promise<number[]> {
  const statuses: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const res = await request().catch(() => undefined);
      statuses.push(res?.status ?? 0);
      await res?.body?.cancel();
      await delay(500); // the pace of the traffic, not a wait for state
    }
  })();
  return async () => {
    running = false;
    await loop;
    return statuses;
  };
}

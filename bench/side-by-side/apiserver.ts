/** What the Kubernetes benchmarks read from the test plane's API server. */
import { KubeConfig } from '@kubernetes/client-node';
import { request } from 'node:https';

async function metricsText(kc: KubeConfig): Promise<string> {
  const url = new URL('/metrics', kc.getCurrentCluster()!.server);
  const opts: Parameters<typeof request>[1] = { method: 'GET' };
  await kc.applyToHTTPSOptions(opts);
  const text = await new Promise<string>((resolve, reject) => {
    const req = request(url, opts, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`/metrics: HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
  return text;
}

/** `apiserver_request_total` summed by "verb resource[/subresource]" (every client of the plane). */
export async function apiRequestsByKind(kc: KubeConfig): Promise<Map<string, number>> {
  const byKind = new Map<string, number>();
  for (const line of (await metricsText(kc)).split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const label = (name: string) => new RegExp(`[{,]${name}="([^"]*)"`).exec(line)?.[1] ?? '';
    const sub = label('subresource');
    const kind = `${label('verb')} ${label('resource')}${sub ? `/${sub}` : ''}`;
    byKind.set(kind, (byKind.get(kind) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return byKind;
}

/** Sum of `apiserver_request_total` over every label set (every client of the plane). */
export async function apiRequests(kc: KubeConfig): Promise<number> {
  let total = 0;
  for (const n of (await apiRequestsByKind(kc)).values()) total += n;
  return total;
}

/** What `after` counted more than `before`, per launch, largest first: "12 create events, …". */
export function kindsPerLaunch(before: Map<string, number>, after: Map<string, number>, launches: number): string {
  return [...after]
    .map(([kind, n]) => [kind, (n - (before.get(kind) ?? 0)) / launches] as const)
    .filter(([, n]) => n >= 0.05)
    .sort((a, b) => b[1] - a[1])
    .map(([kind, n]) => `${Number(n.toFixed(1))} ${kind}`)
    .join(', ');
}

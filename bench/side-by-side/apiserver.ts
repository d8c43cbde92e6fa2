/** What the Kubernetes benchmarks read from the test plane's API server. */
import { KubeConfig } from '@kubernetes/client-node';
import { request } from 'node:https';

/** Sum of `apiserver_request_total` over every label set (every client of the plane). */
export async function apiRequests(kc: KubeConfig): Promise<number> {
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
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('apiserver_request_total{')) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

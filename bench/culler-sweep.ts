/**
 * Time of one cull sweep over 1,000 clusters: the hub's candidates, 1,000 routes in a real
 * configurable-http-proxy, Jupyter unreachable (nothing listens, as on fake nodes).
 *
 *   node bench/culler-sweep.ts [clusters=1000] [concurrency=10]
 *
 * Scenarios: everyone active (the proxy alone decides), everyone idle as a dry run (each
 * cluster's Jupyter is asked), and a real sweep that culls everyone through the stop path.
 */
import { Culler } from '../culler/job.ts';
import { forEachLimit } from '../culler/limit.ts';
import { candidate, cullerConfig, deadUrl, StandInHub, startProxy } from '../test/helpers/culler.ts';
import { silentLogger } from '../shared/log.ts';

const count = Number(process.argv[2] ?? 1000);
const concurrency = Number(process.argv[3] ?? 10);

const proxy = await startProxy();
try {
  const dead = await deadUrl();
  const clusters = Array.from({ length: count }, (_, i) => candidate(`student-${String(i).padStart(4, '0')}`, dead));
  const hub = new StandInHub(proxy.client, clusters);
  const t0 = performance.now();
  await forEachLimit(clusters, 20, (c) => proxy.client.addRoute(c.routePath, dead, { user: c.user }));
  console.log(`${count} routes added to configurable-http-proxy in ${ms(performance.now() - t0)}`);

  const clock = { skewSeconds: 0 };
  const culler = new Culler(hub.deps(silentLogger(), () => new Date(Date.now() + clock.skewSeconds * 1000)),
    cullerConfig({ idleTimeoutSeconds: 3600, concurrency }));

  await time('all active (proxy decides, Jupyter not asked)', 5, () => culler.sweep(), (r) => r.culled.length === 0);
  clock.skewSeconds = 7200;
  await time('all idle, dry run (Jupyter asked, unreachable)', 5, () => culler.sweep({ dryRun: true }), (r) => r.culled.length === count);
  await time('all idle, culled through the stop path', 1, () => culler.sweep({ dryRun: false }), (r) => hub.stopped.length === count && r.errors.length === 0);
  await time('nothing left', 3, () => culler.sweep(), (r) => r.clusters.length === 0);
} finally {
  await proxy.stop();
}

/** Run `fn` `runs` times; print min and median; check each report. */
async function time<T>(label: string, runs: number, fn: () => Promise<T>, ok: (r: T) => boolean): Promise<void> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    const report = await fn();
    times.push(performance.now() - start);
    if (!ok(report)) throw new Error(`${label}: unexpected report ${JSON.stringify(report).slice(0, 500)}`);
  }
  times.sort((a, b) => a - b);
  console.log(`${label.padEnd(52)} ${count} clusters, concurrency ${concurrency}: min ${ms(times[0]!)}, median ${ms(times[Math.floor(times.length / 2)]!)} per sweep`);
}

function ms(n: number): string {
  return `${n.toFixed(0)} ms`;
}

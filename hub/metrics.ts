/** Prometheus metrics of one hub (its own registry, so tests can run several hubs). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ManagerMetrics } from '../spawner/manager-metrics.ts';

export interface HubMetrics extends ManagerMetrics {
  readonly registry: Registry;
  routeRepairs(kind: 'added' | 'fixed' | 'removed', count: number): void;
  culled(count: number): void;
  /** One request the Kubernetes backend sent to the API server (retries included), by what it was. */
  kubernetesRequest(what: string): void;
}

/** Creates the hub's metrics; `process: true` adds Node's process metrics. */
export function createMetrics(options: { process?: boolean } = {}): HubMetrics {
  const registry = new Registry();
  if (options.process) collectDefaultMetrics({ register: registry, prefix: 'clusterhub_' });
  const started = new Counter({ name: 'clusterhub_spawns_started_total', help: 'Launches started', registers: [registry] });
  const succeeded = new Counter({ name: 'clusterhub_spawns_succeeded_total', help: 'Launches that became ready', registers: [registry] });
  const failed = new Counter({ name: 'clusterhub_spawns_failed_total', help: 'Launches that failed or timed out, by reason', labelNames: ['reason'], registers: [registry] });
  const duration = new Histogram({
    name: 'clusterhub_spawn_duration_seconds', help: 'Time from Launch to ready (or failure)', labelNames: ['outcome'],
    buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600], registers: [registry],
  });
  const active = new Gauge({ name: 'clusterhub_active_clusters', help: 'Running clusters', registers: [registry] });
  const repairs = new Counter({ name: 'clusterhub_proxy_route_repairs_total', help: 'Routes put back, corrected or removed by route sync', labelNames: ['kind'], registers: [registry] });
  const culls = new Counter({ name: 'clusterhub_culled_total', help: 'Clusters stopped by the idle culler', registers: [registry] });
  const kubeRequests = new Counter({
    name: 'clusterhub_kubernetes_api_requests_total', help: 'Requests the Kubernetes backend sent to the API server, retries included, by request (`create namespace`…)',
    labelNames: ['request'], registers: [registry],
  });
  return {
    registry,
    launchStarted: () => started.inc(),
    launchSucceeded: (seconds) => {
      succeeded.inc();
      duration.observe({ outcome: 'ready' }, seconds);
    },
    launchFailed: (seconds, reason) => {
      failed.inc({ reason });
      duration.observe({ outcome: 'failed' }, seconds);
    },
    activeClusters: (count) => active.set(count),
    routeRepairs: (kind, count) => {
      if (count > 0) repairs.inc({ kind }, count);
    },
    culled: (count) => culls.inc(count),
    kubernetesRequest: (what) => kubeRequests.inc({ request: what }),
  };
}

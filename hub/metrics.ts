/**
 * Prometheus metrics of one hub (its own registry, so tests can run several hubs).
 *
 * prom-client (with the OpenTelemetry API it requires: ~90 modules) is not needed to answer
 * requests, so it is not loaded at start: the hub asks for the registry once it is up (and a
 * scrape would load it if that had not happened yet). Until it is loaded, every update is kept in order
 * and applied to the real metrics when they exist, so nothing counted at start is lost.
 */
import type { Registry } from 'prom-client';
import type { ManagerMetrics } from '../spawner/manager-metrics.ts';

export interface HubMetrics extends ManagerMetrics {
  /** The registry (loads prom-client if it is not loaded yet). */
  registry(): Promise<Registry>;
  routeRepairs(kind: 'added' | 'fixed' | 'removed', count: number): void;
  culled(count: number): void;
  /** One request the Kubernetes backend sent to the API server (retries included), by what it was. */
  kubernetesRequest(what: string): void;
}

type Updates = Omit<HubMetrics, 'registry'>;

async function realMetrics(options: { process?: boolean }): Promise<{ registry: Registry; updates: Updates }> {
  const { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } = await import('prom-client');
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
    updates: {
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
    },
  };
}

/** Creates the hub's metrics; `process: true` adds Node's process metrics. */
export function createMetrics(options: { process?: boolean } = {}): HubMetrics {
  let real: Updates | undefined;
  let loading: Promise<Registry> | undefined;
  const pending: Array<(m: Updates) => void> = [];
  const load = (): Promise<Registry> => (loading ??= realMetrics(options).then(({ registry, updates }) => {
    for (const update of pending.splice(0)) update(updates);
    real = updates;
    return registry;
  }));
  const update = (apply: (m: Updates) => void): void => {
    if (real) apply(real);
    else pending.push(apply);
  };
  return {
    registry: load,
    launchStarted: () => update((m) => m.launchStarted()),
    launchSucceeded: (seconds) => update((m) => m.launchSucceeded(seconds)),
    launchFailed: (seconds, reason) => update((m) => m.launchFailed(seconds, reason)),
    activeClusters: (count) => update((m) => m.activeClusters(count)),
    routeRepairs: (kind, count) => update((m) => m.routeRepairs(kind, count)),
    culled: (count) => update((m) => m.culled(count)),
    kubernetesRequest: (what) => update((m) => m.kubernetesRequest(what)),
  };
}

/**
 * The fixed ports of a cluster inside its namespace and the environment the image's
 * entrypoint reads (images/cluster/README.md). Inside a pod nothing else listens, so every
 * cluster uses the same numbers and the Service names them.
 */
import type { V1EnvVar } from '@kubernetes/client-node';

/** First port of the IPython Parallel controller's block. */
export const IPP_FIRST_PORT = 10101;
/** Ports in the IPython Parallel block (the image wants at least 14: registration, heartbeat, mux, task…). */
export const IPP_PORT_COUNT = 16;

/**
 * Service/container port names (≤ 15 characters) → numbers. IPython Parallel's controller
 * gets a fixed block (10101–10116, `ipp-0`…`ipp-15`) so engines on workers reach it through
 * the Service.
 */
export const PORTS = {
  jupyter: 8888,
  dask: 8786,
  'dask-dashboard': 8787,
  spark: 7077,
  'spark-ui': 8080,
  ...ippPorts(),
} as const;

function ippPorts(): Record<string, number> {
  const ports: Record<string, number> = {};
  for (let i = 0; i < IPP_PORT_COUNT; i++) ports[`ipp-${i}`] = IPP_FIRST_PORT + i;
  return ports;
}

/** What differs between the two modes of the one image. */
export interface PodEnvOptions {
  mode: 'scheduler' | 'worker';
  baseUrl: string;
  /** `scheduler.{namespace}.svc` */
  schedulerHost: string;
  /** Dask threads per worker (from the worker's CPU); the scheduler gets it too, for Spark's executors. */
  threads?: number;
  /** A worker container's memory (its limit), e.g. `4Gi`; the scheduler gets it too, for Spark's executors. */
  memory?: string;
}

/** The entrypoint's variables for a pod (the token comes separately, from the Secret). */
export function podEnv(options: PodEnvOptions): V1EnvVar[] {
  const env: Record<string, string> = {
    CLUSTER_SCHEDULER_HOST: options.schedulerHost,
    CLUSTER_BASE_URL: options.baseUrl,
    CLUSTER_JUPYTER_PORT: String(PORTS.jupyter),
    CLUSTER_DASK_PORT: String(PORTS.dask),
    CLUSTER_DASK_DASHBOARD_PORT: String(PORTS['dask-dashboard']),
    CLUSTER_SPARK_PORT: String(PORTS.spark),
    CLUSTER_SPARK_UI_PORT: String(PORTS['spark-ui']),
    CLUSTER_IPP_PORTS: `${IPP_FIRST_PORT}-${IPP_FIRST_PORT + IPP_PORT_COUNT - 1}`,
    CLUSTER_WORKSPACE: '/workspace',
    CLUSTER_RUNTIME_DIR: '/tmp/clusterhub',
  };
  if (options.threads !== undefined) env['CLUSTER_THREADS'] = String(options.threads);
  if (options.memory !== undefined) env['CLUSTER_MEMORY'] = options.memory;
  return [
    // The pod IP rather than 0.0.0.0: the entrypoint advertises its bind address to the other
    // pods (Spark, IPython), and pod hostnames do not resolve across pods. Probes and the
    // Service reach the pod IP; the NetworkPolicy decides who may connect.
    { name: 'CLUSTER_BIND', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    ...Object.entries(env).map(([name, value]) => ({ name, value })),
  ];
}

/** Whole CPUs for a Kubernetes quantity (`500m` → 1, `2` → 2, `2.5` → 3). */
export function cpuThreads(quantity: string): number {
  const cpus = quantity.endsWith('m') ? Number(quantity.slice(0, -1)) / 1000 : Number(quantity);
  return Number.isFinite(cpus) && cpus > 0 ? Math.max(1, Math.ceil(cpus)) : 1;
}

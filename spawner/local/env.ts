/**
 * Pure functions deciding how a local cluster runs: its environment (never the
 * hub's secrets: kernels inherit it), whether Spark runs, worker sizes.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Config } from '../../config/schema.ts';
import type { ClusterRecord } from './state.ts';
import type { ClusterTls } from './tls.ts';

/** Hub variables a cluster may see; everything else (OAuth secrets, proxy token…) stays out. */
const PASSED_THROUGH = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'TZ', 'TMPDIR', 'JAVA_HOME'];

export function passThroughEnv(base: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(base)) {
    if (value !== undefined && (PASSED_THROUGH.includes(key) || key.startsWith('LC_'))) env[key] = value;
  }
  return env;
}

/** Whether a JVM is there: JAVA_HOME/bin/java or `java` on PATH. */
export function findJava(env: NodeJS.ProcessEnv, canExecute = isExecutable): string | undefined {
  const candidates = [
    ...(env.JAVA_HOME ? [join(env.JAVA_HOME, 'bin', 'java')] : []),
    ...(env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, 'java')),
  ];
  return candidates.find(canExecute);
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `spark` setting + Java presence → run Spark or not, and why not. Throws for `on` without Java. */
export function decideSpark(setting: Config['local']['spark'], java: string | undefined): { spark: boolean; note: string } {
  if (setting === 'off') return { spark: false, note: 'Spark is off (local.spark)' };
  if (java) return { spark: true, note: `Spark runs on ${java}` };
  if (setting === 'on') throw new Error('local.spark is "on" but no java was found (JAVA_HOME or PATH)');
  return { spark: false, note: 'Spark skipped: no Java found (JAVA_HOME or PATH); Dask and IPython Parallel still run' };
}

export interface ClusterEnvInput {
  base: NodeJS.ProcessEnv;
  venvBin: string;
  config: Config['local'];
  record: ClusterRecord;
  workspace: string;
  runtimeDir: string;
  /** The cluster's Dask TLS files. */
  tls?: ClusterTls;
}

/** Environment shared by the scheduler, the workers and the status probe. */
export function clusterEnv(input: ClusterEnvInput): Record<string, string> {
  const { record, config } = input;
  const env = passThroughEnv(input.base);
  // A student's own account: its home is the workspace, and what it writes is its alone.
  const account: Record<string, string> = record.account ? {
    HOME: input.workspace, USER: record.account.name, LOGNAME: record.account.name, TMPDIR: join(input.runtimeDir, 'tmp'), CLUSTER_UMASK: '077',
  } : {};
  const tls: Record<string, string> = input.tls ? { CLUSTER_TLS_CA: input.tls.ca, CLUSTER_TLS_CERT: input.tls.cert, CLUSTER_TLS_KEY: input.tls.key } : {};
  return {
    ...env,
    ...account,
    ...tls,
    PATH: [input.venvBin, env.PATH ?? '/usr/bin:/bin'].join(delimiter),
    VIRTUAL_ENV: join(input.venvBin, '..'),
    CLUSTER_PYTHON: join(input.venvBin, 'python'),
    CLUSTER_BIND: '127.0.0.1',
    CLUSTER_SCHEDULER_HOST: '127.0.0.1',
    CLUSTER_BASE_URL: record.baseUrl,
    CLUSTER_WORKSPACE: input.workspace,
    CLUSTER_RUNTIME_DIR: input.runtimeDir,
    CLUSTER_JUPYTER_PORT: String(record.ports.jupyter),
    CLUSTER_DASK_PORT: String(record.ports.dask),
    CLUSTER_DASK_DASHBOARD_PORT: String(record.ports.dashboard),
    CLUSTER_SPARK: record.spark ? 'on' : 'off',
    CLUSTER_SPARK_PORT: String(record.ports.spark),
    CLUSTER_SPARK_UI_PORT: String(record.ports.sparkUi),
    CLUSTER_THREADS: String(config.workerThreads),
    CLUSTER_MEMORY: config.workerMemory,
    CLUSTER_ENGINES: String(record.enginesPerWorker),
  };
}

/** The scheduler alone knows the token (the probe uses it to ask Jupyter). */
export function schedulerEnv(common: Record<string, string>, record: ClusterRecord, config: Config['local']): Record<string, string> {
  return {
    ...common,
    CLUSTER_JUPYTER_TOKEN: record.jupyterToken,
    ...(record.sparkSecret ? { CLUSTER_SPARK_SECRET: record.sparkSecret } : {}),
    ...(config.materialsGitUrl ? { CLUSTER_MATERIALS_GIT_URL: config.materialsGitUrl } : {}),
  };
}

export function workerEnv(common: Record<string, string>, index: number): Record<string, string> {
  return { ...common, CLUSTER_WORKER_NAME: `worker-${index}` };
}

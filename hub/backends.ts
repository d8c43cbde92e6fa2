/** Builds the configured backend: local processes (the default) or Kubernetes namespaces. */
import { join } from 'node:path';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../shared/log.ts';
import type { Backend } from '../spawner/types.ts';

/** The kubeconfig the Kubernetes backend uses: kubernetes.kubeconfig, else KUBECONFIG, ~/.kube/config, in-cluster. */
export async function kubeConfigOf(config: Config): Promise<import('@kubernetes/client-node').KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kubeConfig = new KubeConfig();
  if (config.kubernetes.kubeconfig) kubeConfig.loadFromFile(config.kubernetes.kubeconfig);
  else kubeConfig.loadFromDefault();
  return kubeConfig;
}

/** Builds the configured backend: the local process backend or the Kubernetes one. */
export async function createBackend(
  config: Config,
  options: { log: Logger; onSetup?: (line: string) => void; onKubernetesRequest?: (what: string) => void },
): Promise<Backend> {
  if (config.spawn.backend === 'kubernetes') {
    const { KubernetesBackend } = await import('../spawner/kubernetes/backend.ts');
    return new KubernetesBackend({ config, kubeConfig: await kubeConfigOf(config), log: options.log, onRequest: options.onKubernetesRequest });
  }
  const [{ ensureVenv, REQUIREMENTS_FILE }, { LocalBackend }] = await Promise.all([import('../spawner/local/venv.ts'), import('../spawner/local/backend.ts')]);
  const venv = await ensureVenv({
    python: config.local.python, venvDir: config.local.venv, requirementsFile: REQUIREMENTS_FILE,
    log: options.onSetup ?? ((line) => options.log.info({ setup: line }, 'python environment')),
  });
  const backend = new LocalBackend({ config: config.local, stateDir: join(config.hub.stateDir), venvBin: venv.bin, log: options.log, admins: config.auth.admins, maxWorkers: config.spawn.maxWorkers });
  await backend.setup();
  return backend;
}

/** Builds the configured backend: local processes (the default) or Kubernetes namespaces. */
import { join } from 'node:path';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../shared/log.ts';
import type { Backend } from '../spawner/types.ts';

export async function createBackend(config: Config, options: { log: Logger; onSetup?: (line: string) => void }): Promise<Backend> {
  if (config.spawn.backend === 'kubernetes') {
    const [{ KubeConfig }, { KubernetesBackend }] = await Promise.all([import('@kubernetes/client-node'), import('../spawner/kubernetes/backend.ts')]);
    const kubeConfig = new KubeConfig();
    if (config.kubernetes.kubeconfig) kubeConfig.loadFromFile(config.kubernetes.kubeconfig);
    else kubeConfig.loadFromDefault();
    return new KubernetesBackend({ config, kubeConfig, log: options.log });
  }
  const [{ ensureVenv, REQUIREMENTS_FILE }, { LocalBackend }] = await Promise.all([import('../spawner/local/venv.ts'), import('../spawner/local/backend.ts')]);
  const venv = await ensureVenv({
    python: config.local.python, venvDir: config.local.venv, requirementsFile: REQUIREMENTS_FILE,
    log: options.onSetup ?? ((line) => options.log.info({ setup: line }, 'python environment')),
  });
  return new LocalBackend({ config: config.local, stateDir: join(config.hub.stateDir), venvBin: venv.bin, log: options.log });
}

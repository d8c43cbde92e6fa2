/**
 * Deletes every namespace of one hub instance: what `clusterhub remove-namespaces` (the
 * chart's uninstall hook) runs. Found by the instance's labels, so another hub's namespaces
 * and everything unlabelled stay.
 */
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { isNotFound } from './api.ts';
import { instanceSelector } from './labels.ts';
import type { KubernetesConfig } from './types.ts';

/** Deletes the instance's namespaces (deletion finishes in the background); returns their names. */
export async function removeInstanceNamespaces(kubeConfig: KubeConfig, kube: KubernetesConfig): Promise<string[]> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const list = await core.listNamespace({ labelSelector: instanceSelector(kube) });
  const names = list.items.map((ns) => ns.metadata?.name).filter((name): name is string => name !== undefined);
  for (const name of names) {
    await core.deleteNamespace({ name }).catch((err) => {
      if (!isNotFound(err)) throw err;
    });
  }
  return names;
}

/**
 * How clusterhub marks and names what it owns in Kubernetes: labels, annotations, fixed
 * object names, selectors and route targets. Shared by the object builders, the informers
 * and the backend.
 */
import type { ClusterRef, KubernetesConfig } from './types.ts';

export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';
export const LABEL_USER = 'clusterhub.io/user';
export const LABEL_INSTANCE = 'clusterhub.io/instance';
/** Marks the pods of one launch, so a relaunch never mistakes a previous launch's pods for its own. */
export const LABEL_LAUNCH = 'clusterhub.io/launch';
/** The original GitHub login (labels cannot hold every login; annotations can). */
export const ANNOTATION_LOGIN = 'clusterhub.io/login';
export const MANAGED_BY = 'clusterhub';

/** Fixed object names inside a cluster's namespace. */
export const NAMES = {
  quota: 'cluster',
  limitRange: 'cluster',
  networkPolicy: 'cluster',
  serviceAccount: 'cluster',
  tokenSecret: 'jupyter-token',
  roleBinding: 'clusterhub-backend',
  scheduler: 'scheduler',
  workers: 'workers',
  workspaceClaim: 'workspace',
} as const;

/** Key of the Jupyter token in the token Secret. */
export const TOKEN_KEY = 'token';

/** The label selector that finds every namespace of this hub instance. */
export function instanceSelector(kube: KubernetesConfig): string {
  return `${LABEL_MANAGED_BY}=${MANAGED_BY},${LABEL_INSTANCE}=${kube.instance}`;
}

/** Labels every object of a cluster carries. */
export function clusterLabels(kube: KubernetesConfig, ref: ClusterRef): Record<string, string> {
  return { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_INSTANCE]: kube.instance, [LABEL_USER]: ref.safeLogin };
}

/**
 * Where the proxy sends `/user/{login}/`: the scheduler Service, never a pod IP. With
 * `{clusterIP}` in the template, the Service's address (a proxy outside the cluster's DNS
 * that reaches Service addresses, e.g. on a node running kube-proxy).
 */
export function routeTarget(kube: KubernetesConfig, namespace: string, clusterIP = ''): string {
  return kube.routeTarget.replaceAll('{namespace}', namespace).replaceAll('{clusterIP}', clusterIP);
}


/**
 * Puts k8s/rbac/*.yaml into a test plane and hands out a KubeConfig that authenticates as
 * the hub's ServiceAccount (clusterhub/clusterhub) with a TokenRequest token: the backend's
 * integration tests run as that account, which proves the ClusterRoles are enough.
 */
import {
  CoreV1Api, KubeConfig, KubernetesObjectApi, PatchStrategy, type KubernetesObject,
} from '@kubernetes/client-node';
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import { waitUntil } from './net.ts';

const RBAC_DIR = new URL('../../k8s/rbac/', import.meta.url);
const FILES = ['clusterrole.yaml', 'binding.yaml', 'admission-policy.yaml'];
/** The hub's ServiceAccount, as binding.yaml and admission-policy.yaml name it. */
export const BACKEND_SA = { namespace: 'clusterhub', name: 'clusterhub' } as const;

/** The objects of k8s/rbac, in apply order. */
export async function rbacObjects(): Promise<KubernetesObject[]> {
  const docs: KubernetesObject[] = [];
  for (const file of FILES) {
    const text = await readFile(new URL(file, RBAC_DIR), 'utf8');
    for (const doc of parseAllDocuments(text)) {
      const obj = doc.toJS() as KubernetesObject | null;
      if (obj) docs.push(obj);
    }
  }
  return docs;
}

/** Server-side applies k8s/rbac (idempotent: several test files may share a plane). */
export async function applyRbac(admin: KubeConfig): Promise<void> {
  const core = admin.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: BACKEND_SA.namespace } } }).catch((err) => {
    if ((err as { code?: number }).code !== 409) throw err;
  });
  const objects = KubernetesObjectApi.makeApiClient(admin);
  for (const obj of await rbacObjects()) {
    await objects.patch(obj, undefined, undefined, 'clusterhub-tests', true, PatchStrategy.ServerSideApply);
  }
}

/**
 * A KubeConfig for the hub's ServiceAccount (token valid `expirationSeconds`), returned once
 * the API server both authorizes it and enforces the admission policy for it: both caches
 * fill asynchronously and there is no event to await, so dry-run requests are the signal.
 */
export async function backendKubeConfig(admin: KubeConfig, expirationSeconds = 3600): Promise<KubeConfig> {
  const core = admin.makeApiClient(CoreV1Api);
  const tr = await core.createNamespacedServiceAccountToken({
    name: BACKEND_SA.name,
    namespace: BACKEND_SA.namespace,
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: [], expirationSeconds } },
  });
  const token = tr.status?.token;
  if (!token) throw new Error('TokenRequest returned no token');
  const cluster = admin.getCurrentCluster();
  if (!cluster) throw new Error('admin kubeconfig has no current cluster');
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: cluster.name, server: cluster.server, caData: cluster.caData, caFile: cluster.caFile, skipTLSVerify: cluster.skipTLSVerify }],
    users: [{ name: 'clusterhub', token }],
    contexts: [{ name: 'clusterhub', cluster: cluster.name, user: 'clusterhub' }],
    currentContext: 'clusterhub',
  });
  const asBackend = kc.makeApiClient(CoreV1Api);
  const probe = (labels: Record<string, string>) =>
    asBackend.createNamespace({ dryRun: 'All', body: { metadata: { name: 'clusterhub-rbac-probe', labels } } }).then(() => true, (err) => err);
  await waitUntil('the backend ServiceAccount to be authorized and policed', async () => {
    const allowed = await probe({ 'app.kubernetes.io/managed-by': 'clusterhub', 'pod-security.kubernetes.io/enforce': 'restricted' });
    if (allowed !== true) return false;
    const denied = await probe({});
    return denied !== true && /managed-by=clusterhub/.test(String(denied?.body ?? denied?.message));
  }, { timeoutMs: 30_000, intervalMs: 200 });
  return kc;
}

/** The student's workspace on Kubernetes: the claim that outlives clusters, and the materials' first clone. */
import type { V1Container, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { clusterLabels, NAMES } from './labels.ts';
import { requestsEqualLimits, restrictedContainer, WORKSPACE_PATH } from './pod-parts.ts';
import type { ClusterRef, KubernetesConfig } from './types.ts';

/**
 * The student's workspace: one claim per student, in their namespace. It outlives the
 * cluster (stop and cull delete only the workloads) and goes with the namespace on reset.
 * No storageClassName when unset, so the cluster's default class provisions it.
 */
export function renderWorkspaceClaim(kube: KubernetesConfig, ref: ClusterRef): V1PersistentVolumeClaim {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: NAMES.workspaceClaim, namespace: ref.namespace, labels: clusterLabels(kube, ref) },
    spec: {
      accessModes: [kube.workspace.accessMode],
      resources: { requests: { storage: kube.workspace.size } },
      ...(kube.workspace.storageClass ? { storageClassName: kube.workspace.storageClass } : {}),
    },
  };
}

/**
 * Clones the materials into `materials/` of the workspace when that folder is absent, and
 * only then: a relaunch never touches a student's edits (clone once rather than merge as
 * nbgitpuller does: a merge can conflict or rewrite a notebook a student changed, and a
 * student who wants the new version renames the folder). It clones to a temporary folder
 * and renames it, so a pod killed mid-clone leaves no half copy; a failed clone is a warning.
 */
export function renderMaterialsInit(kube: KubernetesConfig): V1Container | undefined {
  if (!kube.materialsGitUrl) return undefined;
  const script = [
    `target=${WORKSPACE_PATH}/materials; partial=${WORKSPACE_PATH}/.materials-clone`,
    'if [ -e "$target" ]; then echo "materials already in the workspace: left as they are"; exit 0; fi',
    'rm -rf "$partial"',
    'if timeout 300 git clone --depth 1 --quiet ${MATERIALS_REF:+--branch "$MATERIALS_REF"} "$MATERIALS_URL" "$partial"; then mv "$partial" "$target"; echo "materials cloned";',
    'else rm -rf "$partial"; echo "warning: the materials could not be cloned from $MATERIALS_URL" >&2; fi',
  ].join('\n');
  return {
    name: 'materials',
    image: kube.image,
    imagePullPolicy: kube.imagePullPolicy,
    command: ['/bin/sh', '-c', script],
    env: [
      { name: 'MATERIALS_URL', value: kube.materialsGitUrl },
      ...(kube.materialsGitRef ? [{ name: 'MATERIALS_REF', value: kube.materialsGitRef }] : []),
      { name: 'GIT_TERMINAL_PROMPT', value: '0' },
      { name: 'HOME', value: '/tmp' },
    ],
    // The scheduler's own size: a pod's request is the larger of its init and app containers, so this costs no quota.
    resources: requestsEqualLimits(kube.schedulerResources),
    securityContext: restrictedContainer(),
    volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }, { name: 'workspace', mountPath: WORKSPACE_PATH }],
  };
}

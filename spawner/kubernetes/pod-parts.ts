/** Parts every cluster pod shares: the restricted security context, fixed resources, the workspace path. */
import type { V1Container, V1SecurityContext } from '@kubernetes/client-node';

/** Where the workspace is mounted in the pods (CLUSTER_WORKSPACE of image-env.ts). */
export const WORKSPACE_PATH = '/workspace';

/** The container securityContext PodSecurity `restricted` asks for. */
export function restrictedContainer(): V1SecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: 1000,
    runAsGroup: 1000,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/** Requests equal to limits (Guaranteed QoS), as the quota asks for every container. */
export function requestsEqualLimits(r: { cpu: string; memory: string }): V1Container['resources'] {
  return { requests: { cpu: r.cpu, memory: r.memory }, limits: { cpu: r.cpu, memory: r.memory } };
}

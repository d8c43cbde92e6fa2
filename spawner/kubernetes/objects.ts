/**
 * The Kubernetes objects of one user's cluster, as pure functions of the configuration
 * and the launch: no I/O, unit-tested without a cluster (objects.test.ts).
 */
import type {
  V1Container, V1Deployment, V1EnvVar, V1LimitRange, V1Namespace, V1NetworkPolicy, V1Pod, V1PodSpec,
  V1ResourceQuota, V1RoleBinding, V1Secret, V1Service, V1ServiceAccount, RbacV1Subject,
} from '@kubernetes/client-node';
import { ANNOTATION_LOGIN, clusterLabels, LABEL_COMPONENT, LABEL_LAUNCH, LABEL_MANAGED_BY, MANAGED_BY, NAMES, TOKEN_KEY } from './labels.ts';
import type { ClusterRef, KubernetesConfig, LaunchSpec } from './types.ts';
import { podEnv, cpuThreads, PORTS } from './image-env.ts';
import { requestsEqualLimits, restrictedContainer, WORKSPACE_PATH } from './pod-parts.ts';
import { renderMaterialsInit } from './workspace.ts';

/** The namespace, with PodSecurity `restricted` enforced on everything inside. */
export function renderNamespace(kube: KubernetesConfig, ref: ClusterRef): V1Namespace {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: ref.namespace,
      labels: {
        ...clusterLabels(kube, ref),
        'pod-security.kubernetes.io/enforce': 'restricted',
        'pod-security.kubernetes.io/enforce-version': 'latest',
        'pod-security.kubernetes.io/warn': 'restricted',
        'pod-security.kubernetes.io/warn-version': 'latest',
      },
      annotations: { [ANNOTATION_LOGIN]: ref.login },
    },
  };
}

/** The cluster's total share of the machine. */
export function renderQuota(kube: KubernetesConfig, ref: ClusterRef): V1ResourceQuota {
  const { cpu, memory, pods } = kube.quota;
  return {
    apiVersion: 'v1',
    kind: 'ResourceQuota',
    metadata: { name: NAMES.quota, namespace: ref.namespace, labels: clusterLabels(kube, ref) },
    spec: {
      hard: {
        'requests.cpu': cpu, 'limits.cpu': cpu,
        'requests.memory': memory, 'limits.memory': memory,
        pods: String(pods),
      },
    },
  };
}

/** The largest pod (and container) a cluster may run. */
export function renderLimitRange(kube: KubernetesConfig, ref: ClusterRef): V1LimitRange {
  const max = { cpu: kube.podMax.cpu, memory: kube.podMax.memory };
  return {
    apiVersion: 'v1',
    kind: 'LimitRange',
    metadata: { name: NAMES.limitRange, namespace: ref.namespace, labels: clusterLabels(kube, ref) },
    spec: { limits: [{ type: 'Pod', max }, { type: 'Container', max }] },
  };
}

/**
 * Ingress only from the namespace itself and from the proxy's pods; egress open unless
 * `restrictEgress`, then the namespace plus DNS (port 53 anywhere: cluster DNS lives in
 * different places on different distributions).
 */
export function renderNetworkPolicy(kube: KubernetesConfig, ref: ClusterRef): V1NetworkPolicy {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: NAMES.networkPolicy, namespace: ref.namespace, labels: clusterLabels(kube, ref) },
    spec: {
      podSelector: {},
      policyTypes: kube.restrictEgress ? ['Ingress', 'Egress'] : ['Ingress'],
      ingress: [{
        _from: [
          { podSelector: {} },
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': kube.proxyNamespace } },
            podSelector: { matchLabels: { ...kube.proxyPodSelector } },
          },
        ],
      }],
      ...(kube.restrictEgress
        ? {
            egress: [
              { to: [{ podSelector: {} }] },
              { ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] },
            ],
          }
        : {}),
    },
  };
}

/** The pods' identity: no API token is mounted, the pods never talk to the API server. */
export function renderServiceAccount(kube: KubernetesConfig, ref: ClusterRef): V1ServiceAccount {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: NAMES.serviceAccount, namespace: ref.namespace, labels: clusterLabels(kube, ref) },
    automountServiceAccountToken: false,
  };
}

/** Key of the IPython Parallel key in the token Secret. */
export const IPP_KEY_KEY = 'ipp-key';

/** The cluster's secrets, made by the backend for each launch. */
export interface ClusterSecrets {
  /** Jupyter's token (the hub sends it; `list()` reads it back after a hub restart). */
  jupyterToken: string;
  /** Signs IPython Parallel's messages: with it, engines on workers reach the controller without shared files (images/cluster/README.md). */
  ippKey: string;
}

/** The Jupyter token and the IPython Parallel key, read by the pods through `secretKeyRef`. */
export function renderTokenSecret(kube: KubernetesConfig, ref: ClusterRef, secrets: ClusterSecrets): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: NAMES.tokenSecret, namespace: ref.namespace, labels: clusterLabels(kube, ref) },
    type: 'Opaque',
    stringData: { [TOKEN_KEY]: secrets.jupyterToken, [IPP_KEY_KEY]: secrets.ippKey },
  };
}

/**
 * Grants the backend the `clusterRole` (k8s/rbac: the in-namespace permissions) in this
 * namespace only; see k8s/rbac/clusterrole.yaml for why it is bound per namespace.
 */
export function renderRoleBinding(kube: KubernetesConfig, ref: ClusterRef, clusterRole: string, subject: RbacV1Subject): V1RoleBinding {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: NAMES.roleBinding, namespace: ref.namespace, labels: clusterLabels(kube, ref) },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole },
    subjects: [subject],
  };
}

/**
 * The Service `scheduler`: Jupyter, Dask, Spark and IPython Parallel, under fixed ports. Its
 * addresses are published before the pod is Ready: readiness is Jupyter answering (for the
 * proxy), and workers must reach Dask, IPython Parallel and Spark, which listen sooner, or
 * they give up (Dask's death timeout) and restart.
 */
export function renderSchedulerService(kube: KubernetesConfig, ref: ClusterRef): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: NAMES.scheduler, namespace: ref.namespace, labels: { ...clusterLabels(kube, ref), [LABEL_COMPONENT]: 'scheduler' } },
    spec: {
      selector: { ...podSelector('scheduler') },
      publishNotReadyAddresses: true,
      ports: Object.entries(PORTS).map(([name, port]) => ({ name, port, targetPort: name, protocol: 'TCP' })),
    },
  };
}

/**
 * The scheduler: one bare pod, ready when Jupyter answers, as KubeSpawner runs a server and
 * Dask Gateway a scheduler. A Deployment of one would bring a lost pod back, at the price of
 * a Deployment and a ReplicaSet per student and their status updates (about 9 API requests
 * per launch, a sixth of all); a scheduler lost with its node or to an eviction instead
 * leaves the cluster failed: the hub removes it (the workspace stays) and Launch starts anew.
 * Containers that crash are restarted in place (restartPolicy Always).
 */
export function renderSchedulerPod(kube: KubernetesConfig, spec: LaunchSpec): V1Pod {
  const container: V1Container = {
    name: 'scheduler',
    image: kube.image,
    imagePullPolicy: kube.imagePullPolicy,
    args: ['scheduler'],
    env: [
      // The workers' size too: the driver's spark-defaults.conf sizes each executor to fit a worker pod.
      ...podEnv({ mode: 'scheduler', baseUrl: spec.baseUrl, schedulerHost: schedulerHost(spec.namespace), ...workerSize(kube) }),
      { name: 'CLUSTER_JUPYTER_TOKEN', valueFrom: { secretKeyRef: { name: NAMES.tokenSecret, key: TOKEN_KEY } } },
      ippKeyEnv(),
    ],
    ports: Object.entries(PORTS).map(([name, containerPort]) => ({ name, containerPort, protocol: 'TCP' })),
    // `{base_url}api` answers without a token, so the probe needs no secret.
    readinessProbe: {
      httpGet: { path: `${spec.baseUrl}api`, port: 'jupyter' },
      periodSeconds: 2,
      timeoutSeconds: 2,
      failureThreshold: 3,
    },
    resources: requestsEqualLimits(kube.schedulerResources),
    securityContext: restrictedContainer(),
  };
  const init = renderMaterialsInit(kube);
  const pod = podTemplate(kube, spec, 'scheduler', container, { claim: true, initContainers: init ? [init] : [] });
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: NAMES.scheduler, namespace: spec.namespace, labels: pod.labels },
    spec: { ...pod.spec, restartPolicy: 'Always' },
  };
}

/** What one worker container is given (requests = limits): its Dask threads and Spark cores, and its memory. */
function workerSize(kube: KubernetesConfig): { threads: number; memory: string } {
  return { threads: cpuThreads(kube.workerResources.cpu), memory: kube.workerResources.memory };
}

/** N worker pods of the same image in `worker` mode, pointed at the scheduler Service. */
export function renderWorkerDeployment(kube: KubernetesConfig, spec: LaunchSpec): V1Deployment {
  const container: V1Container = {
    name: 'worker',
    image: kube.image,
    imagePullPolicy: kube.imagePullPolicy,
    args: ['worker'],
    env: [
      ...podEnv({ mode: 'worker', baseUrl: spec.baseUrl, schedulerHost: schedulerHost(spec.namespace), ...workerSize(kube) }),
      // With the key, the fixed CLUSTER_IPP_PORTS and CLUSTER_SCHEDULER_HOST, engines need no file from the scheduler.
      ippKeyEnv(),
    ],
    resources: requestsEqualLimits(kube.workerResources),
    securityContext: restrictedContainer(),
  };
  // A ReadWriteMany claim can be mounted by every worker too; otherwise workers get scratch space.
  return deployment(kube, spec, 'workers', spec.workers, container, 'RollingUpdate', {
    claim: kube.workspace.accessMode === 'ReadWriteMany', initContainers: [waitForScheduler(kube, spec.namespace)],
  });
}

/** Polls the scheduler's Dask port; exits once it accepts a connection. */
const WAIT_FOR_PORT = [
  'import socket, sys, time',
  'host, port = sys.argv[1], int(sys.argv[2])',
  'while True:',
  '    try:',
  '        socket.create_connection((host, port), timeout=5).close()',
  '        break',
  '    except OSError as e:',
  '        print(f"waiting for the scheduler at {host}:{port}: {e}", flush=True)',
  '        time.sleep(1)',
].join('\n');

/**
 * An init container that holds a worker back until the scheduler's Dask port answers: the
 * scheduler starts at the same moment and may need minutes on a busy node, while a Dask
 * worker gives up after its death timeout and the container would restart.
 */
function waitForScheduler(kube: KubernetesConfig, namespace: string): V1Container {
  return {
    name: 'wait-for-scheduler',
    image: kube.image,
    imagePullPolicy: kube.imagePullPolicy,
    command: ['python3', '-c', WAIT_FOR_PORT, schedulerHost(namespace), String(PORTS.dask)],
    resources: requestsEqualLimits(kube.workerResources),
    securityContext: restrictedContainer(),
  };
}

/** `scheduler.{namespace}.svc`: what workers dial. */
export function schedulerHost(namespace: string): string {
  return `${NAMES.scheduler}.${namespace}.svc`;
}

/**
 * `extra` merged into `base`: objects merge key by key, arrays are appended (extra volumes,
 * tolerations or sidecars add to ours), anything else in `extra` wins.
 */
export function mergeDeep<T>(base: T, extra: unknown): T {
  if (Array.isArray(base) && Array.isArray(extra)) return [...base, ...extra] as T;
  if (isPlainObject(base) && isPlainObject(extra)) {
    const out: Record<string, unknown> = { ...base };
    for (const [key, value] of Object.entries(extra)) out[key] = key in out ? mergeDeep(out[key], value) : value;
    return out as T;
  }
  return extra === undefined ? base : (extra as T);
}

type Component = 'scheduler' | 'workers';

function ippKeyEnv(): V1EnvVar {
  return { name: 'CLUSTER_IPP_KEY', valueFrom: { secretKeyRef: { name: NAMES.tokenSecret, key: IPP_KEY_KEY } } };
}

function podSelector(component: Component): Record<string, string> {
  return { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_COMPONENT]: component };
}

/** Whether the pods mount the workspace claim (else an emptyDir), and what runs before them. */
interface PodStorage { claim: boolean; initContainers: V1Container[] }

/** The labels and spec of one component's pods (the extra pod spec merged in). */
function podTemplate(kube: KubernetesConfig, spec: LaunchSpec, component: Component, container: V1Container, storage: PodStorage): { labels: Record<string, string>; spec: V1PodSpec } {
  const labels = { ...clusterLabels(kube, spec), [LABEL_COMPONENT]: component, ...podSelector(component), [LABEL_LAUNCH]: spec.launchId };
  const base: V1PodSpec = {
    serviceAccountName: NAMES.serviceAccount,
    automountServiceAccountToken: false,
    // Service links would put SCHEDULER_PORT=tcp://… into the environment, which the engines misread.
    enableServiceLinks: false,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      // The claim's files belong to group 1000 (the student); only a root that is not yet theirs is relabelled,
      // so a relaunch on a large workspace does not walk every file.
      fsGroup: 1000,
      fsGroupChangePolicy: 'OnRootMismatch',
      seccompProfile: { type: 'RuntimeDefault' },
    },
    ...(storage.initContainers.length ? { initContainers: storage.initContainers } : {}),
    containers: [container],
    // The root filesystem stays the image's; scratch space is an emptyDir, the workspace the student's claim.
    volumes: [
      { name: 'tmp', emptyDir: {} },
      storage.claim ? { name: 'workspace', persistentVolumeClaim: { claimName: NAMES.workspaceClaim } } : { name: 'workspace', emptyDir: {} },
    ],
    nodeSelector: { ...kube.nodeSelector },
    tolerations: kube.tolerations.map((t) => ({ ...t })),
  };
  container.volumeMounts = [{ name: 'tmp', mountPath: '/tmp' }, { name: 'workspace', mountPath: WORKSPACE_PATH }];
  return { labels, spec: mergeDeep(base, kube.extraPodSpec) };
}

/** The worker Deployment: `replicas` pods of the template, scaled through its scale subresource. */
function deployment(kube: KubernetesConfig, spec: LaunchSpec, component: Component, replicas: number, container: V1Container, strategy: string, storage: PodStorage): V1Deployment {
  const pod = podTemplate(kube, spec, component, container, storage);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: NAMES.workers, namespace: spec.namespace, labels: { ...clusterLabels(kube, spec), [LABEL_COMPONENT]: component } },
    spec: {
      replicas,
      strategy: { type: strategy },
      selector: { matchLabels: podSelector(component) },
      template: { metadata: { labels: pod.labels }, spec: pod.spec },
    },
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

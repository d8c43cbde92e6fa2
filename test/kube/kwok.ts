import type { V1Node } from '@kubernetes/client-node';
import { stringify } from 'yaml';

/** Annotation that marks a Node as kwok-managed (kwok is started with this selector). */
export const FAKE_NODE_ANNOTATION = 'kwok.x-k8s.io/node';

/** kwok renews each managed node's Lease with this duration, as a kubelet would. */
const NODE_LEASE_SECONDS = 40;

/**
 * kwok's configuration file: the controller options plus the Stage documents that decide
 * how fake nodes and pods move through their lifecycle. Written for this plane:
 * - node-ready: a new node becomes Ready at once, keeping the capacity it was created with;
 * - node-heartbeat: refreshes conditions every 1–2 min (the Lease, renewed by kwok, carries liveness);
 * - pod-running: a bound pod gets an IP from its node's podCIDR and is Running and Ready;
 * - pod-job-succeeded: pods owned by a Job complete;
 * - pod-delete: a pod marked for deletion loses its finalizers and is removed, which is
 *   what lets ReplicaSets scale down and namespaces finish terminating.
 */
export function renderKwokConfig(): string {
  const config = {
    apiVersion: 'config.kwok.x-k8s.io/v1alpha1',
    kind: 'KwokConfiguration',
    options: {
      manageAllNodes: false,
      manageNodesWithAnnotationSelector: `${FAKE_NODE_ANNOTATION}=fake`,
      nodeLeaseDurationSeconds: NODE_LEASE_SECONDS,
      // Set explicitly: a config file does not get the flag defaults, and 0 is refused.
      podPlayStageParallelism: 8,
      nodePlayStageParallelism: 2,
      nodeLeaseParallelism: 2,
      podsOnNodeSyncParallelism: 2,
    },
  };
  const ready = '.status.conditions.[] | select(.type == "Ready") | .status';
  const alive = match('.metadata.deletionTimestamp', 'DoesNotExist');
  const stages = [
    stage('node-ready', 'Node', [match(ready, 'NotIn', 'True')], { statusTemplate: NODE_STATUS + NODE_STATUS_FIRST_TIME }),
    stage('node-heartbeat', 'Node', [match('.status.phase', 'In', 'Running'), match(ready, 'In', 'True')], { statusTemplate: NODE_STATUS },
      { durationMilliseconds: 60000, jitterDurationMilliseconds: 120000 }),
    stage('pod-running', 'Pod', [alive, match('.status.podIP', 'DoesNotExist')], { statusTemplate: POD_RUNNING }),
    stage('pod-job-succeeded', 'Pod', [alive, match('.status.phase', 'In', 'Running'), match('.metadata.ownerReferences.[].kind', 'In', 'Job')],
      { statusTemplate: POD_SUCCEEDED }),
    stage('pod-delete', 'Pod', [match('.metadata.deletionTimestamp', 'Exists')], { finalizers: { empty: true }, delete: true }),
  ];
  return [config, ...stages].map((doc) => stringify(doc, { lineWidth: 0 })).join('---\n');
}

/** One selector expression of a Stage (kwok's jq-like keys). */
function match(key: string, operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist', ...values: string[]) {
  return values.length ? { key, operator, values } : { key, operator };
}

/** A kwok Stage: objects of `kind` matching every expression move to `next` (after `delay`). */
function stage(name: string, kind: 'Node' | 'Pod', matchExpressions: ReturnType<typeof match>[], next: Record<string, unknown>, delay?: Record<string, number>) {
  return {
    apiVersion: 'kwok.x-k8s.io/v1alpha1',
    kind: 'Stage',
    metadata: { name },
    spec: { resourceRef: { apiGroup: 'v1', kind }, selector: { matchExpressions }, ...(delay ? { delay } : {}), next },
  };
}

/** Conditions and addresses a kubelet would report (Go template rendered by kwok). */
const NODE_STATUS = `{{ $now := Now }}
{{ $since := or .metadata.creationTimestamp $now }}
conditions:
{{ range NodeConditions }}
- type: {{ .type | Quote }}
  status: {{ .status | Quote }}
  reason: {{ .reason | Quote }}
  message: {{ .message | Quote }}
  lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $since | Quote }}
{{ end }}
{{ with NodePort }}
daemonEndpoints:
  kubeletEndpoint:
    Port: {{ . }}
{{ end }}
`;

/** Added the first time only: phase, addresses and node info. Capacity stays as created. */
const NODE_STATUS_FIRST_TIME = `phase: Running
{{ if not .status.addresses }}
addresses:
- type: InternalIP
  address: {{ NodeIP | Quote }}
- type: Hostname
  address: {{ .metadata.name | Quote }}
{{ end }}
nodeInfo:
  architecture: amd64
  operatingSystem: linux
  kubeletVersion: {{ printf "kwok-%s" Version | Quote }}
  kubeProxyVersion: {{ printf "kwok-%s" Version | Quote }}
  containerRuntimeVersion: {{ printf "kwok-%s" Version | Quote }}
  kernelVersion: {{ printf "kwok-%s" Version | Quote }}
  osImage: kwok
  machineID: ""
  systemUUID: ""
  bootID: ""
`;

const POD_RUNNING = `{{ $now := Now }}
phase: Running
startTime: {{ $now | Quote }}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
podIP: {{ PodIPWith .spec.nodeName (or .spec.hostNetwork false) (or .metadata.uid "") (or .metadata.name "") (or .metadata.namespace "") | Quote }}
conditions:
- type: Initialized
  status: "True"
  lastTransitionTime: {{ $now | Quote }}
- type: ContainersReady
  status: "True"
  lastTransitionTime: {{ $now | Quote }}
- type: Ready
  status: "True"
  lastTransitionTime: {{ $now | Quote }}
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: true
  started: true
  restartCount: 0
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
{{ with .spec.initContainers }}
initContainerStatuses:
{{ range . }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  restartCount: 0
{{ if eq (or .restartPolicy "") "Always" }}
  ready: true
  started: true
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ else }}
  ready: false
  state:
    terminated:
      exitCode: 0
      reason: Completed
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
{{ end }}
{{ end }}
{{ end }}
`;

const POD_SUCCEEDED = `{{ $now := Now }}
phase: Succeeded
conditions:
- type: Ready
  status: "False"
  reason: PodCompleted
  lastTransitionTime: {{ $now | Quote }}
- type: ContainersReady
  status: "False"
  reason: PodCompleted
  lastTransitionTime: {{ $now | Quote }}
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: false
  started: false
  restartCount: 0
  state:
    terminated:
      exitCode: 0
      reason: Completed
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
{{ end }}
`;

/** Capacity of one fake node; pods ≥ 110 so that 100 pods fit on a single node. */
export interface FakeNodeShape {
  cpu: string;
  memory: string;
  pods: number;
}

export const DEFAULT_NODE_SHAPE: FakeNodeShape = { cpu: '32', memory: '256Gi', pods: 110 };

/** The podCIDR of fake node `index`: kwok hands its pods addresses from it. */
export function fakeNodePodCidr(index: number): string {
  return `10.244.${index}.0/24`;
}

/**
 * The Node object for fake node `index`: kwok-managed, untainted, its own /24 podCIDR
 * (kwok hands out pod IPs from it) and the given capacity.
 */
export function renderFakeNode(index: number, shape: FakeNodeShape = DEFAULT_NODE_SHAPE): V1Node {
  const name = `kwok-node-${index}`;
  const capacity = { cpu: shape.cpu, memory: shape.memory, pods: String(shape.pods) };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { [FAKE_NODE_ANNOTATION]: 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        type: 'kwok',
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
      },
    },
    spec: { podCIDR: fakeNodePodCidr(index), podCIDRs: [fakeNodePodCidr(index)] },
    status: { capacity, allocatable: capacity },
  };
}

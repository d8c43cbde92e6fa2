/**
 * What the backend's operations share: API clients, the request gate, the informers and
 * the identity the per-namespace RoleBinding names. Built once per backend.
 */
import {
  AppsV1Api, AuthenticationV1Api, CoreV1Api, NetworkingV1Api, RbacAuthorizationV1Api,
  type KubeConfig, type RbacV1Subject, type V1Namespace,
} from '@kubernetes/client-node';
import type { Config } from '../../config/schema.ts';
import type { Logger } from '../../shared/log.ts';
import { safeName } from '../names.ts';
import { ApiGate, isNotFound, isRbacDenial, isRetryable } from './api.ts';
import { ClusterError } from '../types.ts';
import { ANNOTATION_LOGIN, LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_USER, MANAGED_BY, NAMES, routeTarget } from './labels.ts';
import type { ClusterRef, KubernetesConfig } from './types.ts';
import { ClusterWatch } from './watch.ts';
import { makeApiClient, PooledAuthentication } from './connections.ts';

/** The API groups the backend talks to. */
export interface KubeClients {
  core: CoreV1Api;
  apps: AppsV1Api;
  networking: NetworkingV1Api;
  rbac: RbacAuthorizationV1Api;
  auth: AuthenticationV1Api;
}

/** Everything an operation needs; see {@link createContext}. */
export interface BackendContext {
  config: Config;
  kube: KubernetesConfig;
  clients: KubeClients;
  /** The clients' shared connections; closed with the backend. */
  connections: PooledAuthentication;
  gate: ApiGate;
  watch: ClusterWatch;
  log: Logger;
  /** ClusterRole bound in each new namespace, or null when the backend's identity already has cluster-wide rights. */
  clusterRole: string | null;
  /** Who the RoleBinding grants the ClusterRole to: the identity the backend runs as. */
  subject(): Promise<RbacV1Subject>;
}

export interface ContextOptions {
  config: Config;
  kubeConfig: KubeConfig;
  log: Logger;
  clusterRole: string | null;
  /** Overrides the SelfSubjectReview lookup of the backend's own identity. */
  subject?: RbacV1Subject;
  onRequest?: (what: string) => void;
}

/** Clients, gate and informers for one backend instance. */
export function createContext(options: ContextOptions): BackendContext {
  const kc = options.kubeConfig;
  // One pool of kept-alive connections for every request and list (connections.ts says why).
  const connections = new PooledAuthentication(kc);
  const clients: KubeClients = {
    core: makeApiClient(kc, connections, CoreV1Api),
    apps: makeApiClient(kc, connections, AppsV1Api),
    networking: makeApiClient(kc, connections, NetworkingV1Api),
    rbac: makeApiClient(kc, connections, RbacAuthorizationV1Api),
    auth: makeApiClient(kc, connections, AuthenticationV1Api),
  };
  const kube = options.config.kubernetes;
  const gate = new ApiGate({ concurrency: kube.apiConcurrency, onRequest: options.onRequest });
  const watch = new ClusterWatch({ kubeConfig: kc, core: clients.core, config: kube, log: options.log });
  let subject: Promise<RbacV1Subject> | undefined = options.subject ? Promise.resolve(options.subject) : undefined;
  return {
    config: options.config, kube, clients, connections, gate, watch, log: options.log, clusterRole: options.clusterRole,
    subject: () => (subject ??= whoAmI(clients, gate).catch((err) => {
      subject = undefined;
      throw err;
    })),
  };
}

/** The backend's own identity (SelfSubjectReview), as an RBAC subject. */
async function whoAmI(clients: KubeClients, gate: ApiGate): Promise<RbacV1Subject> {
  // A denial is retried: an API server that just (re)started answers 403 until its RBAC cache is filled.
  const review = await gate.run('create selfsubjectreview', () =>
    clients.auth.createSelfSubjectReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } }), { retry: retryDenials, attempts: 12 });
  const username = review.status?.userInfo?.username;
  if (!username) throw new Error('the API server did not say who the backend is (SelfSubjectReview has no username)');
  const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(username);
  return sa ? { kind: 'ServiceAccount', name: sa[2]!, namespace: sa[1]! } : { kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: username };
}

/** The namespace and names of a login's cluster. */
export function clusterRef(kube: KubernetesConfig, login: string): ClusterRef {
  const safeLogin = safeName(login, 63 - kube.namespacePrefix.length - 1);
  return { login, safeLogin, namespace: `${kube.namespacePrefix}-${safeLogin}` };
}

/** True when the namespace carries this instance's labels (never touch anything else). */
export function isOurs(kube: KubernetesConfig, ns: V1Namespace): boolean {
  const labels = ns.metadata?.labels ?? {};
  return labels[LABEL_MANAGED_BY] === MANAGED_BY && labels[LABEL_INSTANCE] === kube.instance;
}

/** The login a namespace belongs to: the annotation, else the label's safe name. */
export function loginOf(ns: V1Namespace): string | undefined {
  return ns.metadata?.annotations?.[ANNOTATION_LOGIN] ?? ns.metadata?.labels?.[LABEL_USER];
}

/** Reads a namespace; undefined when it does not exist. */
export async function readNamespace(ctx: BackendContext, name: string, signal?: AbortSignal): Promise<V1Namespace | undefined> {
  try {
    return await ctx.gate.run('get namespace', () => ctx.clients.core.readNamespace({ name }), { signal, retry: retryDenials, attempts: 12 });
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** The proxy target of a namespace's cluster; reads the Service only when the template names `{clusterIP}`. */
export async function clusterUrl(ctx: BackendContext, namespace: string, signal?: AbortSignal): Promise<string> {
  if (!ctx.kube.routeTarget.includes('{clusterIP}')) return routeTarget(ctx.kube, namespace);
  const svc = await ctx.gate.run('get service', () => ctx.clients.core.readNamespacedService({ name: NAMES.scheduler, namespace }), { signal });
  const ip = svc.spec?.clusterIP;
  if (!ip || ip === 'None') throw new ClusterError(`the Service ${NAMES.scheduler} in ${namespace} has no cluster IP`, 503);
  return routeTarget(ctx.kube, namespace, ip);
}

/** Transient failures, and RBAC denials of an API server whose authorizer cache is still filling. */
function retryDenials(err: unknown): boolean {
  return isRetryable(err) || isRbacDenial(err);
}

/** Undefined instead of a 404. */
export async function orUndefined<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/**
 * Hubs on the Kubernetes backend for crash and recovery tests: the config a hub process and
 * an in-process hub share (same state directory, the hub's ServiceAccount), an admin token
 * seeded into the store, and what the API server, the proxy and the REST API say.
 */
import { AppsV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openStore } from '../../hub/store/sqlite.ts';
import { ChpClient } from '../../proxy/client.ts';
import { watchUntil } from '../kube/watch.ts';
import { adjacentPorts } from './hub.ts';
import { freePort, waitUntil } from './net.ts';

export const PROXY_TOKEN = 'recovery-test-proxy-token-0123456789';

/** Config of a hub on `stateDir`, as the ServiceAccount of `kubeconfig`, with its own prefix and instance. */
export async function kubeHubConfig(o: { stateDir: string; kubeconfig: string; prefix: string; extra?: Record<string, Record<string, unknown>> }) {
  const port = await adjacentPorts();
  const extra = o.extra ?? {};
  return {
    ...extra,
    hub: { port, hubPort: await freePort(), stateDir: o.stateDir, logLevel: 'info', ...extra.hub },
    proxy: { authToken: PROXY_TOKEN, ...extra.proxy },
    auth: { admins: ['teacher'], ...extra.auth },
    spawn: { backend: 'kubernetes', defaultWorkers: 1, ...extra.spawn },
    culler: { enabled: false, ...extra.culler },
    kubernetes: {
      kubeconfig: o.kubeconfig, namespacePrefix: o.prefix, instance: o.prefix, image: 'clusterhub/cluster:test',
      schedulerResources: { cpu: '200m', memory: '256Mi' }, workerResources: { cpu: '100m', memory: '128Mi' }, ...extra.kubernetes,
    },
  };
}

/** Creates the users (teacher is admin) in the hub's store and returns the teacher's API token. */
export function seedUsers(stateDir: string, students: string[]): string {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const store = openStore(join(stateDir, 'clusterhub.sqlite'));
  try {
    store.upsertUser({ login: 'teacher', admin: true });
    for (const s of students) store.upsertUser({ login: s, admin: false });
    return store.createToken('teacher', { scopes: ['user', 'admin'] }).token;
  } finally {
    store.close();
  }
}

/** A JSON call of the REST API at `base` (the public URL, or the hub's own port when the proxy is held). */
export async function call(base: string, token: string, path: string, method = 'GET', json?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}${path}`, {
    method, headers: { Authorization: `token ${token}`, 'Content-Type': 'application/json' },
    body: json === undefined ? undefined : JSON.stringify(json), signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** Cluster phase per user, as `GET /hub/api/users` shows it. */
export async function phases(base: string, token: string): Promise<Record<string, string>> {
  const { status, body } = await call(base, token, '/hub/api/users');
  if (status !== 200) throw new Error(`GET /hub/api/users: ${status}`);
  return Object.fromEntries((body as Array<{ name: string; cluster: { phase: string } }>).map((u) => [u.name, u.cluster.phase]));
}

/** The proxy's `/user/*` paths (CHP's REST API on port+1). */
export async function userRoutes(config: { hub: { port: number } }): Promise<string[]> {
  const proxy = new ChpClient({ apiUrl: `http://127.0.0.1:${config.hub.port + 1}`, authToken: PROXY_TOKEN });
  return Object.keys(await proxy.getRoutes()).filter((p) => p.startsWith('/user/')).map((p) => p.slice('/user/'.length)).sort();
}

/** This instance's namespaces, split into live ones and those terminating. */
export async function namespaces(admin: KubeConfig, instance: string): Promise<{ live: string[]; terminating: string[] }> {
  const list = await admin.makeApiClient(CoreV1Api).listNamespace({ labelSelector: `clusterhub.io/instance=${instance}` });
  const names = (pred: (deleting: boolean) => boolean) => list.items.filter((n) => pred(Boolean(n.metadata?.deletionTimestamp))).map((n) => n.metadata!.name!).sort();
  return { live: names((d) => !d), terminating: names((d) => d) };
}

/** Resolves once no namespace of `instance` is left (terminations included). */
export async function noNamespacesLeft(admin: KubeConfig, instance: string, timeoutMs = 180_000): Promise<void> {
  const seen = new Set<string>();
  const list = await admin.makeApiClient(CoreV1Api).listNamespace({ labelSelector: `clusterhub.io/instance=${instance}` });
  for (const n of list.items) seen.add(n.metadata!.name!);
  if (seen.size === 0) return;
  await watchUntil(admin, '/api/v1/namespaces', { labelSelector: `clusterhub.io/instance=${instance}`, resourceVersion: list.metadata?.resourceVersion }, (phase, ns) => {
    if (phase === 'DELETED') seen.delete(ns.metadata.name);
    else seen.add(ns.metadata.name);
    return seen.size === 0 ? true : undefined;
  }, { what: `every namespace of ${instance} to be gone`, timeoutMs });
}

/** Pids of a process's children (from /proc), e.g. the proxy a hub process started. */
export function childPids(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((task) => readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
  } catch {
    return [];
  }
}

/** True while a process with this pid runs (a zombie waiting to be reaped has ended). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Reads `user`'s progress stream until `until(event)` holds; returns that event (throws if the stream ends first). */
export async function progressUntil(base: string, token: string, user: string, until: (e: { message: string; ready?: boolean; failed?: boolean }) => boolean, timeoutMs = 300_000) {
  const res = await fetch(`${base}/hub/api/users/${user}/cluster/progress`, { headers: { Authorization: `token ${token}` }, signal: AbortSignal.timeout(timeoutMs) });
  const decoder = new TextDecoder();
  let buffer = '';
  const seen: string[] = [];
  for await (const chunk of res.body!) {
    buffer += decoder.decode(chunk as Uint8Array, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const data = buffer.slice(0, end).split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5)).join('\n');
      buffer = buffer.slice(end + 2);
      if (!data.trim()) continue;
      const event = JSON.parse(data) as { message: string; ready?: boolean; failed?: boolean };
      seen.push(event.message);
      if (until(event)) {
        await res.body!.cancel().catch(() => {});
        return event;
      }
    }
  }
  throw new Error(`the progress of ${user} ended first: ${seen.join(' | ')}`);
}

/**
 * Namespaces of `instance` that hold a cluster (its worker Deployment), sorted. A stopped student's
 * namespace, with only the workspace claim and its fences, is not one.
 */
export async function clusterNamespaces(admin: KubeConfig, instance: string): Promise<string[]> {
  const list = await admin.makeApiClient(AppsV1Api).listDeploymentForAllNamespaces({ labelSelector: `clusterhub.io/instance=${instance}` });
  return [...new Set(list.items.map((d) => d.metadata!.namespace!))].sort();
}

/** Namespaces of `instance` holding a workspace claim (deleted ones included until they are gone), sorted. */
export async function workspaceNamespaces(admin: KubeConfig, instance: string): Promise<string[]> {
  const list = await admin.makeApiClient(CoreV1Api).listPersistentVolumeClaimForAllNamespaces({ labelSelector: `clusterhub.io/instance=${instance}` });
  return list.items.filter((c) => !c.metadata?.deletionTimestamp).map((c) => c.metadata!.namespace!).sort();
}

/** Resolves once no Deployment, pod, Service or token Secret of `instance` is left (workspace claims may stay). */
export async function noClustersLeft(admin: KubeConfig, instance: string, timeoutMs = 180_000): Promise<void> {
  const labelSelector = `clusterhub.io/instance=${instance}`;
  const core = admin.makeApiClient(CoreV1Api);
  await waitUntil(`every cluster of ${instance} to be gone`, async () => {
    const [deployments, pods, services, secrets] = await Promise.all([
      admin.makeApiClient(AppsV1Api).listDeploymentForAllNamespaces({ labelSelector }), core.listPodForAllNamespaces({ labelSelector }),
      core.listServiceForAllNamespaces({ labelSelector }), core.listSecretForAllNamespaces({ labelSelector }),
    ]);
    return deployments.items.length + pods.items.length + services.items.length + secrets.items.length === 0;
  }, { timeoutMs, intervalMs: 250 });
}

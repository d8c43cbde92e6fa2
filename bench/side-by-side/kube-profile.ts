/**
 * Where a Kubernetes launch round's time goes, printed beside the bench's table:
 * - when each kind of object appeared, from the objects' own timestamps (the API server's
 *   clock, whole seconds): percentiles over the round's users, seconds after the first request;
 * - CPU seconds each process of the plane and each hub used during the round (/proc).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { AppsV1Api, CoreV1Api, NetworkingV1Api, RbacAuthorizationV1Api, type KubeConfig, type V1ObjectMeta, type V1Pod } from '@kubernetes/client-node';

const TICKS_PER_SECOND = 100;

/** utime + stime of a process, in seconds; 0 once it is gone. */
function cpuOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** Processes whose command line mentions `needle` (the plane's data directory), by their program name. */
function processesMentioning(needle: string): Map<number, string> {
  const found = new Map<number, string>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv.some((a) => a.includes(needle))) found.set(Number(entry), argv[0]!.split('/').at(-1)!);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** The pid's children, grandchildren… (the hub's managed proxy). */
function descendants(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry), ...descendants(Number(entry)));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** CPU use of the plane's processes and of one hub (with its children) from now until `done()`. */
export function cpuMeter(planeLogsDir: string, hubPid: number): { done(): string } {
  const plane = processesMentioning(dirname(planeLogsDir));
  const hub = new Map<number, string>([[hubPid, 'hub'], ...descendants(hubPid).map((p) => [p, 'hub child'] as [number, string])]);
  const all = new Map([...plane, ...hub]);
  const before = new Map([...all.keys()].map((p) => [p, cpuOf(p)]));
  const self0 = process.cpuUsage();
  return {
    done() {
      const byName = new Map<string, number>();
      for (const [pid, name] of all) byName.set(name, (byName.get(name) ?? 0) + cpuOf(pid) - before.get(pid)!);
      const self = process.cpuUsage(self0);
      byName.set('bench itself', (self.user + self.system) / 1e6);
      return [...byName].sort((a, b) => b[1] - a[1]).map(([n, s]) => `${n} ${s.toFixed(1)} s`).join(', ');
    },
  };
}

function percentiles(values: number[]): string {
  if (values.length === 0) return '–';
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return `${at(0.1)}/${at(0.5)}/${at(0.9)}`;
}

/** Seconds from `startedAt` (wall clock, ms) to each time, rounded down as the timestamps are. */
function offsets(times: Array<Date | string | undefined>, startedAt: number): number[] {
  const start = Math.floor(startedAt / 1000);
  return times.filter((t) => t !== undefined).map((t) => Math.floor(new Date(t!).getTime() / 1000) - start);
}

/**
 * When each kind of object of the round's namespaces (those starting with `prefix`) was
 * created, and when pods were scheduled and Ready: p10/p50/p90 in seconds after `startedAt`.
 */
export async function stageTimes(kc: KubeConfig, prefix: string, startedAt: number): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const net = kc.makeApiClient(NetworkingV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  const ours = <T extends { metadata?: V1ObjectMeta }>(items: T[]) => items.filter((o) => (o.metadata?.namespace ?? o.metadata?.name ?? '').startsWith(prefix));
  const created = (items: Array<{ metadata?: V1ObjectMeta }>) => offsets(ours(items).map((o) => o.metadata?.creationTimestamp), startedAt);
  const [namespaces, bindings, quotas, claims, limits, policies, accounts, secrets, services, deployments, replicasets, pods] = await Promise.all([
    core.listNamespace(), rbac.listRoleBindingForAllNamespaces(), core.listResourceQuotaForAllNamespaces(),
    core.listPersistentVolumeClaimForAllNamespaces(), core.listLimitRangeForAllNamespaces(), net.listNetworkPolicyForAllNamespaces(),
    core.listServiceAccountForAllNamespaces(), core.listSecretForAllNamespaces(), core.listServiceForAllNamespaces(),
    apps.listDeploymentForAllNamespaces(), apps.listReplicaSetForAllNamespaces(), core.listPodForAllNamespaces(),
  ]);
  const condition = (pod: V1Pod, type: string) => pod.status?.conditions?.find((c) => c.type === type && c.status === 'True')?.lastTransitionTime;
  const stages: Array<[string, number[]]> = [
    ['namespace', created(namespaces.items)],
    ['rolebinding', created(bindings.items)],
    ['resourcequota', created(quotas.items)],
    ['claim', created(claims.items)],
    ['limitrange', created(limits.items)],
    ['networkpolicy', created(policies.items)],
    ['serviceaccount', created(accounts.items.filter((a) => a.metadata?.name !== 'default'))],
    ['secret', created(secrets.items)],
    ['service', created(services.items)],
    ['deployment', created(deployments.items)],
    ['replicaset', created(replicasets.items)],
    ['pod', created(pods.items)],
    ['pod scheduled', offsets(ours(pods.items).map((p) => condition(p, 'PodScheduled')), startedAt)],
    ['pod ready', offsets(ours(pods.items).map((p) => condition(p, 'Ready')), startedAt)],
  ];
  return stages.filter(([, v]) => v.length > 0).map(([name, v]) => `${name} ${percentiles(v)}`).join(', ');
}

/**
 * helm for the chart tests: the binary test/kube/helm.sh builds (built here when missing),
 * run against a plane's kubeconfig, and the chart rendered into objects.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
/** The chart's directory. */
export const CHART = join(ROOT, 'k8s', 'chart', 'clusterhub');
/** The minimal class values file the README shows. */
export const CLASS_VALUES = join(ROOT, 'k8s', 'chart', 'class.example.yaml');
/** The namespace k8s/rbac names for the hub's ServiceAccount. */
export const NAMESPACE = 'clusterhub';

/** A helm command's outcome; `output` is stdout and stderr together when it failed. */
export interface HelmResult {
  ok: boolean;
  stdout: string;
  output: string;
}

/** Builds helm when missing (minutes, once per machine) and returns its path. */
export async function ensureHelm(): Promise<string> {
  const script = join(ROOT, 'test', 'kube', 'helm.sh');
  await run('bash', [script], { maxBuffer: 16 << 20 });
  const { stdout } = await run('bash', [script, '--print']);
  return stdout.trim();
}

/** Runs helm; never throws for a failing exit (the result says). */
export async function helm(bin: string, args: string[], env: Record<string, string> = {}): Promise<HelmResult> {
  try {
    const { stdout, stderr } = await run(bin, args, { maxBuffer: 64 << 20, env: { ...process.env, ...env } });
    return { ok: true, stdout, output: `${stdout}${stderr}` };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return { ok: false, stdout: e.stdout ?? '', output: `${e.stdout ?? ''}${e.stderr ?? ''}${e.message}` };
  }
}

/** The objects of a multi-document YAML stream, empty documents dropped. */
export function objectsOf(yaml: string): KubernetesObject[] {
  return parseAllDocuments(yaml).map((d) => d.toJS() as KubernetesObject | null).filter((o): o is KubernetesObject => o !== null);
}

/** `helm template` of the chart into objects; throws with helm's message when it fails. */
export async function renderChart(bin: string, args: string[] = []): Promise<KubernetesObject[]> {
  const result = await helm(bin, ['template', 'clusterhub', CHART, '--namespace', NAMESPACE, ...args]);
  if (!result.ok) throw new Error(result.output);
  return objectsOf(result.stdout);
}

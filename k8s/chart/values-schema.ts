/**
 * The chart's values.schema.json, generated from the chart's value shapes below and the hub's
 * configuration schema (config/schema.ts) for `hub.config`: one source for what the hub
 * accepts. Refresh with `node k8s/chart/values-schema.ts --write`; a test fails when stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { configSchema } from '../../config/schema.ts';

const quantity = z.union([z.string(), z.number()]);
const resources = z.strictObject({
  requests: z.record(z.string(), quantity).optional(),
  limits: z.record(z.string(), quantity).optional(),
}).describe('Kubernetes resource requests and limits.');
const image = z.strictObject({
  name: z.string().min(1).describe('Image repository.'),
  tag: z.string().min(1).describe('Image tag.'),
  pullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).describe('Pull policy.'),
});
const placement = {
  nodeSelector: z.record(z.string(), z.string()).describe('Node selector of the pod.'),
  tolerations: z.array(z.record(z.string(), z.unknown())).describe('Tolerations of the pod.'),
};

/** The chart's values; `hub.config` is the hub's configuration file. */
export const valuesSchema = z.strictObject({
  hub: z.strictObject({
    image: image.describe('The hub image; the proxy runs from it too.'),
    cookieSecret: z.union([z.literal(''), z.string().min(32)]).describe('Key that signs session cookies; empty: generated once and kept.'),
    config: configSchema.describe('The hub\'s configuration file (the README\'s configuration table).'),
    resources,
    db: z.strictObject({
      pvc: z.strictObject({
        storage: z.string().min(1).describe('Size of the hub\'s state volume.'),
        storageClassName: z.string().describe('StorageClass; empty: the cluster\'s default.'),
      }),
    }),
    ...placement,
  }),
  proxy: z.strictObject({
    secretToken: z.union([z.literal(''), z.string().min(16)]).describe('CONFIGPROXY_AUTH_TOKEN; empty: generated once and kept.'),
    resources,
    service: z.strictObject({
      type: z.enum(['LoadBalancer', 'NodePort', 'ClusterIP']).describe('Type of the public Service.'),
      port: z.number().int().min(1).max(65535).describe('Port of the public Service.'),
      nodePort: z.number().int().min(0).max(65535).describe('Node port when type is NodePort; 0: Kubernetes picks.'),
      annotations: z.record(z.string(), z.string()).describe('Annotations of the public Service.'),
    }),
    pdb: z.strictObject({ enabled: z.boolean().describe('A PodDisruptionBudget (minAvailable 1) for the proxy.') }),
    ...placement,
  }),
  cluster: z.strictObject({
    image: image.describe('The multi-engine cluster image.'),
    scheduler: z.strictObject({ resources: z.strictObject({ cpu: z.string(), memory: z.string() }).describe('Requests = limits of the scheduler pod.') }),
    worker: z.strictObject({ resources: z.strictObject({ cpu: z.string(), memory: z.string() }).describe('Requests = limits of each worker pod.') }),
    removeNamespacesOnUninstall: z.boolean().describe('helm uninstall deletes every student namespace of this hub.'),
  }),
  ingress: z.strictObject({
    enabled: z.boolean().describe('An Ingress in front of the public Service.'),
    className: z.string().describe('IngressClass; empty: the cluster\'s default.'),
    annotations: z.record(z.string(), z.string()).describe('Annotations, passed through (cert-manager\'s too).'),
    hosts: z.array(z.string().min(1)).describe('Host names served.'),
    tls: z.array(z.strictObject({ secretName: z.string().min(1), hosts: z.array(z.string()).optional() })).describe('TLS entries of the Ingress.'),
  }),
  // Helm passes this to every chart's schema check (global values of parent charts).
  global: z.record(z.string(), z.unknown()).optional(),
});

/** values.schema.json as it belongs in the chart, with a trailing newline. */
export function renderValuesSchema(): string {
  const json = z.toJSONSchema(valuesSchema, { io: 'input', unrepresentable: 'any' });
  return `${JSON.stringify(json, null, 2)}\n`;
}

/** Where the chart keeps it. */
export const VALUES_SCHEMA_FILE = join(import.meta.dirname, 'clusterhub', 'values.schema.json');

if (import.meta.main) {
  if (process.argv.includes('--write')) {
    writeFileSync(VALUES_SCHEMA_FILE, renderValuesSchema());
    process.stdout.write(`${VALUES_SCHEMA_FILE} updated\n`);
  } else {
    process.stdout.write(renderValuesSchema());
  }
}
export const currentValuesSchema = (): string => readFileSync(VALUES_SCHEMA_FILE, 'utf8');

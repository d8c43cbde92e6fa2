/**
 * The single source of truth for clusterhub's configuration: defaults, validation
 * and the README's configuration reference all come from this schema.
 */
import { isIP } from 'node:net';
import cron from 'node-cron';
import { z } from 'zod';
import { isLoopback, isWildcard } from './addresses.ts';

/** A GitHub login's shape, as an HTML `pattern` (implicitly anchored; `-` escaped for the `v` flag). */
export const LOGIN_PATTERN_SOURCE = '[A-Za-z0-9][A-Za-z0-9\\-]{0,38}';
/** A GitHub login's shape: the one rule for config, sign-in and the local backend's directories. */
export const LOGIN_PATTERN = new RegExp(`^${LOGIN_PATTERN_SOURCE}$`);

const port = z.number().int().min(1).max(65535);
const seconds = z.number().positive();
const login = z.string().regex(LOGIN_PATTERN, 'a GitHub login');

/** node-cron parses the expression itself, so a typo fails at start, not at 3 am. */
const cronExpression = z.string().superRefine((schedule, ctx) => {
  const result = cron.validateDetailed(schedule);
  if (result.valid) return;
  const details = result.errors.map((e) => `${e.field}: ${e.message}`).join('; ');
  ctx.addIssue({ code: 'custom', message: `is not a valid cron expression${details ? ` (${details})` : ''}; expected e.g. "*/5 * * * *" (every 5 minutes)` });
});

const hub = z.strictObject({
  bind: z.string().default('127.0.0.1').describe('Address the hub (and a managed proxy) listens on.'),
  port: port.default(8000).describe('Public port: the proxy listens here and sends the hub its /hub/ traffic.'),
  hubPort: port.default(8081).describe('Port of the hub process itself, behind the proxy (always loopback unless deployed).'),
  publicUrl: z.url().optional().describe('URL students use, e.g. https://hub.example.edu. Defaults to http://{bind}:{port}.'),
  stateDir: z.string().default('./state').describe('Where the database, generated secrets, workspaces and logs live.'),
  cookieSecret: z.string().min(32).optional().describe('Key that signs session cookies. Generated into stateDir when unset.'),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info').describe('Log level of the JSON logs.'),
  eventRetentionDays: z.number().positive().default(365).describe('How long the event log (launches, culls, sign-ins, admin actions) keeps an event.'),
  activityIntervalSeconds: seconds.default(60).describe('How often each running cluster\'s activity (proxy traffic, Jupyter, busy kernels) is written to `last_activity`.'),
  userSubdomains: z.boolean().default(false)
    .describe('Serve each student\'s cluster on an origin of its own, {login}.{host of hub.publicUrl} (wildcard DNS and certificate needed); off: every student shares the hub\'s origin.'),
  maxBodyBytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(65536).describe('Largest request body the hub reads; a bigger one is refused with 413.'),
});

const proxy = z.strictObject({
  mode: z.enum(['managed', 'external']).default('managed').describe('`managed`: the hub starts and supervises configurable-http-proxy; `external`: use apiUrl.'),
  apiUrl: z.url().optional().describe('REST API of an external proxy (required when mode is external). Managed: http://127.0.0.1:{hub.port+1}.'),
  authToken: z.string().min(16).optional().describe('CONFIGPROXY_AUTH_TOKEN. Generated into stateDir when unset.'),
  checkRoutesSeconds: seconds.default(30).describe('How often routes are compared with the clusters and repaired.'),
});

const github = z.strictObject({
  clientId: z.string().min(1).describe('OAuth app client id.'),
  clientSecret: z.string().min(1).describe('OAuth app client secret.'),
  callbackUrl: z.url().optional().describe('Defaults to {publicUrl}/hub/oauth_callback.'),
  baseUrl: z.url().default('https://github.com').describe('GitHub (Enterprise) web URL, for /login/oauth/*.'),
  apiUrl: z.url().default('https://api.github.com').describe('GitHub (Enterprise) REST API URL.'),
});

const auth = z.strictObject({
  github: github.optional().describe('GitHub sign-in. Without it a dev sign-in is offered, and only on loopback.'),
  allowedUsers: z.array(login).default([]).describe('Logins allowed to sign in.'),
  allowedOrgs: z.array(z.string().regex(/^[A-Za-z0-9-]+(?::[A-Za-z0-9_.-]+)?$/, '`org` or `org:team`')).default([])
    .describe('Organisations (`org`) or teams (`org:team-slug`) whose members may sign in.'),
  admins: z.array(login).default([]).describe('Logins with instructor rights (always allowed).'),
  allowAll: z.boolean().default(false).describe('Allow every GitHub user (dev sign-in always allows everyone).'),
  adminAccess: z.boolean().default(false).describe('Instructors may open a student\'s JupyterLab (they then act as the student, after a warning).'),
});

/** Launches at once on the local backend: each one starts Python processes on this machine. */
export const LOCAL_LAUNCH_CONCURRENCY = 4;
/**
 * Launches at once on Kubernetes: a whole class. A launch there is a dozen API requests and
 * then a wait on the shared watch; the API gate (kubernetes.apiConcurrency), not this line,
 * keeps the API server from being flooded (bench/side-by-side/kube-bench.ts measures it).
 */
export const KUBERNETES_LAUNCH_CONCURRENCY = 100;

const spawn = z.strictObject({
  backend: z.enum(['local', 'kubernetes']).default('local').describe('Where clusters run.'),
  startTimeoutSeconds: seconds.default(300).describe('A launch not ready this long after the backend began it is stopped and reported failed.'),
  queueTimeoutSeconds: seconds.default(600).describe('A launch still waiting in line (see concurrency) after this long fails and says so.'),
  concurrency: z.number().int().min(1).max(500).optional()
    .describe(`Launches in flight against the backend at once; the rest queue (each sees its place in line). Default ${LOCAL_LAUNCH_CONCURRENCY} on the local backend (every launch starts processes on this machine), ${KUBERNETES_LAUNCH_CONCURRENCY} on Kubernetes (a launch there mostly waits on the API server's watch; kubernetes.apiConcurrency bounds the requests in flight).`),
  defaultWorkers: z.number().int().min(0).default(2).describe('Workers of a launch that does not say.'),
  maxWorkers: z.number().int().min(0).default(8).describe('Most workers a student may ask for.'),
}).transform((s) => ({ ...s, concurrency: s.concurrency ?? (s.backend === 'kubernetes' ? KUBERNETES_LAUNCH_CONCURRENCY : LOCAL_LAUNCH_CONCURRENCY) }));

const local = z.strictObject({
  venv: z.string().optional().describe('Python virtualenv with images/cluster/requirements.txt. Default ~/.cache/clusterhub/venv-{hash of requirements}; as root /var/lib/clusterhub/venv-{hash}, which students\' accounts can run.'),
  python: z.string().default('python3').describe('Python used to build the virtualenv.'),
  workerThreads: z.number().int().min(1).default(1).describe('Threads per Dask worker.'),
  workerMemory: z.string().regex(/^\d+(?:\.\d+)?\s*[KMGT]i?B?$/i).default('1GiB').describe('Memory limit per Dask worker.'),
  enginesPerWorker: z.number().int().min(1).default(1).describe('IPython engines per worker.'),
  spark: z.enum(['auto', 'on', 'off']).default('auto').describe('`auto`: run Spark when Java is found.'),
  materialsGitUrl: z.string().optional().describe('Git URL cloned into each new workspace (a failure is a warning).'),
  userPrefix: z.string().regex(/^[a-z][a-z0-9_-]{0,19}$/, 'a short lowercase user name prefix (at most 20 characters)').default('clusterhub-')
    .describe('When the hub runs as root, each student gets the OS account {prefix}{safe login}, created on first launch (no login shell).'),
  sharedAccount: z.boolean().default(false)
    .describe('When the hub is not root, every cluster runs as the hub\'s own account (no isolation): allow more than one non-admin student anyway.'),
});

const kubernetes = z.strictObject({
  namespacePrefix: z.string().regex(/^[a-z0-9]([-a-z0-9]{0,18}[a-z0-9])?$/, 'a short DNS label').default('clusterhub').describe('Namespaces are {prefix}-{safe login}.'),
  instance: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/).default('default').describe('Labels this hub\'s namespaces, so two hubs can share a cluster.'),
  kubeconfig: z.string().optional().describe('Path to a kubeconfig. Default: KUBECONFIG, ~/.kube/config, then in-cluster.'),
  image: z.string().default('ghcr.io/clusterhub/cluster:0.1.0').describe('The multi-engine cluster image.'),
  imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).default('IfNotPresent').describe('Pull policy of cluster pods.'),
  schedulerResources: z.strictObject({ cpu: z.string().default('1'), memory: z.string().default('4Gi') }).prefault({}).describe('Requests=limits of the scheduler pod.'),
  workerResources: z.strictObject({ cpu: z.string().default('1'), memory: z.string().default('4Gi') }).prefault({}).describe('Requests=limits of each worker pod.'),
  podMax: z.strictObject({ cpu: z.string().default('2'), memory: z.string().default('8Gi') }).prefault({}).describe('LimitRange maximum per pod.'),
  quota: z.strictObject({ cpu: z.string().default('16'), memory: z.string().default('64Gi'), pods: z.number().int().min(2).default(110) }).prefault({}).describe('ResourceQuota per cluster.'),
  nodeSelector: z.record(z.string(), z.string()).default({}).describe('Node selector of cluster pods.'),
  tolerations: z.array(z.record(z.string(), z.unknown())).default([]).describe('Tolerations of cluster pods.'),
  extraPodSpec: z.record(z.string(), z.unknown()).default({}).describe('Merged into every cluster pod spec.'),
  routeTarget: z.string().default('http://scheduler.{namespace}.svc.cluster.local:8888').describe('Proxy target of a cluster; {namespace} and {clusterIP} (the scheduler Service\'s address) are substituted.'),
  proxyPodSelector: z.record(z.string(), z.string()).default({ 'app.kubernetes.io/component': 'proxy' }).describe('Labels of the proxy pods the NetworkPolicy admits.'),
  proxyNamespace: z.string().default('clusterhub').describe('Namespace of the proxy pods the NetworkPolicy admits.'),
  restrictEgress: z.boolean().default(false).describe('Deny egress outside the namespace (DNS stays open).'),
  apiConcurrency: z.number().int().min(1).default(8).describe('Concurrent requests against the API server.'),
  workspace: z.strictObject({
    storageClass: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'a StorageClass name').optional().describe('StorageClass of each student\'s workspace claim. Unset: the cluster\'s default class.'),
    size: z.string().regex(/^\d+(?:\.\d+)?(?:[KMGTPE]i?)?$/, 'a quantity such as 10Gi').default('10Gi').describe('Size of each student\'s workspace claim.'),
    accessMode: z.enum(['ReadWriteOnce', 'ReadWriteMany']).default('ReadWriteOnce').describe('`ReadWriteMany` (the class must support it) also mounts the workspace on every worker.'),
  }).prefault({}).describe('The PersistentVolumeClaim per student, mounted at the workspace; kept by stop and cull, removed by reset.'),
  materialsGitUrl: z.string().optional().describe('Git URL cloned into a new (empty) workspace by an init container; never over a student\'s files.'),
  materialsGitRef: z.string().regex(/^[\w./-]+$/, 'a branch or tag').optional().describe('Branch or tag of materialsGitUrl (default: its default branch).'),
});

const culler = z.strictObject({
  enabled: z.boolean().default(true).describe('Cull idle clusters.'),
  schedule: cronExpression.default('*/5 * * * *').describe('node-cron expression (seconds field allowed) of the sweep.'),
  idleTimeoutSeconds: seconds.default(3600).describe('A cluster idle (proxy and Jupyter) this long is stopped.'),
  maxAgeSeconds: z.number().min(0).default(0).describe('Stop clusters older than this whatever their activity (0: never).'),
  concurrency: z.number().int().min(1).default(10).describe('Clusters checked or stopped at once.'),
  dryRun: z.boolean().default(false).describe('Log what would be culled, change nothing.'),
  orphanGraceSeconds: seconds.default(600).describe('Age before an unknown namespace or process group is removed.'),
});

export const configSchema = z.strictObject({
  hub: hub.prefault({}),
  proxy: proxy.prefault({}),
  auth: auth.prefault({}),
  spawn: spawn.prefault({}),
  local: local.prefault({}),
  kubernetes: kubernetes.prefault({}),
  culler: culler.prefault({}),
}).superRefine((c, ctx) => {
  if (c.spawn.defaultWorkers > c.spawn.maxWorkers) {
    ctx.addIssue({ code: 'custom', path: ['spawn', 'defaultWorkers'], message: `must be at most spawn.maxWorkers (${c.spawn.maxWorkers})` });
  }
  if (c.proxy.mode === 'external' && !c.proxy.apiUrl) {
    ctx.addIssue({ code: 'custom', path: ['proxy', 'apiUrl'], message: 'is required when proxy.mode is external' });
  }
  // Without GitHub only the development sign-in exists, and it lets anyone sign in as anyone.
  if (c.auth.github === undefined && !isLoopback(c.hub.bind)) {
    ctx.addIssue({
      code: 'custom', path: ['hub', 'bind'],
      message: 'is not a loopback address, but auth.github is not set: without GitHub only the development sign-in exists, ' +
        'and it lets anyone sign in as anyone. Set auth.github (clientId, clientSecret) or bind to 127.0.0.1',
    });
  }
  if (c.auth.github === undefined && c.hub.publicUrl && !isLoopback(new URL(c.hub.publicUrl).hostname)) {
    ctx.addIssue({
      code: 'custom', path: ['hub', 'publicUrl'],
      message: 'is not on this machine, but auth.github is not set: students would reach the development sign-in, ' +
        'which lets anyone sign in as anyone. Set auth.github (clientId, clientSecret), or use a loopback hub.publicUrl for development',
    });
  }
  // Students get {login}.{host}: an address has no subdomains.
  const publicHost = c.hub.publicUrl ? new URL(c.hub.publicUrl).hostname : c.hub.bind;
  if (c.hub.userSubdomains && isIP(publicHost.replace(/^\[|\]$/g, '')) !== 0) {
    ctx.addIssue({
      code: 'custom', path: ['hub', 'userSubdomains'],
      message: `needs hub.publicUrl with a host name (students get {login}.{host}), not the address ${publicHost}: ` +
        'set hub.publicUrl, e.g. https://hub.example.edu or http://localhost:8000',
    });
  }
  if (c.auth.github !== undefined && isWildcard(c.hub.bind) && !c.hub.publicUrl && !c.auth.github.callbackUrl) {
    ctx.addIssue({
      code: 'custom', path: ['hub', 'publicUrl'],
      message: `is required while hub.bind is ${c.hub.bind}: GitHub cannot call back to a wildcard address. ` +
        'Set hub.publicUrl (e.g. https://hub.example.edu) or auth.github.callbackUrl',
    });
  }
});

/** The validated configuration, with every default filled in. */
export type Config = z.infer<typeof configSchema>;
/** What a config file may contain. */
export type ConfigInput = z.input<typeof configSchema>;

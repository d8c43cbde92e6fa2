/**
 * The Helm chart installed on the test plane's real node with the images built here
 * (imported into the node's containerd, pull policy Never: no registry). The hub pod talks
 * to the API server as the chart's ServiceAccount only (in-cluster config, no kubeconfig),
 * and to the GitHub emulator on the node's bridge address; the student's browser (an HTTP
 * client with a cookie jar) reaches everything through the proxy's NodePort Service.
 * Proven: both pods Running under PodSecurity restricted and the hub ready; GitHub sign-in,
 * Launch and JupyterLab through the in-cluster proxy; `helm upgrade` restarts only the hub,
 * which adopts the cluster while the student's kernel websocket stays open; uninstall
 * keeps the student's namespace, and with cluster.removeNamespacesOnUninstall its hook
 * Job's pod removes it.
 */
import test from 'ava';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { configSchema } from '../config/schema.ts';
import { namespaceFor } from '../spawner/names.ts';
import { startGitHubEmulator, type GitHubEmulator } from './fixtures/github.ts';
import { CHART, NAMESPACE, ensureHelm, helm } from './helpers/helm.ts';
import { HttpClient, hiddenField } from './helpers/http.ts';
import { openKernel, type KernelSession } from './helpers/kernel.ts';
import { waitUntil } from './helpers/net.ts';
import { namespaceGone } from './helpers/real-node.ts';
import { exposeApiServerToPods, type ApiRelay } from './kube/node/api-from-pods.ts';
import { startPlane, type Plane } from './kube/plane.ts';
import { waitForPods, watchUntil } from './kube/watch.ts';

const RESTRICTED = { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/warn': 'restricted' };
const CLIENT = { clientId: 'Iv1.chart-real-node', clientSecret: 'chart-real-node-secret-0123456789' };
// A NodePort of this plane's own: no other Service exists to hold it; kube-proxy answers it on the bridge address.
const NODE_PORT = 30000 + Math.floor(Math.random() * 2700);
const STUDENT = 'alice';

let bin: string;
let plane: Plane;
let admin: KubeConfig;
let core: CoreV1Api;
let relay: ApiRelay;
let github: GitHubEmulator;
let workDir: string;
let valuesFile: string;
let publicUrl: string;

/** helm against this plane, in the release namespace. */
const helmHere = (...args: string[]) => helm(bin, [...args, '--namespace', NAMESPACE, '--kubeconfig', plane.kubeconfigPath]);
const splitRef = (ref: string) => ({ name: ref.slice(0, ref.lastIndexOf(':')), tag: ref.slice(ref.lastIndexOf(':') + 1), pullPolicy: 'Never' });
const ready = (pod: V1Pod) => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

test.before(async (t) => {
  t.timeout(30 * 60_000, 'helm, the plane, the real node and its images (cold: minutes)');
  bin = await ensureHelm();
  plane = await startPlane({ nodes: 1, realNode: true });
  const node = plane.realNode!;
  admin = new KubeConfig();
  admin.loadFromFile(plane.kubeconfigPath);
  core = admin.makeApiClient(CoreV1Api);
  await node.ctr(['images', 'import', '--snapshotter', 'overlayfs', node.images.hub.archive]);
  relay = await exposeApiServerToPods(admin, plane.server);
  publicUrl = `http://${node.address}:${NODE_PORT}`;
  github = await startGitHubEmulator({
    ...CLIENT, host: node.address, callbackUrl: `${publicUrl}/hub/oauth_callback`,
    users: [{ login: STUDENT, id: 2001 }, { login: 'mallory', id: 2666 }],
  });
  workDir = await mkdtemp(join(tmpdir(), 'clusterhub-chart-node-'));
  const placement = { nodeSelector: node.nodeSelector, tolerations: node.tolerations };
  const small = (cpu: string, memory: string) => ({ requests: { cpu, memory }, limits: { memory } });
  valuesFile = join(workDir, 'values.yaml');
  await writeFile(valuesFile, stringify({
    hub: {
      image: splitRef(node.images.hub.ref), resources: small('100m', '512Mi'), ...placement,
      config: {
        hub: { publicUrl },
        auth: { github: { ...CLIENT, baseUrl: github.baseUrl, apiUrl: github.apiUrl }, allowedUsers: [STUDENT] },
        spawn: { defaultWorkers: 1, maxWorkers: 1, startTimeoutSeconds: 420 },
        culler: { enabled: false },
        kubernetes: placement,
      },
    },
    proxy: { resources: small('100m', '256Mi'), service: { type: 'NodePort', nodePort: NODE_PORT }, ...placement },
    cluster: {
      image: splitRef(node.images.cluster.ref),
      scheduler: { resources: { cpu: '1', memory: '2Gi' } },
      worker: { resources: { cpu: '300m', memory: '1536Mi' } },
    },
  }));
  await core.createNamespace({ body: { metadata: { name: NAMESPACE, labels: RESTRICTED } } });
  await watchUntil(admin, `/api/v1/namespaces/${NAMESPACE}/serviceaccounts`, { fieldSelector: 'metadata.name=default' },
    (phase) => (phase === 'ADDED' ? true : undefined), { what: 'the default ServiceAccount of clusterhub', timeoutMs: 60_000 });
});

test.after.always(async () => {
  await kernel?.close().catch(() => {});
  await github?.close();
  await relay?.close();
  await plane?.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** The Running, Ready pods of one of the chart's components (resolves once there is exactly one). */
const componentPod = (component: string, what: string, unlike?: string) => waitForPods(admin, NAMESPACE, `app.kubernetes.io/component=${component}`,
  (pods) => pods.length === 1 && ready(pods[0]!) && pods[0]!.metadata?.uid !== unlike, { what, timeoutMs: 300_000 }).then((pods) => pods[0]!);

/**
 * Waits until the hub answers `/hub/health` through the proxy's Service, and says what came
 * before. A pod turns Ready before kube-proxy has programmed its Service's new endpoint (and
 * the hub's Deployment is Recreate: during an upgrade no hub runs for a moment), so right
 * after an install or an upgrade the proxy may find no hub behind the Service and answer 503
 * itself; the check asks again, as `helm install --wait` and a student's reload would.
 */
async function hubAnswers(t: import('ava').ExecutionContext): Promise<string> {
  const answers: number[] = [];
  const health = await waitUntil('the hub to answer through the proxy', async () => {
    const reply = await fetch(`${publicUrl}/hub/health`, { signal: AbortSignal.timeout(10_000) });
    answers.push(reply.status);
    return reply.status === 200 ? reply : undefined;
  }, { timeoutMs: 60_000, intervalMs: 250 });
  t.like(await health.json(), { status: 'ok', proxy: { mode: 'external' } });
  return `${answers.join(', ')} (${answers.length} requests after the hub pod was Ready)`;
}

let hubPod: V1Pod;
let proxyPod: V1Pod;

test.serial('helm install runs the hub and the proxy on the real node under PodSecurity restricted, the hub as the chart\'s ServiceAccount', async (t) => {
  t.timeout(8 * 60_000);
  const started = performance.now();
  const installed = await helmHere('install', 'clusterhub', CHART, '-f', valuesFile);
  t.true(installed.ok, installed.output);
  [hubPod, proxyPod] = await Promise.all([componentPod('hub', 'the hub pod Ready'), componentPod('proxy', 'the proxy pod Ready')]);
  t.log(`helm install → hub ready: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  for (const pod of [hubPod, proxyPod]) {
    t.is(pod.spec?.nodeName, plane.realNode!.name, `${pod.metadata?.name} runs on the real node`);
  }
  const ns = await core.readNamespace({ name: NAMESPACE });
  t.is(ns.metadata?.labels?.['pod-security.kubernetes.io/enforce'], 'restricted', 'admitted by a namespace that enforces restricted');
  t.is(hubPod.spec?.serviceAccountName, 'clusterhub');
  const config = await core.readNamespacedSecret({ name: 'hub-config', namespace: NAMESPACE });
  t.notRegex(Buffer.from(config.data!['clusterhub.yaml']!, 'base64').toString(), /kubeconfig/, 'no kubeconfig: in-cluster credentials only');
  // The hub's own health endpoint answers through the proxy's Service (the proxy's default route).
  t.log(`hub health through the proxy: ${await hubAnswers(t)}`);
});

let kernel: KernelSession | undefined;
let browser: HttpClient;
let labBase: string;
let jupyterToken: string;

/** The GitHub round-trip through the proxy: oauth_login → the emulator's authorize (as `login`) → the hub's callback. */
async function signIn(client: HttpClient, login: string) {
  const start = await client.get('/hub/oauth_login');
  if (start.status !== 302 || !start.location) throw new Error(`oauth_login answered ${start.status}: ${start.text.slice(0, 200)}`);
  const authorize = new URL(start.location);
  authorize.searchParams.set('login', login);
  const approved = await client.get(authorize.href);
  if (approved.status !== 302 || !approved.location) throw new Error(`authorize answered ${approved.status}`);
  return client.get(approved.location);
}

test.serial('a student signs in with GitHub through the proxy\'s Service, launches, and reaches JupyterLab and a kernel', async (t) => {
  t.timeout(10 * 60_000);
  t.is((await signIn(new HttpClient(publicUrl), 'mallory')).status, 403, 'a GitHub user the class does not allow is refused');
  browser = new HttpClient(publicUrl);
  const signedIn = await signIn(browser, STUDENT);
  t.is(signedIn.status, 303, signedIn.text.slice(0, 300));
  t.true(github.requests.some((r) => r.path === '/login/oauth/access_token'), 'the hub pod exchanged the code with the emulator');
  const home = await browser.get('/hub/home');
  t.is(home.status, 200);
  const launchedAt = performance.now();
  const launch = await browser.post('/hub/spawn', { form: { workers: '1', _csrf: hiddenField(home.text, '_csrf') ?? '' } });
  t.is(launch.status, 303, launch.text.slice(0, 300));
  // The home page's progress stream, read to its end (minutes: two pods start on the node).
  const cookie = browser.cookiesFor(`${publicUrl}/hub/`).map((c) => `${c.name}=${c.value}`).join('; ');
  const progress = await fetch(`${publicUrl}/hub/api/users/${STUDENT}/cluster/progress`, { headers: { Cookie: cookie }, signal: AbortSignal.timeout(8 * 60_000) });
  const events = (await progress.text()).split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)) as Record<string, unknown>);
  t.is(events.at(-1)?.ready, true, JSON.stringify(events.at(-1)));

  const open = await browser.get(`/hub/open/${STUDENT}`);
  t.is(open.status, 302);
  const labUrl = new URL(open.location!);
  jupyterToken = labUrl.searchParams.get('token') ?? '';
  labBase = `${publicUrl}/user/${STUDENT}/`;
  let lab = await browser.get(labUrl.href);
  for (let hops = 0; lab.status >= 300 && lab.status < 400 && hops < 3; hops++) lab = await browser.follow(lab);
  t.is(lab.status, 200);
  t.regex(lab.text, /<title>JupyterLab<\/title>/);
  t.log(`Launch → JupyterLab: ${((performance.now() - launchedAt) / 1000).toFixed(1)} s`);
  kernel = await openKernel(labBase, jupyterToken);
  t.regex((await kernel.run('import socket; x = 41; print(socket.gethostname())')).trim(), /^scheduler/, 'the kernel runs in the student\'s scheduler pod');
});

test.serial('from a student\'s kernel, the proxy\'s API (which rewrites routes) and the hub\'s port are closed by the chart\'s NetworkPolicies', async (t) => {
  t.timeout(3 * 60_000);
  t.truthy(kernel, 'needs the launched cluster');
  const svc = (name: string, port: number) => `${name}.${NAMESPACE}.svc.cluster.local:${port}`;
  const targets = [svc('proxy-api', 8001), svc('hub', 8081), svc('proxy-public', 80)];
  const code = [
    'import json, socket',
    'out = {}',
    `for target in ${JSON.stringify(targets)}:`,
    '    host, port = target.rsplit(":", 1)',
    '    try:',
    '        socket.create_connection((host, int(port)), timeout=5).close()',
    '        out[target] = "connected"',
    '    except Exception as e:',
    '        out[target] = type(e).__name__',
    'print(json.dumps(out))',
  ].join('\n');
  const reached = JSON.parse(await kernel!.run(code)) as Record<string, string>;
  t.regex(reached[targets[0]!]!, /ConnectionRefusedError|TimeoutError/, 'the proxy\'s API');
  t.regex(reached[targets[1]!]!, /ConnectionRefusedError|TimeoutError/, 'the hub');
  t.is(reached[targets[2]!], 'connected', 'the public port is open to all (so the probe itself works)');
});

test.serial('helm upgrade with a changed value restarts the hub only: it adopts the cluster, and the student\'s kernel websocket stays open', async (t) => {
  t.timeout(8 * 60_000);
  t.truthy(kernel, 'needs the launched cluster');
  const before = await browser.get(`/hub/api/users/${STUDENT}`);
  const started = performance.now();
  const upgraded = await helmHere('upgrade', 'clusterhub', CHART, '-f', valuesFile, '--set', 'hub.config.culler.idleTimeoutSeconds=1800');
  t.true(upgraded.ok, upgraded.output);
  const newHub = await componentPod('hub', 'a new hub pod Ready', hubPod.metadata?.uid);
  t.not(newHub.metadata?.uid, hubPod.metadata?.uid, 'the hub was restarted');
  t.log(`helm upgrade → new hub ready: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  t.log(`hub health through the proxy after the upgrade: ${await hubAnswers(t)}`);
  const proxies = await core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: 'app.kubernetes.io/component=proxy' });
  t.deepEqual(proxies.items.map((p) => [p.metadata?.uid, p.status?.containerStatuses?.[0]?.restartCount]), [[proxyPod.metadata?.uid, 0]], 'the proxy pod stayed');
  t.is(kernel!.closedWith(), undefined, 'the websocket through the proxy never closed');
  t.is((await kernel!.run('print(x + 1)')).trim(), '42', 'the same kernel, over the same socket');
  const after = await browser.get(`/hub/api/users/${STUDENT}`);
  t.is(after.status, 200, 'the student\'s session outlives the hub restart');
  t.is(after.json<{ cluster: { phase: string; started: string } }>().cluster.phase, 'running');
  t.is(after.json<{ cluster: { started: string } }>().cluster.started, before.json<{ cluster: { started: string } }>().cluster.started, 'adopted, not relaunched');
  const lab = await browser.get(`${labBase}lab`);
  t.is(lab.status, 200, 'a new request reaches JupyterLab: the route is kept');
});

test.serial('helm uninstall keeps the student\'s namespace; with removeNamespacesOnUninstall the hook Job\'s pod removes it as the hub\'s ServiceAccount', async (t) => {
  t.timeout(10 * 60_000);
  await kernel?.close();
  kernel = undefined;
  const studentNs = namespaceFor(configSchema.parse({}).kubernetes.namespacePrefix, STUDENT);
  const kept = await helmHere('uninstall', 'clusterhub', '--wait', '--timeout', '3m');
  t.true(kept.ok, kept.output);
  t.is((await core.readNamespace({ name: studentNs })).status?.phase, 'Active', 'the student\'s namespace stays');
  t.true((await core.listNamespacedPod({ namespace: studentNs })).items.some(ready), 'and so does the running cluster');

  const reinstalled = await helmHere('install', 'clusterhub', CHART, '-f', valuesFile, '--set', 'cluster.removeNamespacesOnUninstall=true');
  t.true(reinstalled.ok, reinstalled.output);
  await componentPod('hub', 'the reinstalled hub Ready');
  // The hook's pod, watched from before helm creates it: it must really run (on the real node, not a kwok one).
  const hookPod = watchUntil(admin, `/api/v1/namespaces/${NAMESPACE}/pods`, { labelSelector: 'batch.kubernetes.io/job-name=remove-student-namespaces' },
    (_phase, pod: V1Pod) => (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed' ? pod : undefined), { what: 'the hook Job\'s pod to finish', timeoutMs: 5 * 60_000 });
  const removed = await helmHere('uninstall', 'clusterhub', '--timeout', '5m');
  t.true(removed.ok, removed.output);
  const hook = await hookPod;
  t.is(hook.status?.phase, 'Succeeded');
  t.is(hook.spec?.nodeName, plane.realNode!.name, 'the hook ran on the node the hub runs on');
  t.is(hook.spec?.serviceAccountName, 'clusterhub');
  const terminating = await core.readNamespace({ name: studentNs }).then((ns) => ns.metadata?.deletionTimestamp !== undefined, () => true);
  t.true(terminating, 'the hook\'s pod deleted the student\'s namespace before helm removed the hub');
  try {
    await namespaceGone(admin, studentNs, 300_000);
  } catch (error) {
    const ns = await core.readNamespace({ name: studentNs }).catch(() => undefined);
    const pods = await core.listNamespacedPod({ namespace: studentNs }).then((l) => l.items.map((p) => `${p.metadata?.name}: ${p.status?.phase}`), () => []);
    t.fail(`${String(error)}\nconditions: ${JSON.stringify(ns?.status?.conditions)}\npods: ${pods.join(', ')}`);
  }
});

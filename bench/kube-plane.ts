/**
 * Start-up time of the test control plane and the time for a Deployment of 100 replicas to
 * have 100 Running pods.   node bench/kube-plane.ts [--runs N]
 */
import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { startPlane } from '../test/kube/plane.ts';
import { waitForPods, watchUntil } from '../test/kube/watch.ts';

async function once(run: number): Promise<void> {
  const plane = await startPlane({ nodes: 1 });
  try {
    const kc = new KubeConfig();
    kc.loadFromFile(plane.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    const apps = kc.makeApiClient(AppsV1Api);
    const namespace = plane.newPrefix('bench');
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    await watchUntil(
      kc,
      `/api/v1/namespaces/${namespace}/serviceaccounts`,
      { fieldSelector: 'metadata.name=default' },
      (phase) => (phase === 'ADDED' ? true : undefined),
      { what: 'the default ServiceAccount', timeoutMs: 30_000 },
    );
    const labels = { app: 'bench' };
    const started = performance.now();
    await apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name: 'bench' },
        spec: {
          replicas: 100,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: { containers: [{ name: 'main', image: 'registry.invalid/pause:1' }] },
          },
        },
      },
    });
    await waitForPods(kc, namespace, 'app=bench', (pods) => pods.filter((p) => p.status?.phase === 'Running').length === 100, {
      what: '100 Running pods',
      timeoutMs: 5 * 60_000,
    });
    const hundred = Math.round(performance.now() - started);
    console.log(`run ${run}: plane start-up ${plane.startupMs} ms; 0 → 100 Running pods ${hundred} ms`);
  } finally {
    await plane.stop();
  }
}

const runsAt = process.argv.indexOf('--runs');
const runs = runsAt >= 0 ? Number(process.argv[runsAt + 1]) : 1;
for (let i = 1; i <= runs; i++) await once(i);

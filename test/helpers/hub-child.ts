/**
 * A hub process for crash tests: `node test/helpers/hub-child.ts CONFIG.json`. With
 * CLUSTERHUB_TEST_KILL_AT="<request> <n>" it kills itself with SIGKILL just before sending
 * the n-th Kubernetes request of that kind (`create rolebinding 1`): a crash at a chosen point.
 */
import { readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { parseConfig } from '../../config/load.ts';
import { createLogger } from '../../hub/log.ts';
import { startHub } from '../../hub/main.ts';
import { KubernetesBackend } from '../../spawner/kubernetes/backend.ts';

const config = parseConfig(JSON.parse(readFileSync(process.argv[2]!, 'utf8')), 'test');
const log = createLogger(config.hub.logLevel);
const killAt = /^(.+) (\d+)$/.exec(process.env['CLUSTERHUB_TEST_KILL_AT'] ?? '');
let seen = 0;
const onRequest = (what: string) => {
  if (killAt && what === killAt[1] && ++seen === Number(killAt[2])) process.kill(process.pid, 'SIGKILL');
};
let backend: KubernetesBackend | undefined;
if (config.spawn.backend === 'kubernetes') {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(config.kubernetes.kubeconfig!);
  backend = new KubernetesBackend({ config, kubeConfig, log, onRequest });
}
const hub = await startHub(config, { log, backend });
process.on('SIGTERM', () => void hub.close().then(() => process.exit(0)));

/** PersistentVolumeClaims on the real node: rancher's local-path-provisioner as a host process. */
import { CoreV1Api, StorageV1Api, type KubeConfig } from '@kubernetes/client-node';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { Supervisor } from '../procs.ts';

const NAMESPACE = 'local-path-storage';
const CONFIG_MAP = 'local-path-config';
const PROVISIONER = 'rancher.io/local-path';
/** Name of the default StorageClass. */
export const STORAGE_CLASS = 'local-path';

/**
 * Creates the provisioner's namespace, scripts and the default StorageClass, then starts
 * it. Volumes are directories under `dir/volumes`, made and removed by short helper pods
 * (root, in the provisioner's own namespace) from `helperImage`.
 */
export async function startLocalPath(
  sup: Supervisor,
  bin: string,
  opts: { dir: string; kc: KubeConfig; kubeconfig: string; helperImage: string; node: string },
): Promise<string> {
  const volumes = join(opts.dir, 'volumes');
  await mkdir(volumes, { recursive: true });
  const config = join(opts.dir, 'local-path.json');
  await writeFile(config, JSON.stringify({ nodePathMap: [{ node: 'DEFAULT_PATH_FOR_NON_LISTED_NODES', paths: [volumes] }] }));
  const helperPod = join(opts.dir, 'local-path-helper.yaml');
  await writeFile(
    helperPod,
    stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'helper-pod' },
      spec: {
        nodeSelector: { 'kubernetes.io/hostname': opts.node },
        containers: [{ name: 'helper-pod', image: opts.helperImage, imagePullPolicy: 'Never', securityContext: { runAsUser: 0, runAsGroup: 0 } }],
      },
    }),
  );
  const core = opts.kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
  await core.createNamespacedConfigMap({
    namespace: NAMESPACE,
    body: {
      metadata: { name: CONFIG_MAP },
      data: {
        setup: '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n',
        teardown: '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n',
      },
    },
  });
  await opts.kc.makeApiClient(StorageV1Api).createStorageClass({
    body: {
      metadata: { name: STORAGE_CLASS, annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
      provisioner: PROVISIONER,
      reclaimPolicy: 'Delete',
      volumeBindingMode: 'WaitForFirstConsumer',
    },
  });
  sup.start('local-path-provisioner', bin, [
    'start',
    `--kubeconfig=${opts.kubeconfig}`,
    `--config=${config}`,
    `--namespace=${NAMESPACE}`,
    `--configmap-name=${CONFIG_MAP}`,
    `--helper-image=${opts.helperImage}`,
    `--helper-pod-file=${helperPod}`,
    `--provisioner-name=${PROVISIONER}`,
    '--service-account-name=default',
  ]);
  return STORAGE_CLASS;
}

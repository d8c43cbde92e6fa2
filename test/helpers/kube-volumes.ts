/**
 * Volumes for the kwok test plane, which has no storage provisioner: a default StorageClass
 * and a small provisioner that answers each of its pending claims with a PersistentVolume
 * made for it (claimRef set, as external provisioners do). The plane's own PV controller
 * then binds them, and the scheduler places pods only once their claim is bound. Reclaim
 * policy Retain: a deleted claim leaves its volume `Released`, which a test can see.
 */
import { CoreV1Api, StorageV1Api, Watch, type KubeConfig, type V1PersistentVolumeClaim } from '@kubernetes/client-node';

/** The default StorageClass the provisioner serves. */
export const TEST_STORAGE_CLASS = 'clusterhub-test';
const PROVISIONER = 'clusterhub.test/hostpath';

export interface TestProvisioner {
  /** Volumes made so far, by claim (`namespace/name`): the PV's name. */
  volumes: Map<string, string>;
  /** Stop answering claims and delete every volume it made. */
  stop(): Promise<void>;
}

/** Install the default class and provision its claims until `stop()`. */
export async function startTestProvisioner(admin: KubeConfig): Promise<TestProvisioner> {
  const core = admin.makeApiClient(CoreV1Api);
  await admin.makeApiClient(StorageV1Api).createStorageClass({
    body: {
      metadata: { name: TEST_STORAGE_CLASS, annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
      provisioner: PROVISIONER, reclaimPolicy: 'Retain', volumeBindingMode: 'Immediate',
    },
  }).catch((err: { code?: number }) => {
    if (err.code !== 409) throw err;
  });
  const volumes = new Map<string, string>();
  let stopped = false;
  let abort: AbortController | undefined;

  const provision = async (claim: V1PersistentVolumeClaim) => {
    const { namespace = '', name = '', uid = '' } = claim.metadata ?? {};
    if (claim.spec?.storageClassName !== TEST_STORAGE_CLASS || claim.status?.phase !== 'Pending' || claim.spec.volumeName) return;
    const key = `${namespace}/${name}`;
    if (volumes.get(key) === `pvc-${uid}`) return;
    volumes.set(key, `pvc-${uid}`);
    await core.createPersistentVolume({
      body: {
        metadata: { name: `pvc-${uid}`, annotations: { 'pv.kubernetes.io/provisioned-by': PROVISIONER } },
        spec: {
          storageClassName: TEST_STORAGE_CLASS,
          capacity: { storage: claim.spec.resources?.requests?.storage ?? '1Gi' },
          accessModes: claim.spec.accessModes ?? ['ReadWriteOnce'],
          persistentVolumeReclaimPolicy: 'Retain',
          // kwok runs no pod, so no file is ever written here.
          hostPath: { path: `/var/lib/clusterhub-test/${uid}`, type: 'DirectoryOrCreate' },
          claimRef: { namespace, name, uid, apiVersion: 'v1', kind: 'PersistentVolumeClaim' },
        },
      },
    }).catch((err: { code?: number }) => {
      if (err.code === 409) return;
      // Not made (the API server away, say): try again, as a real provisioner does, with the
      // claim as it is then. Its next event may never come, and the claim would stay Pending.
      volumes.delete(key);
      retryLater(namespace, name);
    });
  };
  const retryLater = (namespace: string, name: string) => {
    if (stopped) return;
    setTimeout(() => {
      core.readNamespacedPersistentVolumeClaim({ namespace, name }).then(provision, (err: { code?: number }) => {
        if (err.code !== 404) retryLater(namespace, name); // gone: nothing to provision
      });
    }, 500).unref();
  };

  const watchClaims = async (): Promise<void> => {
    if (stopped) return;
    // List first (claims made before the watch), then watch from that version.
    const list = await core.listPersistentVolumeClaimForAllNamespaces();
    for (const claim of list.items) await provision(claim);
    abort = await new Watch(admin).watch('/api/v1/persistentvolumeclaims', { resourceVersion: list.metadata?.resourceVersion },
      (_type: string, claim: V1PersistentVolumeClaim) => { void provision(claim).catch(() => {}); },
      () => { void again(); });
  };
  // A watch that ends, or a list the API server could not answer (a test stopping it), starts over.
  const again = async (): Promise<void> => {
    try {
      await watchClaims();
    } catch {
      if (!stopped) setTimeout(() => void again(), 500).unref();
    }
  };
  await watchClaims();

  return {
    volumes,
    async stop() {
      stopped = true;
      abort?.abort();
      await Promise.all([...new Set(volumes.values())].map((pv) => core.deletePersistentVolume({ name: pv }).catch(() => {})));
    },
  };
}

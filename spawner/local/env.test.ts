import test from 'ava';
import { clusterEnv, decideSpark, findJava, passThroughEnv, schedulerEnv, workerEnv } from './env.ts';
import { nextWorkerIndices, type ClusterRecord } from './state.ts';
import { localConfig } from '../../test/helpers/local-backend.ts';

const record: ClusterRecord = {
  version: 1, user: 'alice', phase: 'starting', createdAt: '2026-01-01T00:00:00Z', jupyterToken: 'tok',
  baseUrl: '/user/alice/', ports: { jupyter: 1, dask: 2, dashboard: 3, spark: 4, sparkUi: 5 },
  spark: true, enginesPerWorker: 2, workers: [],
};

test('the hub\'s secrets never reach a cluster (kernels inherit its environment)', (t) => {
  const env = passThroughEnv({ PATH: '/usr/bin', HOME: '/home/h', LC_ALL: 'C', CONFIGPROXY_AUTH_TOKEN: 'x', GITHUB_CLIENT_SECRET: 'y', JAVA_HOME: '/jdk' });
  t.deepEqual(env, { PATH: '/usr/bin', HOME: '/home/h', LC_ALL: 'C', JAVA_HOME: '/jdk' });
});

test('only the scheduler gets the Jupyter token; workers get their name', (t) => {
  const common = clusterEnv({ base: { PATH: '/usr/bin' }, venvBin: '/venv/bin', config: localConfig(), record, workspace: '/w', runtimeDir: '/r' });
  t.is(common.PATH, '/venv/bin:/usr/bin');
  t.is(common.CLUSTER_BIND, '127.0.0.1');
  t.is(common.CLUSTER_ENGINES, '2');
  t.is(common.CLUSTER_SPARK, 'on');
  t.false('CLUSTER_JUPYTER_TOKEN' in common);
  t.is(schedulerEnv(common, record, localConfig()).CLUSTER_JUPYTER_TOKEN, 'tok');
  t.is(workerEnv(common, 3).CLUSTER_WORKER_NAME, 'worker-3');
});

test('a student\'s own account: home in the workspace, a private TMPDIR and umask 077; Dask TLS files for all, the Spark secret for the scheduler only', (t) => {
  const owned: ClusterRecord = { ...record, account: { name: 'clusterhub-alice', uid: 1200, gid: 1200 }, sparkSecret: 's3cret' };
  const tls = { ca: '/r/tls/ca.pem', cert: '/r/tls/cluster.pem', key: '/r/tls/cluster-key.pem' };
  const common = clusterEnv({ base: { PATH: '/usr/bin', HOME: '/root', USER: 'root', TMPDIR: '/root/tmp' }, venvBin: '/venv/bin', config: localConfig(), record: owned, workspace: '/w', runtimeDir: '/r', tls });
  t.like(common, { HOME: '/w', USER: 'clusterhub-alice', LOGNAME: 'clusterhub-alice', TMPDIR: '/r/tmp', CLUSTER_UMASK: '077' });
  t.like(common, { CLUSTER_TLS_CA: tls.ca, CLUSTER_TLS_CERT: tls.cert, CLUSTER_TLS_KEY: tls.key });
  t.is(schedulerEnv(common, owned, localConfig()).CLUSTER_SPARK_SECRET, 's3cret');
  t.false('CLUSTER_SPARK_SECRET' in workerEnv(common, 1));
  const shared = clusterEnv({ base: { PATH: '/usr/bin', HOME: '/home/me' }, venvBin: '/venv/bin', config: localConfig(), record, workspace: '/w', runtimeDir: '/r' });
  t.is(shared.HOME, '/home/me', 'without an account the hub\'s own home stays');
  t.false('CLUSTER_UMASK' in shared);
});

test('Spark runs when Java is found, is skipped without it, and "on" without Java is an error', (t) => {
  t.true(decideSpark('auto', '/usr/bin/java').spark);
  const skipped = decideSpark('auto', undefined);
  t.false(skipped.spark);
  t.regex(skipped.note, /Spark skipped: no Java/);
  t.false(decideSpark('off', '/usr/bin/java').spark);
  t.throws(() => decideSpark('on', undefined), { message: /no java/ });
});

test('Java is looked up in JAVA_HOME first, then PATH', (t) => {
  const has = (paths: string[]) => (p: string) => paths.includes(p);
  t.is(findJava({ JAVA_HOME: '/jdk', PATH: '/usr/bin' }, has(['/jdk/bin/java', '/usr/bin/java'])), '/jdk/bin/java');
  t.is(findJava({ PATH: '/opt/x:/usr/bin' }, has(['/usr/bin/java'])), '/usr/bin/java');
  t.is(findJava({ PATH: '/usr/bin' }, has([])), undefined);
});

test('new workers take the lowest free indices', (t) => {
  t.deepEqual(nextWorkerIndices([], 2), [1, 2]);
  t.deepEqual(nextWorkerIndices([{ index: 1, pgid: 10 }, { index: 3, pgid: 11 }], 2), [2, 4]);
});

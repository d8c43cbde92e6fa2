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

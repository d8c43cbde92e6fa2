import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { ConfigError, loadConfig, parseConfig } from './load.ts';
import { readmeReference, renderReference } from './reference.ts';

test('defaults serve the local backend on loopback', (t) => {
  const config = parseConfig({});
  t.is(config.spawn.backend, 'local');
  t.is(config.hub.bind, '127.0.0.1');
  t.is(config.hub.port, 8000);
  t.is(config.kubernetes.podMax.cpu, '2');
  t.is(config.kubernetes.quota.memory, '64Gi');
});

test('a wrong value names the key, the value and the expected form', (t) => {
  const err = t.throws(() => parseConfig({ spawn: { maxWorkers: 'lots' } }), { instanceOf: ConfigError });
  t.regex(err.message, /config key `spawn\.maxWorkers`: .*expected number.*got "lots"/);
});

test('unknown keys are refused by name, at any depth', (t) => {
  const err = t.throws(() => parseConfig({ hubb: {}, spawn: { workers: 3 } }), { instanceOf: ConfigError });
  t.regex(err.message, /unknown config key `hubb`/);
  t.regex(err.message, /unknown config key `spawn\.workers`/);
});

test('cross-field rules: default workers within the maximum; external proxy needs its URL', (t) => {
  t.throws(() => parseConfig({ spawn: { defaultWorkers: 9, maxWorkers: 8 } }), { message: /spawn\.defaultWorkers.*at most spawn\.maxWorkers/ });
  t.throws(() => parseConfig({ proxy: { mode: 'external' } }), { message: /proxy\.apiUrl.*required/ });
});

test('environment variables override the file, typed as YAML scalars', (t) => {
  const config = loadConfig({ file: join(import.meta.dirname, 'example.yaml'), env: { CLUSTERHUB_SPAWN_MAX_WORKERS: '3', CLUSTERHUB_SPAWN_DEFAULT_WORKERS: '1', CLUSTERHUB_AUTH_ADMINS: '[ada, grace]', CLUSTERHUB_CULLER_DRY_RUN: 'true' } });
  t.is(config.spawn.maxWorkers, 3);
  t.deepEqual(config.auth.admins, ['ada', 'grace']);
  t.true(config.culler.dryRun);
});

test('a bad environment override is reported like a bad file value', (t) => {
  t.throws(() => loadConfig({ env: { CLUSTERHUB_HUB_PORT: '99999' } }), { message: /config key `hub\.port`.*got 99999/ });
});

test('relative paths are made absolute against the start directory, once, at load', (t) => {
  const config = loadConfig({
    cwd: '/srv/class',
    env: {
      CLUSTERHUB_LOCAL_VENV: 'venvs/../venv', CLUSTERHUB_LOCAL_PYTHON: './py/bin/python3',
      CLUSTERHUB_KUBERNETES_KUBECONFIG: '../kube/config', CLUSTERHUB_LOCAL_MATERIALS_GIT_URL: 'materials.git',
    },
  });
  t.is(config.hub.stateDir, '/srv/class/state', 'the default ./state');
  t.is(config.local.venv, '/srv/class/venv');
  t.is(config.local.python, '/srv/class/py/bin/python3');
  t.is(config.kubernetes.kubeconfig, '/srv/kube/config');
  t.is(config.local.materialsGitUrl, '/srv/class/materials.git');
  t.is(parseConfig({ hub: { stateDir: 'here' } }).hub.stateDir, join(process.cwd(), 'here'), 'parseConfig resolves too');
});

test('absolute paths, bare commands and git URLs are kept as written', (t) => {
  const kept = { CLUSTERHUB_HUB_STATE_DIR: '/var/lib/clusterhub', CLUSTERHUB_LOCAL_VENV: '/opt/venv', CLUSTERHUB_LOCAL_PYTHON: 'python3.12' };
  for (const url of ['https://example.edu/m.git', 'git@example.edu:class/m.git', 'file:///srv/m.git']) {
    const config = loadConfig({ cwd: '/srv/class', env: { ...kept, CLUSTERHUB_LOCAL_MATERIALS_GIT_URL: url } });
    t.is(config.local.materialsGitUrl, url);
    t.is(config.hub.stateDir, '/var/lib/clusterhub');
    t.is(config.local.venv, '/opt/venv');
    t.is(config.local.python, 'python3.12');
  }
});

test('a YAML syntax error or a missing file is a ConfigError', (t) => {
  t.throws(() => loadConfig({ file: '/nonexistent/clusterhub.yaml' }), { instanceOf: ConfigError, message: /cannot read config file/ });
});

test('the example configuration is valid', (t) => {
  t.notThrows(() => loadConfig({ file: join(import.meta.dirname, 'example.yaml'), env: {} }));
});

test('the README configuration reference matches the schema', (t) => {
  const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');
  t.is(readmeReference(readme), renderReference(), 'run `node config/reference.ts --write` to refresh it');
});

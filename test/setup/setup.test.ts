import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { acquireFlock } from '../helpers/flock.ts';
import { installCommand, neededPackages, notInstalled, SYSTEM_PACKAGES } from './system-packages.ts';
import { atLeast, checkToolchains, parseVersion, requiredGo } from './toolchains.ts';

const run = promisify(execFile);
const SCRIPT = join(import.meta.dirname, 'system-packages.ts');

test('versions compare part by part: 1.26.0 meets 1.26, 1.25.9 and 3.10.12 do not meet 1.26 and 3.11', (t) => {
  t.deepEqual(parseVersion('go version go1.26.8 linux/amd64'), [1, 26, 8]);
  t.deepEqual(parseVersion('Python 3.11.7'), [3, 11, 7]);
  t.deepEqual(parseVersion('go1.26'), [1, 26, 0]);
  t.true(atLeast([1, 26, 0], [1, 26]));
  t.true(atLeast([1, 27, 0], [1, 26, 3]));
  t.false(atLeast([1, 25, 9], [1, 26]));
  t.false(atLeast([3, 10, 12], [3, 11]));
  t.true(atLeast([3, 12, 0], [3, 11]));
});

test('the Go needed is the highest go directive of the control-plane modules', (t) => {
  t.true(atLeast(requiredGo(), [1, 26]));
});

/** A fake `go` that reports `version` for `go env GOVERSION`. */
async function fakeGo(version: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'clusterhub-fakego-'));
  const go = join(dir, 'go');
  await writeFile(go, `#!/bin/sh\necho ${version}\n`);
  await chmod(go, 0o755);
  return go;
}

test('an old Go stops set-up with one line naming the version needed and the one found', async (t) => {
  const go = await fakeGo('go1.25.4');
  const error = await t.throwsAsync(checkToolchains({ ...process.env, GO: go }));
  t.regex(error!.message, /^Go ≥ 1\.2\d is needed to build the control plane \(test\/kube\/build\.sh\): .*go is go1\.25\.4/);
  t.false(error!.message.includes('\n'));
});

test('a missing Python stops set-up with one line before any long step', async (t) => {
  const go = await fakeGo('go1.26.8');
  const error = await t.throwsAsync(checkToolchains({ ...process.env, GO: go, CLUSTERHUB_PYTHON: '/nonexistent/python3' }));
  t.is(error!.message, "Python ≥ 3.11 is needed for the clusters' virtualenv: /nonexistent/python3 not found (install python3 and python3-venv, or set CLUSTERHUB_PYTHON)");
});

test('the toolchains of this machine pass, one line each', async (t) => {
  const lines = await checkToolchains();
  t.is(lines.length, 2);
  t.regex(lines[0]!, /^Go ≥ 1\.\d+: go1\.\d+/);
  t.regex(lines[1]!, /^Python ≥ 3\.11: Python 3\.\d+/);
});

test('dpkg status: only "installed" counts; removed (config-files) and unknown packages are missing', (t) => {
  const output = 'chromium\tconfig-files\nrunc\tinstalled\nipset\tnot-installed\n';
  t.deepEqual(notInstalled(['chromium', 'runc', 'ipset', 'buildah'], output), ['chromium', 'ipset', 'buildah']);
});

test('one list names every package once; CHROMIUM_PATH and JAVA_HOME make their package unneeded', (t) => {
  const names = SYSTEM_PACKAGES.map((p) => p.name);
  t.is(new Set(names).size, names.length);
  for (const wanted of ['chromium', 'openjdk-17-jre-headless', 'buildah', 'runc', 'mmdebstrap', 'iptables', 'ipset', 'containernetworking-plugins', 'conntrack', 'libseccomp-dev']) {
    t.true(names.includes(wanted), wanted);
  }
  const replaced = neededPackages({ CHROMIUM_PATH: '/opt/chrome/chrome', JAVA_HOME: '/opt/jdk' }).map((p) => p.name);
  t.false(replaced.includes('chromium'));
  t.false(replaced.includes('openjdk-17-jre-headless'));
  t.is(replaced.length, names.length - 2);
});

test('without root, a missing package stops with one line naming the exact command', async (t) => {
  t.is(installCommand(['chromium', 'runc']), 'sudo apt-get update && sudo apt-get install -y chromium runc');
  // `sl` is a Debian package nobody needs here; as user nobody the step must not install it.
  const error = await t.throwsAsync(
    run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, SCRIPT, 'sl'], { env: { PATH: process.env.PATH, HOME: '/nonexistent' } }),
  );
  const { stderr, code } = error as unknown as { stderr: string; code: number };
  t.is(code, 1);
  t.is(stderr, 'missing Debian packages sl; install them with: sudo apt-get update && sudo apt-get install -y sl\n');
});

test('a set-up lock admits one holder; the next waits for release, and a killed holder frees it', async (t) => {
  const path = join(await mkdtemp(join(tmpdir(), 'clusterhub-lock-')), 'step.lock');
  const first = await acquireFlock(path);
  const waiting = Promise.withResolvers<void>();
  let secondHeld = false;
  const second = acquireFlock(path, () => waiting.resolve()).then((lock) => ((secondHeld = true), lock));
  await waiting.promise;
  t.false(secondHeld, 'the second holder waits while the first holds the lock');
  await first.release();
  await (await second).release();
  t.true(secondHeld);

  // A holder process killed with SIGKILL (a crashed run) leaves no stale lock.
  const child = spawn(process.execPath, ['--input-type=module', '-e', `import { acquireFlock } from ${JSON.stringify(join(import.meta.dirname, '..', 'helpers', 'flock.ts'))}; await acquireFlock(${JSON.stringify(path)}); console.log('held'); setInterval(() => {}, 1e9);`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve) => child.stdout.once('data', resolve));
  const blocked = Promise.withResolvers<void>();
  const after = acquireFlock(path, () => blocked.resolve());
  await blocked.promise;
  child.kill('SIGKILL');
  const [lock] = await Promise.all([after, once(child, 'exit')]);
  await lock.release();
  t.is(child.signalCode, 'SIGKILL');
});

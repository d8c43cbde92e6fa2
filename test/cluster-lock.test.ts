/**
 * The cluster image's hash lock (images/cluster/requirements.lock) against the top-level
 * pins it was resolved from (images/cluster/requirements.txt), and the Dockerfile installing
 * the lock in pip's hash-checking mode. Fast: files only; the image build itself
 * (test/kube/images.sh) is where pip refuses a package missing from the lock.
 */
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

const IMAGE = join(import.meta.dirname, '..', 'images', 'cluster');
const read = (name: string) => readFile(join(IMAGE, name), 'utf8');

/** PEP 503 normalised name: `Jupyter_Server.Proxy` and `jupyter-server-proxy` are one package. */
const normalise = (name: string) => name.toLowerCase().replace(/[-_.]+/g, '-');

const PIN = /^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s\\;]+)/;

/** The top-level pins of a requirements file: normalised name → version; throws on a line that is not an exact pin. */
function topLevelPins(text: string): Map<string, string> {
  const pins = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const m = PIN.exec(line);
    if (!m) throw new Error(`requirements.txt: not an exact pin: ${line}`);
    pins.set(normalise(m[1]!), m[2]!);
  }
  return pins;
}

/** One package of the lock. */
interface Locked {
  version: string;
  hashes: string[];
  /** Required by requirements.txt itself (uv's `# via -r requirements.txt`). */
  topLevel: boolean;
}

/** The packages of a uv/pip-tools lock with hashes: normalised name → version, hashes, origin. */
function lockedPackages(text: string): Map<string, Locked> {
  const locked = new Map<string, Locked>();
  let current: Locked | undefined;
  for (const line of text.split('\n')) {
    const m = PIN.exec(line);
    if (m) {
      current = { version: m[2]!, hashes: [], topLevel: false };
      locked.set(normalise(m[1]!), current);
      continue;
    }
    const hash = /--hash=(sha256:[0-9a-f]{64})/.exec(line);
    if (hash && current) current.hashes.push(hash[1]!);
    if (/^\s+#.*-r requirements\.txt/.test(line) && current) current.topLevel = true;
    if (/^[A-Za-z0-9]/.test(line)) throw new Error(`requirements.lock: not an exact pin: ${line}`);
  }
  return locked;
}

/** What is wrong between the top-level pins and the lock (empty: they agree). */
function lockProblems(requirements: string, lock: string): string[] {
  const pins = topLevelPins(requirements);
  const locked = lockedPackages(lock);
  const problems: string[] = [];
  for (const [name, version] of pins) {
    const entry = locked.get(name);
    if (!entry) problems.push(`${name}==${version} is not in the lock`);
    else if (entry.version !== version) problems.push(`${name}: requirements.txt pins ${version}, the lock has ${entry.version}`);
    else if (!entry.topLevel) problems.push(`${name}: the lock was not resolved from requirements.txt for it`);
  }
  for (const [name, entry] of locked) {
    if (entry.hashes.length === 0) problems.push(`${name}==${entry.version} has no hash`);
    if (entry.topLevel && !pins.has(name)) problems.push(`${name}: top level in the lock, no longer in requirements.txt`);
  }
  return problems;
}

const REGENERATE = 'rewrite it: bash images/cluster/lock.sh';

test('every top-level requirement is pinned in the lock at its version, and every locked package has a hash', async (t) => {
  const [requirements, lock] = await Promise.all([read('requirements.txt'), read('requirements.lock')]);
  t.deepEqual(lockProblems(requirements, lock), [], REGENERATE);
  const pins = topLevelPins(requirements);
  const locked = lockedPackages(lock);
  t.true(pins.size >= 9, 'the top-level packages are read');
  t.true(locked.size > pins.size * 5, 'the lock holds the whole environment, dependencies included');
  for (const dependency of ['distributed', 'jupyter-server', 'tornado', 'py4j']) t.true(locked.has(dependency), `${dependency} (a dependency) is locked`);
});

test('the check fails for a bumped, an added or a removed top-level requirement, and for a package without hashes', async (t) => {
  const [requirements, lock] = await Promise.all([read('requirements.txt'), read('requirements.lock')]);
  const bumped = requirements.replace(/^numpy==\S+/m, 'numpy==0.0.1');
  t.deepEqual(lockProblems(bumped, lock), [`numpy: requirements.txt pins 0.0.1, the lock has ${lockedPackages(lock).get('numpy')!.version}`]);
  t.deepEqual(lockProblems(`${requirements}\npolars==1.0.0\n`, lock), ['polars==1.0.0 is not in the lock']);
  t.deepEqual(lockProblems(requirements.replace(/^bokeh==.*$/m, ''), lock), ['bokeh: top level in the lock, no longer in requirements.txt']);
  const unhashed = lock.replace(/^(zipp==\S+) \\\n(\s+--hash=\S+ ?\\?\n)+/m, '$1\n');
  t.deepEqual(lockProblems(requirements, unhashed), [`zipp==${lockedPackages(lock).get('zipp')!.version} has no hash`]);
  t.throws(() => topLevelPins('pandas>=3\n'), { message: /not an exact pin: pandas>=3/ });
});

test('the Dockerfile installs the lock in hash-checking mode, not the loose requirements', async (t) => {
  const dockerfile = await read('Dockerfile');
  const installs = dockerfile.split('\n').filter((l) => /pip install/.test(l));
  t.is(installs.length, 1, installs.join('\n'));
  t.regex(installs[0]!, /pip install .*--require-hashes -r \/opt\/cluster\/requirements\.lock/);
  t.regex(dockerfile, /^COPY requirements\.lock \/opt\/cluster\/requirements\.lock$/m);
  t.notRegex(dockerfile, /^(COPY|RUN).*requirements\.txt/m);
  // The lock is resolved for the image's Python: the default base must be that Python.
  const lockScript = await read('lock.sh');
  const python = /--python-version (\d+\.\d+)/.exec(lockScript)?.[1];
  t.is(/^ARG BASE=python:(\d+\.\d+)-/m.exec(dockerfile)?.[1], python);
});

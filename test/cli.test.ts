/** The `clusterhub` command as an operator runs it. */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { openStore } from '../hub/store/sqlite.ts';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', 'hub', 'cli.ts');

async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('check-config accepts the example and names every bad key of a wrong file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterhub-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ok = await cli(['check-config', join(import.meta.dirname, '..', 'config', 'example.yaml')]);
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /configuration OK/);

  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'spawn:\n  maxWorkers: -1\n  backnd: local\nculler:\n  schedule: "every hour"\n');
  const res = await cli(['check-config', bad]);
  t.is(res.code, 2);
  t.regex(res.stderr, /config key `spawn\.maxWorkers`.*got -1/);
  t.regex(res.stderr, /unknown config key `spawn\.backnd`/);
});

test('check-config refuses a cron expression that node-cron cannot parse, naming culler.schedule', async (t) => {
  const res = await cli(['check-config'], { CLUSTERHUB_CULLER_SCHEDULE: '61 * * * *' });
  t.not(res.code, 0);
  t.regex(res.stderr, /culler\.schedule/);
});

test('check-config refuses a public address without GitHub sign-in, naming hub.bind', async (t) => {
  const res = await cli(['check-config'], { CLUSTERHUB_HUB_BIND: '0.0.0.0' });
  t.not(res.code, 0);
  t.regex(res.stderr, /hub\.bind/);
});

test('token prints a new token, stored only as a hash, with admin scope for admins', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterhub-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const env = { CLUSTERHUB_HUB_STATE_DIR: dir, CLUSTERHUB_AUTH_ADMINS: '[prof]' };
  const prof = await cli(['token', 'prof'], env);
  t.is(prof.code, 0, prof.stderr);
  const secret = prof.stdout.trim();
  t.regex(secret, /^chub_\S+$/);
  const student = await cli(['token', 'sam'], env);
  const store = openStore(join(dir, 'clusterhub.sqlite'));
  t.teardown(() => store.close());
  t.deepEqual(store.findToken(secret)?.scopes, ['user', 'admin']);
  t.deepEqual(store.findToken(student.stdout.trim())?.scopes, ['user']);
  t.true(store.getUser('prof')?.admin);
});

test('--version prints the version from package.json and exits 0', async (t) => {
  const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { version: string };
  const res = await cli(['--version']);
  t.is(res.code, 0, res.stderr);
  t.is(res.stdout, `clusterhub ${pkg.version}\n`);
});

test('an unknown command, an unknown flag or a missing value is one line on stderr and exit code 2', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['frobnicate'], /^clusterhub: unknown command: frobnicate \(clusterhub --help lists the commands\)\n$/],
    [['--frobnicate'], /^clusterhub: unknown option '--frobnicate' \(clusterhub --help lists the commands\)\n$/],
    [['start', '--config'], /^clusterhub: option '-c, --config <value>' argument missing \(/],
    [['token'], /^clusterhub: token needs a login: clusterhub token <login> \(/],
  ];
  for (const [args, expected] of cases) {
    const res = await cli(args);
    t.is(res.code, 2, args.join(' '));
    t.regex(res.stderr, expected);
    t.is(res.stderr.trimEnd().split('\n').length, 1, `one line, no stack trace: ${res.stderr}`);
    t.is(res.stdout, '');
  }
});

import test from 'ava';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const runtime = new URL('./node-runtime.ts', import.meta.url).href;

// A child process as hub/cli.ts sets itself up, then a burst of short-lived garbage.
const script = `
import { getHeapSpaceStatistics } from 'node:v8';
const { setUpNodeRuntime, saveCompileCache } = await import(${JSON.stringify(runtime)});
setUpNodeRuntime();
await import(${JSON.stringify(new URL('./store/tokens.ts', import.meta.url).href)});
saveCompileCache();
let keep = [];
for (let i = 0; i < 2e6; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 20000) keep = []; }
const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
console.log(JSON.stringify({ young, cache: process.env.NODE_COMPILE_CACHE }));
`;

test('the young generation stays small through a burst, and modules loaded after set-up are cached for the next start', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterhub-compile-cache-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, NODE_COMPILE_CACHE: dir } });
  const report = JSON.parse(stdout) as { young: number; cache: string };
  t.true(report.young <= 4 * 1024 * 1024, `young generation ${report.young} bytes`);
  t.is(report.cache, dir, "an operator's NODE_COMPILE_CACHE is kept, and children inherit it");
  const entries = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  t.true(entries.length > 0, 'the compiled modules were written');
});

// What the process loaded, printed as it exits: Node's type stripper is `amaro`.
const loadedAtExit = `data:text/javascript,process.on('exit', () => process.stderr.write(JSON.stringify({ stripper: process.moduleLoadList.some((m) => m.includes('amaro')) }) + '\\n'))`;
const launcher = new URL('../bin/clusterhub.mjs', import.meta.url).pathname;

test('started through bin/clusterhub.mjs, the command runs from the compile cache of the last start, without loading the type stripper', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterhub-compile-cache-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const once = async () => {
    const { stdout, stderr } = await run(process.execPath, ['--import', loadedAtExit, launcher, '--version'], { env: { ...process.env, NODE_COMPILE_CACHE: dir } });
    t.regex(stdout, /^clusterhub \d+\.\d+\.\d+\n$/);
    return JSON.parse(stderr.trim().split('\n').at(-1)!) as { stripper: boolean };
  };
  t.deepEqual(await once(), { stripper: true }, 'the first start strips the types (and fills the cache)');
  t.deepEqual(await once(), { stripper: false }, 'the next one takes every module from the cache');
});

// Whoever can write into the compile cache runs code as the hub (root, when students have
// accounts of their own): the default lives in the hub user's home, never in /tmp, and one
// that others can write to is not used.

test('the default compile cache is in the hub user\'s own home, readable by no one else; a planted one that others can write is not used', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'clusterhub-home-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
  delete env.NODE_COMPILE_CACHE;
  const start = () => run(process.execPath, ['--import', new URL('../bin/compile-cache.mjs', import.meta.url).pathname, '-e', `process.stdout.write(require('node:module').getCompileCacheDir() ?? 'none')`], { env });
  const dir = join(home, '.cache', 'clusterhub', 'node-compile-cache');
  const first = await start();
  t.true(first.stdout.startsWith(`${dir}/`), `the cache is in the home directory: ${first.stdout}`);
  t.is(statSync(dir).mode & 0o777, 0o700);

  // Another account made it writable for everyone (or planted it so before the first start).
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o777);
  const planted = await start();
  t.is(planted.stdout, 'none', 'no compile cache is used');
  t.regex(planted.stderr, /not using the compile cache .*no one else can write to/);
  t.deepEqual(readdirSync(dir), [], 'nothing was read from or written to it');
});

/**
 * The project's boundaries, checked: product code imports only downward (hub → {culler,
 * spawner} → proxy → config → shared), never test code or a test library, and the hub image
 * ships the product and nothing of the tests.
 */
import test from 'ava';
import dockerignoreModule from '@balena/dockerignore';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const root = join(import.meta.dirname, '..');
// The package is CommonJS (`module.exports = factory`) while its types declare a default export.
const dockerignore = dockerignoreModule as unknown as typeof dockerignoreModule.default;

/** Each product folder and the folders it may import from (besides itself). */
const LAYERS: Record<string, string[]> = {
  shared: [],
  config: ['shared'],
  proxy: ['config', 'shared'],
  spawner: ['proxy', 'config', 'shared'],
  culler: ['proxy', 'config', 'shared'],
  hub: ['spawner', 'culler', 'proxy', 'config', 'shared'],
};

const isTest = (file: string) => file.endsWith('.test.ts');

/** Repo-relative paths of the files under `dir` (a file is itself). */
function filesUnder(dir: string): string[] {
  const abs = join(root, dir);
  if (statSync(abs).isFile()) return [dir];
  return readdirSync(abs, { recursive: true, encoding: 'utf8' })
    .map((name) => join(dir, name))
    .filter((file) => statSync(join(root, file)).isFile());
}

/** The specifiers a TypeScript file imports (static, dynamic and re-exports). */
function importsOf(file: string): string[] {
  return ts.preProcessFile(readFileSync(join(root, file), 'utf8'), true, true).importedFiles.map((f) => f.fileName);
}

/** `@scope/name/sub` → `@scope/name`; `name/sub` → `name`. */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
const productFiles = Object.keys(LAYERS).flatMap(filesUnder).filter((f) => f.endsWith('.ts') && !isTest(f));

test('product code imports only from its own layer or the ones below it, never from test/', (t) => {
  const wrong: string[] = [];
  for (const file of productFiles) {
    const layer = file.split('/')[0]!;
    for (const specifier of importsOf(file)) {
      if (!specifier.startsWith('.')) continue;
      const target = relative(root, resolve(root, dirname(file), specifier));
      const targetLayer = target.split('/')[0]!;
      if (targetLayer !== layer && !LAYERS[layer]!.includes(targetLayer)) wrong.push(`${file} imports ${target}`);
    }
  }
  t.deepEqual(wrong, []);
});

test('product code imports only runtime dependencies (no ava, playwright-core or other dev package)', (t) => {
  const wrong: string[] = [];
  for (const file of productFiles) {
    for (const specifier of importsOf(file)) {
      if (specifier.startsWith('.') || specifier.startsWith('node:') || builtinModules.includes(specifier)) continue;
      if (!(packageName(specifier) in pkg.dependencies)) wrong.push(`${file} imports ${specifier}`);
    }
  }
  t.deepEqual(wrong, []);
});

/** What `COPY` puts into the hub image: the Dockerfile's sources less what .dockerignore drops. */
function hubImageFiles(): string[] {
  const dockerfile = readFileSync(join(root, 'images/hub/Dockerfile'), 'utf8');
  const sources = [...dockerfile.matchAll(/^COPY\s+(?!--from)(.+)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/).slice(0, -1));
  const ignore = dockerignore().add(readFileSync(join(root, '.dockerignore'), 'utf8').split('\n'));
  return ignore.filter(sources.flatMap(filesUnder));
}

test('the hub image carries one Node: the npm node package is a development dependency, and npm ci omits those', (t) => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
  t.false('node' in pkg.dependencies);
  t.truthy(pkg.devDependencies.node, 'npm start and npm test still get Node 24 from npm');
  t.regex(readFileSync(join(root, 'images/hub/Dockerfile'), 'utf8'), /npm ci --omit=dev/);
});

test('the hub image is built on a pinned base, as a non-root user', (t) => {
  const dockerfile = readFileSync(join(root, 'images/hub/Dockerfile'), 'utf8');
  t.regex(dockerfile, /^ARG BASE=\S+:\d+\.\d+\.\d+-\S+$/m, 'a full version tag, not a floating one');
  t.regex(dockerfile, /^FROM \$\{BASE\}$/m);
  t.regex(dockerfile, /^USER 1000:1000$/m);
});

test('the hub image ships no test code', (t) => {
  const shipped = hubImageFiles();
  t.true(shipped.includes('hub/cli.ts'), 'the image has the hub');
  t.deepEqual(shipped.filter((f) => isTest(f) || /^(test|bench)\//.test(f)), []);
});

test('the hub image ships every file the hub imports', (t) => {
  const shipped = new Set(hubImageFiles());
  const missing: string[] = [];
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    if (!shipped.has(file)) missing.push(file);
    if (!existsSync(join(root, file))) return;
    for (const specifier of importsOf(file)) {
      if (specifier.startsWith('.')) visit(relative(root, resolve(root, dirname(file), specifier)));
    }
  };
  visit('hub/cli.ts');
  t.true(seen.size > 20, 'the walk followed the imports');
  t.deepEqual(missing, []);
});

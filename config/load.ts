/**
 * Loads the configuration: a YAML file, then `CLUSTERHUB_*` environment overrides,
 * validated by the schema. A bad value fails with the key, the value and the expected form.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { absolutePaths } from './paths.ts';
import { configSchema, type Config } from './schema.ts';

/** A configuration that cannot be used; the message names every bad key. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[], source: string) {
    super(`invalid configuration (${source}):\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** `workerMemory` → `WORKER_MEMORY`. */
function envName(path: string[]): string {
  return 'CLUSTERHUB_' + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

/** Every leaf key path of the schema, for env overrides (`hub.port` ← `CLUSTERHUB_HUB_PORT`). */
function leafPaths(shape: Record<string, z.ZodType>, prefix: string[] = []): string[][] {
  const out: string[][] = [];
  for (const [key, schema] of Object.entries(shape)) {
    const inner = unwrap(schema);
    const innerShape = (inner as { shape?: Record<string, z.ZodType> }).shape;
    if (innerShape && inner.def.type === 'object') out.push(...leafPaths(innerShape, [...prefix, key]));
    else out.push([...prefix, key]);
  }
  return out;
}

function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (;;) {
    const def = s.def as { type: string; innerType?: z.ZodType; in?: z.ZodType };
    if (def.innerType) s = def.innerType;
    else if (def.type === 'pipe' && def.in) s = def.in;
    else return s;
  }
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

function getPath(source: unknown, path: (string | number | symbol)[]): unknown {
  let node = source;
  for (const key of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string | number | symbol, unknown>)[key];
  }
  return node;
}

/**
 * Validates raw config (already merged) into a Config, or throws ConfigError. Relative
 * paths are resolved against `cwd` (the directory the hub starts in).
 */
export function parseConfig(raw: unknown, source = 'config', cwd = process.cwd()): Config {
  const result = configSchema.safeParse(raw ?? {});
  if (result.success) return absolutePaths(result.data, cwd);
  const problems = result.error.issues.map((issue) => {
    const key = issue.path.join('.') || '(top level)';
    const value = getPath(raw, issue.path);
    const got = value === undefined ? '' : `, got ${JSON.stringify(value)}`;
    if (issue.code === 'unrecognized_keys') {
      const prefix = issue.path.length ? `${issue.path.join('.')}.` : '';
      return `unknown config key ${issue.keys.map((k) => `\`${prefix}${k}\``).join(', ')}`;
    }
    return `config key \`${key}\`: ${issue.message}${got}`;
  });
  throw new ConfigError(problems, source);
}

/** Reads the YAML file (if any), applies `CLUSTERHUB_*` env overrides and validates. */
export function loadConfig(options: { file?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Config {
  const env = options.env ?? process.env;
  let raw: Record<string, unknown> = {};
  const source = options.file ?? 'defaults';
  if (options.file) {
    let text: string;
    try {
      text = readFileSync(options.file, 'utf8');
    } catch (err) {
      throw new ConfigError([`cannot read config file ${options.file}: ${(err as Error).message}`], source);
    }
    try {
      const parsed: unknown = parseYaml(text);
      if (parsed !== null && parsed !== undefined && (typeof parsed !== 'object' || Array.isArray(parsed))) {
        throw new ConfigError(['the config file must be a YAML mapping'], source);
      }
      raw = (parsed ?? {}) as Record<string, unknown>;
    } catch (err) {
      if (err instanceof YAMLParseError) throw new ConfigError([`YAML error: ${err.message}`], source);
      throw err;
    }
  }
  for (const path of leafPaths(rootShape())) {
    const value = env[envName(path)];
    if (value === undefined) continue;
    // A YAML scalar, so `8`, `true` and `[a, b]` keep their types.
    setPath(raw, path, parseEnvValue(value));
  }
  return parseConfig(raw, source, options.cwd);
}

function parseEnvValue(value: string): unknown {
  try {
    return parseYaml(value);
  } catch {
    return value;
  }
}

/** The names of every environment override, for the README. */
export function envOverrideNames(): string[] {
  return leafPaths(rootShape()).map(envName);
}

function rootShape(): Record<string, z.ZodType> {
  return (unwrap(configSchema) as unknown as { shape: Record<string, z.ZodType> }).shape;
}

export { envName };

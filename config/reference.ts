/**
 * Renders the README's configuration reference from the schema (run it to refresh:
 * `node config/reference.ts --write`); a test fails when the README is out of date.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { envName } from './load.ts';
import { configSchema } from './schema.ts';

const BEGIN = '<!-- config-reference:begin -->';
const END = '<!-- config-reference:end -->';

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  default?: unknown;
  description?: string;
  enum?: unknown[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  format?: string;
  pattern?: string;
}

function typeOf(s: JsonSchema): string {
  if (s.enum) return s.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  if (s.anyOf) return s.anyOf.map(typeOf).join(' \\| ');
  if (s.type === 'array') return `list of ${typeOf(s.items ?? {})}`;
  if (s.format === 'uri') return 'URL';
  if (s.type === 'integer' || s.type === 'number') {
    const min = s.minimum ?? (s.exclusiveMinimum !== undefined ? `>${s.exclusiveMinimum}` : undefined);
    const max = s.maximum !== undefined && s.maximum < 1e9 ? s.maximum : undefined;
    return min !== undefined || max !== undefined ? `${s.type} (${min ?? ''}…${max ?? ''})` : s.type;
  }
  return String(s.type ?? 'any');
}

function rows(schema: JsonSchema, path: string[] = []): string[] {
  const out: string[] = [];
  for (const [key, child] of Object.entries(schema.properties ?? {})) {
    const here = [...path, key];
    if (child.properties) {
      if (child.description && path.length > 0) out.push(`| \`${here.join('.')}\` | object | | ${child.description} |`);
      out.push(...rows(child, here));
      continue;
    }
    const def = child.default === undefined ? '' : `\`${JSON.stringify(child.default)}\``;
    out.push(`| \`${here.join('.')}\` | ${typeOf(child)} | ${def} | ${(child.description ?? '').replaceAll('|', '\\|')} (\`${envName(here)}\`) |`);
  }
  return out;
}

/** The reference table, as it belongs between the README's markers. */
export function renderReference(): string {
  const json = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return [BEGIN, '| key | type | default | meaning (environment override) |', '|---|---|---|---|', ...rows(json), END].join('\n');
}

/** The README's current reference block, or undefined when the markers are missing. */
export function readmeReference(readme: string): string | undefined {
  const start = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  return start < 0 || end < 0 ? undefined : readme.slice(start, end + END.length);
}

if (import.meta.main) {
  const file = join(import.meta.dirname, '..', 'README.md');
  if (process.argv.includes('--write')) {
    const readme = readFileSync(file, 'utf8');
    const current = readmeReference(readme);
    if (!current) throw new Error(`README.md has no ${BEGIN} … ${END} block`);
    writeFileSync(file, readme.replace(current, renderReference()));
    process.stdout.write('README.md configuration reference updated\n');
  } else {
    process.stdout.write(`${renderReference()}\n`);
  }
}

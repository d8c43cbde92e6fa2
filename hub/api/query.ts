/**
 * Query strings: every parameter a route accepts is named; an unknown or repeated one is a
 * 400, never silently ignored. Paging follows JupyterHub (`offset`, `limit`, the reply
 * `{items, _pagination}` when the client sends `Accept: application/jupyterhub-pagination+json`).
 */
import type { Context } from 'koa';
import { HttpError } from '../errors.ts';

/** JupyterHub's media type for a paginated reply. */
export const PAGINATION_TYPE = 'application/jupyterhub-pagination+json';
/** JupyterHub's `api_page_default_limit` and `api_page_max_limit`. */
export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 200;

/** The query's single values; 400 for a parameter not in `allowed`, or one given twice. */
export function readQuery<K extends string>(ctx: Context, allowed: readonly K[]): Partial<Record<K, string>> {
  const out: Partial<Record<K, string>> = {};
  const unknown: string[] = [];
  for (const [key, value] of Object.entries(ctx.query)) {
    if (!(allowed as readonly string[]).includes(key)) {
      unknown.push(key);
      continue;
    }
    if (Array.isArray(value)) throw new HttpError(400, `query parameter ${key} given more than once`);
    out[key as K] = value ?? '';
  }
  if (unknown.length > 0) {
    throw new HttpError(400, `unknown query parameter${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')} (this route takes ${allowed.length ? allowed.join(', ') : 'none'})`);
  }
  return out;
}

/** JupyterHub's truthy flag: present and not `0`/`false` (an empty value counts as set). */
export function flag(value: string | undefined): boolean {
  return value !== undefined && !['0', 'false'].includes(value.toLowerCase());
}

/** True when the client asked for JupyterHub's paginated reply. */
export function wantsPagination(ctx: Context): boolean {
  return (ctx.get('Accept') ?? '').includes(PAGINATION_TYPE);
}

/** `offset` and `limit` as JupyterHub reads them (limit capped at MAX_PAGE, at least 1). */
export function readPage(ctx: Context, query: { offset?: string; limit?: string }, defaultLimit = wantsPagination(ctx) ? DEFAULT_PAGE : MAX_PAGE): { offset: number; limit: number } {
  const int = (name: string, raw: string | undefined, fallback: number): number => {
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw)) throw new HttpError(400, `${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
    return Number(raw);
  };
  const offset = int('offset', query.offset, 0);
  const limit = Math.max(1, Math.min(MAX_PAGE, int('limit', query.limit, defaultLimit)));
  return { offset, limit };
}

/** JupyterHub's paginated reply; `next.url` is this request's URL with the next offset. */
export function paginated<T>(ctx: Context, items: T[], page: { offset: number; limit: number }, total: number) {
  const nextOffset = page.offset + page.limit;
  let next: { offset: number; limit: number; url: string } | null = null;
  if (nextOffset < total) {
    const url = new URL(ctx.originalUrl, `${ctx.protocol}://${ctx.host}`);
    url.searchParams.set('offset', String(nextOffset));
    url.searchParams.set('limit', String(page.limit));
    next = { offset: nextOffset, limit: page.limit, url: url.href };
  }
  return { items, _pagination: { offset: page.offset, limit: page.limit, total, next } };
}

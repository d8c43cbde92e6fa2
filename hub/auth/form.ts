/**
 * The few urlencoded form fields sign-in needs (`name`, `_csrf`, `next`), read without a
 * body-parser dependency. A body parser that ran earlier wins: its `ctx.request.body` is used.
 */
import type { Context } from 'koa';

/** Sign-in forms are a few short fields; anything bigger is not ours. */
const LIMIT_BYTES = 16 * 1024;

type Body = Record<string, unknown>;

function bodyOf(ctx: Context): Body | undefined {
  const body = (ctx.request as unknown as { body?: unknown }).body;
  return body !== null && typeof body === 'object' ? body as Body : undefined;
}

/** Read and cache an `application/x-www-form-urlencoded` body; other bodies read as empty. */
export async function readForm(ctx: Context): Promise<Body> {
  const parsed = bodyOf(ctx);
  if (parsed) return parsed;
  if (!ctx.is('application/x-www-form-urlencoded')) return {};
  const declared = Number(ctx.get('Content-Length') || 0);
  if (declared > LIMIT_BYTES) ctx.throw(413, 'form too large');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > LIMIT_BYTES) ctx.throw(413, 'form too large');
    chunks.push(chunk as Buffer);
  }
  const form: Body = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
  // Cache where body parsers put it, so a later reader (or parser) sees the same fields.
  (ctx.request as unknown as { body: Body }).body = form;
  return form;
}

/** One string field of the form, or undefined. */
export async function formField(ctx: Context, name: string): Promise<string | undefined> {
  const value = (await readForm(ctx))[name];
  return typeof value === 'string' ? value : undefined;
}

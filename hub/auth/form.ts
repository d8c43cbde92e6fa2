/**
 * The form fields sign-in needs (`name`, `_csrf`, `next`), from the body the app's
 * @koa/bodyparser already parsed (`ctx.request.body`).
 */
import type { Context } from 'koa';

/** One string field of the parsed form (or JSON) body, or undefined. */
export function formField(ctx: Context, name: string): string | undefined {
  const body = (ctx.request as unknown as { body?: unknown }).body;
  const value = body !== null && typeof body === 'object' ? (body as Record<string, unknown>)[name] : undefined;
  return typeof value === 'string' ? value : undefined;
}

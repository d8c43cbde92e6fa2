/**
 * Requests refused before any route runs: a method no route of that path answers (405 with
 * `Allow`, WebDAV and TRACE included), and a body in a format the hub does not read (415)
 * instead of one silently read as empty.
 */
import type Router from '@koa/router';
import type { Context, Next } from 'koa';
import { HttpError } from './errors.ts';

/** The methods the hub implements anywhere; others are 405 whatever the path. */
const HUB_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
/** The body formats the hub parses. */
const BODY_TYPES = ['application/json', 'application/x-www-form-urlencoded'];

/** 405 `{status, message}` with `Allow` when the path exists but not for this method. */
export function methodGuard(router: Router) {
  return async function allowOnlyRouted(ctx: Context, next: Next): Promise<void> {
    const match = router.match(ctx.path, ctx.method);
    const known = HUB_METHODS.includes(ctx.method);
    // OPTIONS is answered by the router's allowedMethods, with the same Allow.
    if (ctx.method === 'OPTIONS' || (known && (match.route || match.path.length === 0))) return next();
    const allowed = [...new Set(match.path.flatMap((layer) => layer.methods))];
    ctx.set('Allow', (allowed.length > 0 ? allowed : HUB_METHODS).join(', '));
    throw new HttpError(405, `Method ${ctx.method} is not allowed on ${ctx.path}`);
  };
}

/** 415 for a request body that is neither JSON nor a form (no body at all is fine). */
export function bodyTypeGuard() {
  return async function readableBodiesOnly(ctx: Context, next: Next): Promise<void> {
    const hasBody = Number(ctx.get('Content-Length') || 0) > 0 || ctx.get('Transfer-Encoding') !== '';
    if (hasBody && !ctx.is(...BODY_TYPES)) {
      const type = ctx.get('Content-Type') || 'none';
      throw new HttpError(415, `Unsupported Content-Type ${type}: send application/json (or a form)`);
    }
    await next();
  };
}

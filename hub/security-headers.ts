/**
 * Security headers on every hub response (helmet, through koa-helmet): a strict
 * Content-Security-Policy that admits only the hub's own inline stylesheet and script by
 * their hashes and no framing, no referrer, nosniff; and `Cache-Control: no-store` on pages,
 * which carry CSRF tokens and who is signed in.
 */
import { createHash } from 'node:crypto';
import type { Context, Middleware, Next } from 'koa';
import helmet from 'koa-helmet';
import { HOME_SCRIPT } from './pages/home.ts';
import { STYLE } from './pages/layout.ts';

const hash = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/** The helmet middleware plus no-store on HTML. `formTargets`: other origins forms may lead to. */
export function securityHeaders(options: { formTargets?: string[] } = {}): Middleware[] {
  const headers = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        scriptSrc: [hash(HOME_SCRIPT)],
        styleSrc: [hash(STYLE)],
        imgSrc: ["'self'"],
        connectSrc: ["'self'"],
        formAction: ["'self'", ...(options.formTargets ?? [])],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
      },
    },
    referrerPolicy: { policy: 'no-referrer' },
  });
  const noStore = async (ctx: Context, next: Next): Promise<void> => {
    await next();
    if (ctx.response.is('html')) ctx.set('Cache-Control', 'no-store');
  };
  return [headers, noStore];
}

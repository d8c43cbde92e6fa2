/** One HTTP error type for the whole hub (see STYLE.md: Hono's HTTPException, CHP's fail()). */
import type { Context, Next } from 'koa';
import type { Logger } from '../shared/log.ts';

/** An error whose message is safe to show the client (4xx). 5xx messages are replaced. */
export class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
  }
}

/** The status a thrown value maps to: HttpError's, a ClusterError's/koa's `status`, else 500. */
export function statusOf(err: unknown): number {
  const status = (err as { status?: unknown } | null)?.status;
  return typeof status === 'number' && status >= 400 && status < 600 ? status : 500;
}

/**
 * Renders every error as JSON `{status, message}` (or a small page for HTML clients).
 * Only 4xx messages reach the client; 5xx become a generic message and a log line.
 */
export function errorHandler(log: Logger, renderPage?: (status: number, message: string) => string) {
  return async function handleErrors(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new HttpError(404, `Not found: ${ctx.path}`);
    } catch (err) {
      const status = statusOf(err);
      const exposed = status < 500 ? (err as Error).message : 'Internal server error';
      if (status >= 500) log.error({ err, reqId: ctx.state.reqId }, 'request failed');
      ctx.status = status;
      const wantsHtml = renderPage !== undefined && !ctx.path.startsWith('/hub/api/') && ctx.accepts('json', 'html') === 'html';
      if (wantsHtml) {
        ctx.type = 'html';
        ctx.body = renderPage(status, exposed);
      } else {
        ctx.body = { status, message: exposed };
      }
    }
  };
}

/** Structured JSON logs: pino, one line per request with a request id, secrets redacted. */
import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import { pino } from 'pino';
import type { Logger } from '../shared/log.ts';

/** The hub's root logger. Keys that may carry secrets are redacted wherever they appear. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger & pino.Logger {
  return pino(
    {
      level,
      base: { app: 'clusterhub' },
      redact: {
        // `err.oauthError`: the response body passport's OAuth errors carry (it may hold codes or tokens).
        paths: ['token', 'jupyterToken', 'authToken', 'cookieSecret', 'clientSecret', '*.token', '*.jupyterToken', '*.authorization', '*.cookie', 'req.headers.authorization', 'req.headers.cookie', 'err.oauthError'],
        censor: '[redacted]',
      },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? process.stdout,
  ) as Logger & pino.Logger;
}

/**
 * Gives every request an id (`ctx.state.reqId`, echoed as `X-Request-Id`) and logs one line
 * when it ends. The query string is left out: it may carry tokens. No child logger per
 * request: lines that belong to a request carry `reqId` themselves (the error handler's do).
 */
export function requestLogger(log: Logger) {
  return async function logRequest(ctx: Context, next: Next): Promise<void> {
    const reqId = randomUUID();
    const started = performance.now();
    ctx.state.reqId = reqId;
    ctx.set('X-Request-Id', reqId);
    try {
      await next();
    } finally {
      const user = (ctx.state.user as { login?: string } | undefined)?.login;
      const ms = Math.round((performance.now() - started) * 10) / 10;
      log.info({ reqId, method: ctx.method, path: ctx.path, status: ctx.status, ms, ...(user ? { user } : {}) }, 'request');
    }
  };
}

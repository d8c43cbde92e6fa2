/**
 * JupyterHub's `.../server/progress` event stream: `data: {progress, message}` steps, then
 * `{progress: 100, ready: true, message, html_message, url}` or `{progress: 100, failed:
 * true, message: "Spawn failed: …"}`, with blank-line keepalives so proxies between the
 * client and the hub do not close a quiet stream.
 */
import type { Context } from 'koa';
import type { ProgressEvent } from '../../spawner/types.ts';
import { escapeHtml } from '../pages/layout.ts';
import { streamProgress } from './sse.ts';

/** JupyterHub's `keepalive_interval`. */
export const KEEPALIVE_MS = 8_000;

/** A manager event in JupyterHub's shape (the hub's own stream says `Launch failed: …`). */
export function jupyterHubEvent(login: string, event: ProgressEvent): Record<string, unknown> {
  if (event.ready) {
    const url = event.url ?? `/user/${encodeURIComponent(login)}/`;
    return { progress: 100, ready: true, message: `Server ready at ${url}`, html_message: `Server ready at <a href="${escapeHtml(url)}">${escapeHtml(url)}</a>`, url };
  }
  if (event.failed) {
    return { progress: 100, failed: true, message: `Spawn failed: ${event.message.replace(/^Launch failed: /, '')}` };
  }
  return { progress: event.progress, message: event.message };
}

/** Streams `events` as JupyterHub does until the ready or failed event, or the client leaves. */
export function streamJupyterHubProgress(ctx: Context, login: string, events: (signal: AbortSignal) => AsyncIterable<ProgressEvent>, keepaliveMs = KEEPALIVE_MS): void {
  streamProgress(ctx, events, { opening: '\n\n', keepaliveMs, endOnFinal: true, shape: (event) => jupyterHubEvent(login, event) });
}

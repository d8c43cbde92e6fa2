/** Server-sent events for launch progress, as JupyterHub streams `.../progress`. */
import { PassThrough } from 'node:stream';
import type { Context } from 'koa';
import type { ProgressEvent } from '../../spawner/types.ts';

/** Streams `events` as `text/event-stream` until the last one or the client leaves. */
export function streamProgress(ctx: Context, events: (signal: AbortSignal) => AsyncIterable<ProgressEvent>): void {
  const stream = new PassThrough();
  const gone = new AbortController();
  ctx.req.on('close', () => gone.abort());
  ctx.status = 200;
  ctx.type = 'text/event-stream';
  ctx.set('Cache-Control', 'no-cache');
  ctx.set('X-Accel-Buffering', 'no');
  ctx.body = stream;
  // Headers go out now, so the page sees the stream open before the first step.
  stream.write(': progress\n\n');
  void (async () => {
    try {
      for await (const event of events(gone.signal)) {
        stream.write(`data: ${JSON.stringify(event)}\n\n`);
      }
    } finally {
      stream.end();
    }
  })();
}

/** Server-sent events for launch progress, as JupyterHub streams `.../progress`. */
import { PassThrough } from 'node:stream';
import type { Context } from 'koa';
import type { ProgressEvent } from '../../spawner/types.ts';

export interface StreamOptions {
  /** Written first, so headers go out and the client sees the stream open before the first step. */
  opening?: string;
  /** How each event is written (default: as it is). */
  shape?: (event: ProgressEvent) => unknown;
  /** Blank-line keepalives this often, so proxies between client and hub keep a quiet stream open. */
  keepaliveMs?: number;
  /** End the stream after the ready or failed event (default: when the events end). */
  endOnFinal?: boolean;
}

/** Streams `events` as `text/event-stream` until the last one or the client leaves. */
export function streamProgress(ctx: Context, events: (signal: AbortSignal) => AsyncIterable<ProgressEvent>, options: StreamOptions = {}): void {
  const stream = new PassThrough();
  const gone = new AbortController();
  ctx.req.on('close', () => gone.abort());
  ctx.status = 200;
  ctx.type = 'text/event-stream';
  ctx.set('Cache-Control', 'no-cache');
  ctx.set('X-Accel-Buffering', 'no');
  ctx.body = stream;
  stream.write(options.opening ?? ': progress\n\n');
  const keepalive = options.keepaliveMs ? setInterval(() => stream.write('\n\n'), options.keepaliveMs) : undefined;
  const shape = options.shape ?? ((event: ProgressEvent) => event);
  void (async () => {
    try {
      for await (const event of events(gone.signal)) {
        stream.write(`data: ${JSON.stringify(shape(event))}\n\n`);
        if (options.endOnFinal && (event.ready || event.failed)) break;
      }
    } finally {
      clearInterval(keepalive);
      stream.end();
    }
  })();
}

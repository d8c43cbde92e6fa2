/** The part of configurable-http-proxy's library API that proxy/front.ts uses (the package ships no types). */
declare module 'configurable-http-proxy' {
  import type { Server } from 'node:http';
  import type { EventEmitter } from 'node:events';
  export default class ConfigurableProxy {
    constructor(options: Record<string, unknown>);
    proxyServer: Server;
    apiServer: Server;
    /** The http-proxy-3 instance that forwards requests and websockets. */
    proxy: EventEmitter;
  }
}

declare module 'configurable-http-proxy/lib/log.js' {
  type LogFn = (format: string, ...args: unknown[]) => void;
  export function defaultLogger(options: { level: string }): { debug: LogFn; info: LogFn; warn: LogFn; error: LogFn };
}

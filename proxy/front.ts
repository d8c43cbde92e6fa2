/**
 * The managed proxy's process: configurable-http-proxy through its library API, behind a
 * small front that refuses what CHP would answer with a 500 (a URL that does not decode)
 * before it routes. Takes the CHP flags the supervisor passes; CONFIGPROXY_AUTH_TOKEN from
 * the environment, as CHP's own command does. Logs in CHP's format, which the supervisor reads.
 */
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { parseArgs } from 'node:util';
import ConfigurableProxy from 'configurable-http-proxy';
import { defaultLogger } from 'configurable-http-proxy/lib/log.js';

/**
 * `--flags-on-fd3`: started before the hub knew the flags (proxy/chp-process.ts prestartChp),
 * so configurable-http-proxy loads meanwhile; the flags and the token come as one JSON line on fd 3.
 */
async function flagsFromFd3(): Promise<{ args: string[]; authToken: string }> {
  const input = createReadStream('', { fd: 3 });
  let text = '';
  for await (const chunk of input) text += String(chunk);
  return JSON.parse(text) as { args: string[]; authToken: string };
}
const given = process.argv[2] === '--flags-on-fd3' ? await flagsFromFd3() : { args: process.argv.slice(2), authToken: process.env.CONFIGPROXY_AUTH_TOKEN };

const { values: args } = parseArgs({
  args: given.args,
  options: {
    ip: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    'api-ip': { type: 'string', default: '127.0.0.1' },
    'api-port': { type: 'string' },
    'default-target': { type: 'string' },
    'error-target': { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
    'host-routing': { type: 'boolean', default: false },
  },
});

/** Why a request cannot be routed, or undefined when it can. */
function unroutable(req: IncomingMessage): string | undefined {
  try {
    decodeURIComponent(new URL(req.url ?? '/', 'http://front.invalid').pathname);
  } catch {
    return 'Malformed URL: the path does not decode';
  }
  return undefined;
}

const log = defaultLogger({ level: args['log-level']!.toLowerCase() });
const proxy = new ConfigurableProxy({
  authToken: given.authToken,
  defaultTarget: args['default-target'],
  errorTarget: args['error-target'],
  hostRouting: args['host-routing'],
  xfwd: true,
  log,
});

// http-proxy-3 rethrows a client socket's error when nobody listens for it, and CHP 5.3 does
// not: a browser resetting a JupyterLab websocket (a tab closed, a page left: ECONNRESET)
// would end the process, and with it every student's connection. Such a socket is just gone.
proxy.proxy.on('error', (err: NodeJS.ErrnoException, req: IncomingMessage, socket: Duplex | ServerResponse) => {
  log.debug('%s %s: client connection lost: %s', req.method, req.url, err.code ?? err.message);
  if (!socket.destroyed) socket.destroy();
});

const server = proxy.proxyServer;
const [onRequest] = server.listeners('request') as Array<(req: IncomingMessage, res: ServerResponse) => void>;
const [onUpgrade] = server.listeners('upgrade') as Array<(req: IncomingMessage, socket: Duplex, head: Buffer) => void>;
server.removeAllListeners('request');
server.removeAllListeners('upgrade');
server.on('request', (req: IncomingMessage, res: ServerResponse) => {
  const reason = unroutable(req);
  if (reason === undefined) return onRequest!(req, res);
  log.warn('400 %s: %s', req.method, reason);
  res.writeHead(400, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ status: 400, message: reason }));
});
server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
  if (unroutable(req) === undefined) return onUpgrade!(req, socket, head);
  socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
});

// One line naming the port (the supervisor reads it), not a stack.
const listeners = [['public', server, args.port, args.ip], ['API', proxy.apiServer, args['api-port'], args['api-ip']]] as const;
for (const [what, listener, port, ip] of listeners) {
  listener.on('error', (err: NodeJS.ErrnoException) => {
    log.error('%s port %s:%s: %s', what, ip, port, err.code ?? err.message);
    process.exit(1);
  });
  // Port 0: the system picks one, and the line below tells the supervisor which.
  listener.listen(Number(port), ip);
}
// Both bound: this process, and no other, holds both ports now. The supervisor counts an
// answer on the API port as its child's only after this line (written whatever the log level).
await Promise.all(listeners.map(([, listener]) => listener.listening ? undefined : once(listener, 'listening')));
const boundPort = (listener: (typeof listeners)[number][1]): number => (listener.address() as AddressInfo).port;
process.stdout.write(`clusterhub-proxy listening: public port ${boundPort(server)}, API port ${boundPort(proxy.apiServer)}\n`);
log.info('Proxying http://%s:%s to %s', args.ip, boundPort(server), args['default-target'] ?? '(no default)');

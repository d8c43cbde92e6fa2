/**
 * Ports that tests choose for servers they start later (a hub's public port, a proxy's API
 * port, a plane's etcd): picked below the kernel's ephemeral range
 * (`net.ipv4.ip_local_port_range`), where no `listen(0)` and no outgoing connection of any
 * other process lands. A port the kernel handed out as free is anyone's a moment later — a
 * Dask worker or another test binding port 0 takes it between our check and our listen —
 * while nothing but a test of ours picks from this range, each one checked free when picked
 * and never handed out twice by one process.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';

const LOWEST = 20_000;
const ephemeralStart = (() => {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    return 32_768;
  }
})();
const HIGHEST = Math.min(ephemeralStart - 1, 32_767);
if (!(HIGHEST - LOWEST >= 2_000)) {
  throw new Error(`ip_local_port_range starts at ${ephemeralStart}: tests need ports ${LOWEST}…${LOWEST + 2_000} outside it`);
}

const handedOut = new Set<number>();

function hold(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => resolve(server));
  });
}

/**
 * `count` free loopback ports; with `adjacent`, consecutive ones (a hub's public port and its
 * proxy API at +1). All are held open together while picked, so none repeats.
 */
export async function testPorts(count: number, options: { adjacent?: boolean } = {}): Promise<number[]> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const first = LOWEST + Math.floor(Math.random() * (HIGHEST - LOWEST - count));
    const candidates = options.adjacent
      ? Array.from({ length: count }, (_, i) => first + i)
      : Array.from({ length: count }, () => LOWEST + Math.floor(Math.random() * (HIGHEST - LOWEST)));
    if (new Set(candidates).size < count || candidates.some((p) => handedOut.has(p))) continue;
    const held = await Promise.all(candidates.map(hold));
    await Promise.all(held.map((s) => s && new Promise((r) => s.close(r))));
    if (held.every(Boolean)) {
      for (const p of candidates) handedOut.add(p);
      return candidates;
    }
  }
  throw new Error(`no ${count} free ports between ${LOWEST} and ${HIGHEST} after 200 tries`);
}

import test from 'ava';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { claimHostRoutes, installedRoutes, planRoutes, readOwners, ROUTE_PROTO, type RouteOwner } from './host-routes.ts';
import { NODE_NET } from './node/host.ts';
import { startPlane, unservedRanges } from './plane.ts';
import { waitForPods } from './watch.ts';

const run = promisify(execFile);
const ROUTES_MODULE = join(import.meta.dirname, 'host-routes.ts');
const log = () => {};

function owner(id: string, ranges: string[]): RouteOwner {
  return { id, pid: 1, startTime: '1', ranges, since: '' };
}

/** A random /28 of 198.18.0.0/15 (RFC 2544, benchmarking only): no other run picks the same one. */
function testRange(): string {
  const n = Math.floor(Math.random() * 8192) * 16;
  return `198.${18 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}/28`;
}

function inRange(address: string, range: string): boolean {
  const toInt = (ip: string) => ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
  const [base, bits] = range.split('/');
  const size = 2 ** (32 - Number(bits));
  return Math.floor(toInt(address) / size) === Math.floor(toInt(base!) / size);
}

/** What the kernel's route lookup answers for `address`: `ip route get` prints the route or the lookup's error. */
async function routeLookup(address: string): Promise<string> {
  try {
    const { stdout } = await run('ip', ['route', 'get', address]);
    return stdout.trim();
  } catch (error) {
    return String((error as { stderr?: string }).stderr ?? error).trim();
  }
}

/** A TCP connect to `address`: its error code and how long it took. Only called once the lookup says unreachable. */
function tcpConnect(address: string, port: number): Promise<{ code: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve({ code: 'CONNECTED', ms: performance.now() - started });
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve({ code: error.code ?? String(error), ms: performance.now() - started }));
  });
}

/** Another process holding `ranges` through the same module, as a parallel plane does; ends its claim when its stdin closes. */
async function otherOwner(ranges: string[]) {
  const code = `import { claimHostRoutes } from ${JSON.stringify(ROUTES_MODULE)};
    const claim = await claimHostRoutes(${JSON.stringify(ranges)}, () => {});
    console.log('held');
    process.stdin.on('end', async () => { await claim.release(); process.exit(0); });
    process.stdin.resume();`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['pipe', 'pipe', 'inherit'] });
  await once(child.stdout, 'data');
  return child;
}

test('route plan: the union of live owners is installed; a range another owner holds stays', (t) => {
  const a = owner('a', ['10.244.0.0/24', '10.96.0.0/16']);
  const b = owner('b', ['10.244.0.0/24', '10.244.1.0/24', '10.96.0.0/16']);
  t.deepEqual(planRoutes([a, b], []), { add: ['10.244.0.0/24', '10.96.0.0/16', '10.244.1.0/24'], remove: [] });
  t.deepEqual(planRoutes([b], ['10.244.0.0/24', '10.244.1.0/24', '10.96.0.0/16']), { add: [], remove: [] }, 'a stops: b still needs all');
  t.deepEqual(planRoutes([a], ['10.244.0.0/24', '10.244.1.0/24', '10.96.0.0/16']), { add: [], remove: ['10.244.1.0/24'] }, 'b stops: only its own range goes');
  t.deepEqual(planRoutes([], ['10.244.0.0/24', '10.96.0.0/16', '10.9.9.9']), { add: [], remove: ['10.244.0.0/24', '10.96.0.0/16', '10.9.9.9/32'] }, 'the last one out removes them');
});

test('a plane without real nodes keeps every fake node podCIDR and the Service range', (t) => {
  t.deepEqual(unservedRanges({ nodes: 3 }), ['10.244.0.0/24', '10.244.1.0/24', '10.244.2.0/24', '10.96.0.0/16']);
});

test.serial('shared routes: the first owner to stop leaves them to a live owner; the last one removes them', async (t) => {
  t.is(process.getuid?.(), 0, 'host routes need root');
  const range = testRange();
  const other = await otherOwner([range]);
  t.true((await installedRoutes()).includes(range), 'the other process added the route');
  const mine = await claimHostRoutes([range], log);
  await mine.release();
  t.true((await installedRoutes()).includes(range), 'releasing ours leaves the live owner its route');
  t.true((await readOwners()).some((o) => o.pid === other.pid && o.ranges.includes(range)));
  other.stdin.end();
  await once(other, 'exit');
  t.false((await installedRoutes()).includes(range), 'the last owner removed it');
  t.false((await readOwners()).some((o) => o.ranges.includes(range)));
});

test.serial("a crashed owner's routes are swept by the next claim", async (t) => {
  t.is(process.getuid?.(), 0, 'host routes need root');
  const crashed = testRange();
  const next = testRange();
  const other = await otherOwner([crashed]);
  other.kill('SIGKILL');
  await once(other, 'exit');
  t.true((await installedRoutes()).includes(crashed), 'a killed process cannot clean up');
  t.true((await readOwners()).some((o) => o.pid === other.pid), 'its entry is still registered');
  const mine = await claimHostRoutes([next], log);
  const routes = await installedRoutes();
  t.false(routes.includes(crashed), 'swept with its dead owner');
  t.true(routes.includes(next));
  t.false((await readOwners()).some((o) => o.pid === other.pid));
  await mine.release();
  t.false((await installedRoutes()).includes(next));
});

/** Whether `ip route get` answered with the real node's bridge (never the default gateway). */
function onNodeBridge(lookup: string): boolean {
  return new RegExp(`^\\S+ dev ${NODE_NET.bridge} src ${NODE_NET.gateway.replaceAll('.', '\\.')} `).test(lookup) && !lookup.includes(' via ');
}

test.serial("with the plane up, fake pod IPs and ClusterIPs are unreachable on the host; after stop the plane's routes are gone", async (t) => {
  t.timeout(5 * 60_000, 'starting the control plane');
  t.is(process.getuid?.(), 0, 'host routes need root');
  const plane = await startPlane({ nodes: 2 });
  const ranges = unservedRanges({ nodes: 2 });
  try {
    const { stdout: table } = await run('ip', ['route', 'show', 'table', 'main', 'proto', String(ROUTE_PROTO)]);
    t.log(`ip route show proto ${ROUTE_PROTO}, plane up:\n${table.trim()}`);
    for (const range of ranges) t.regex(table, new RegExp(`^unreachable ${range.replaceAll('.', '\\.')} `, 'm'));

    const kc = new KubeConfig();
    kc.loadFromFile(plane.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    const namespace = plane.newPrefix('routes');
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    await core.createNamespacedPod({ namespace, body: { metadata: { name: 'fake', labels: { app: 'fake' } }, spec: { automountServiceAccountToken: false, containers: [{ name: 'main', image: 'registry.invalid/pause:1' }] } } });
    const [pod] = await waitForPods(kc, namespace, 'app=fake', (pods) => Boolean(pods[0]?.status?.podIP), { what: 'a pod IP', timeoutMs: 120_000 });
    const service = await core.createNamespacedService({ namespace, body: { metadata: { name: 'unserved' }, spec: { ports: [{ port: 80 }] } } });
    const targets = [
      { what: 'fake pod', address: pod!.status!.podIP!, port: 8888 },
      { what: 'ClusterIP', address: service.spec!.clusterIP!, port: 80 },
    ];
    for (const { what, address, port } of targets) {
      t.true(ranges.some((r) => inRange(address, r)), `${what} ${address} is in the plane's ranges`);
      // The lookup must answer from our route before anything is sent: never connect otherwise.
      const lookup = await routeLookup(address);
      if (what === 'ClusterIP' && onNodeBridge(lookup)) {
        // A real node beside this plane routes the Service range to its bridge, which stays on the machine.
        t.log(`ip route get ${address}: ${lookup} (a real node runs beside this plane)`);
        continue;
      }
      t.is(lookup, 'RTNETLINK answers: No route to host', `ip route get ${address}`);
      if (lookup !== 'RTNETLINK answers: No route to host') continue;
      const { code, ms } = await tcpConnect(address, port);
      t.log(`connect ${what} ${address}:${port}: ${code} after ${ms.toFixed(1)} ms`);
      t.is(code, 'EHOSTUNREACH', `${what} ${address}`);
      // A packet that left would wait for a SYN answer (seconds); the route lookup fails at once.
      t.true(ms < 1000, `${what}: failed after ${ms.toFixed(0)} ms`);
    }
  } finally {
    await plane.stop();
  }
  const left = await installedRoutes();
  const owners = await readOwners();
  t.log(`ip route show proto ${ROUTE_PROTO}, plane stopped: ${left.join(' ') || '(none)'}`);
  for (const range of ranges) {
    const holders = owners.filter((o) => o.ranges.includes(range) && o.pid !== process.pid);
    if (holders.length === 0) t.false(left.includes(range), `${range} is gone`);
    else t.true(left.includes(range), `${range} stays for the live plane(s) of pid ${holders.map((o) => o.pid).join(', ')}`);
  }
  t.false(owners.some((o) => o.pid === process.pid), 'this plane left the registry');
});

/**
 * Host routes that keep a test plane's addresses on this machine. Without them a connection
 * to a fake pod IP or a ClusterIP goes out through the default gateway. Each range gets an
 * `unreachable` route (connect() fails at once with EHOSTUNREACH, no packet is sent).
 *
 * Several planes run at once with the same ranges, so the routes are shared: a registry of
 * live owners (process id and start time) decides which routes exist, every change happens
 * under one lock, the first owner adds a route and the last one removes it, and owners whose
 * process is gone (a crashed plane) are swept by the next claim. Our routes carry their own
 * protocol number, so only routes we added are ever removed.
 *
 *   node test/kube/host-routes.ts status|sweep    show the registry and routes | drop dead owners
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { acquireFlock } from '../helpers/flock.ts';

/** rtnetlink protocol number marking our routes (`ip route show proto 147`); unassigned in iproute2's list. */
export const ROUTE_PROTO = 147;
/** A high metric: a real route for the same prefix (a node's bridge, metric 0) takes precedence. */
export const ROUTE_METRIC = 4242;
/** Machine-wide like the routes themselves (root only), and gone after a reboot as they are. */
export const STATE_DIR = '/run/clusterhub';
const REGISTRY = join(STATE_DIR, 'plane-routes.json');
const LOCK = join(STATE_DIR, 'plane-routes.lock');

const run = promisify(execFile);

/** One process's claim on some ranges. */
export interface RouteOwner {
  id: string;
  pid: number;
  /** Start time of `pid` (clock ticks after boot), so a reused pid is not mistaken for the owner. */
  startTime: string;
  ranges: string[];
  since: string;
}

/** Routes to add and remove so the installed ones are exactly the live owners' ranges. */
export function planRoutes(liveOwners: readonly RouteOwner[], installed: readonly string[]): { add: string[]; remove: string[] } {
  const wanted = new Set(liveOwners.flatMap((o) => o.ranges.map(normalise)));
  const have = new Set(installed.map(normalise));
  return { add: [...wanted].filter((r) => !have.has(r)), remove: [...have].filter((r) => !wanted.has(r)) };
}

/** `10.0.0.1` → `10.0.0.1/32`, as `ip` prints host routes without a length. */
function normalise(range: string): string {
  return range.includes('/') ? range : `${range}/32`;
}

/** Field 22 of /proc/PID/stat (its start time), or undefined when no such process exists. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name in parentheses may hold spaces; fields after it start at field 3.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function alive(owner: RouteOwner): boolean {
  return processStartTime(owner.pid) === owner.startTime;
}

/** The ranges of the routes we added (our protocol number), as `ip route` lists them. */
export async function installedRoutes(): Promise<string[]> {
  const { stdout } = await run('ip', ['-j', 'route', 'show', 'table', 'main', 'proto', String(ROUTE_PROTO)]);
  return (JSON.parse(stdout || '[]') as { dst: string }[]).map((r) => normalise(r.dst));
}

/** The owners recorded in the registry, dead ones included. */
export async function readOwners(): Promise<RouteOwner[]> {
  const text = await readFile(REGISTRY, 'utf8').catch(() => '{"owners":[]}');
  return (JSON.parse(text) as { owners: RouteOwner[] }).owners;
}

/** Applies a plan with one `ip -batch` run; `ip` stops at the first failing line. */
function applyRoutes(plan: { add: string[]; remove: string[] }): Promise<void> {
  const route = (verb: string, range: string) => `route ${verb} unreachable ${range} table main proto ${ROUTE_PROTO} metric ${ROUTE_METRIC}`;
  const script = [...plan.remove.map((r) => route('del', r)), ...plan.add.map((r) => route('add', r))].join('\n');
  if (!script) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['-batch', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`ip -batch failed (exit ${code}): ${stderr.trim()}\n${script}`))));
    child.stdin.end(`${script}\n`);
  });
}

/**
 * Under the lock: drop dead owners, apply `change` to the live ones, make the routes match
 * and write the registry. Returns the live owners after the change and what moved.
 */
async function update(change: (live: RouteOwner[]) => RouteOwner[]): Promise<{ owners: RouteOwner[]; dead: RouteOwner[]; add: string[]; remove: string[] }> {
  await mkdir(STATE_DIR, { recursive: true, mode: 0o755 });
  const lock = await acquireFlock(LOCK);
  try {
    const recorded = await readOwners();
    const dead = recorded.filter((o) => !alive(o));
    const owners = change(recorded.filter(alive));
    const plan = planRoutes(owners, await installedRoutes());
    // Registry first: if we die between the two writes, the next update repairs the routes.
    const tmp = `${REGISTRY}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify({ owners }, null, 2)}\n`);
    await rename(tmp, REGISTRY);
    await applyRoutes(plan);
    return { owners, dead, ...plan };
  } finally {
    await lock.release();
  }
}

/** A claim on routes; release() drops it (and the routes nobody else holds). Idempotent. */
export interface HostRoutes {
  ranges: string[];
  release(): Promise<void>;
}

/**
 * Makes sure an `unreachable` route exists for each range while this process needs it.
 * Not root: nothing can be added; says so in one line and returns a claim that does nothing.
 */
export async function claimHostRoutes(ranges: readonly string[], log: (line: string) => void): Promise<HostRoutes> {
  if (process.getuid?.() !== 0) {
    log(`not root: no host routes for ${ranges.join(' ')}; nothing on this host may connect to them`);
    return { ranges: [...ranges], release: async () => {} };
  }
  const startTime = processStartTime(process.pid);
  if (!startTime) throw new Error(`cannot read /proc/${process.pid}/stat`);
  const me: RouteOwner = { id: `${process.pid}-${randomBytes(4).toString('hex')}`, pid: process.pid, startTime, ranges: ranges.map(normalise), since: new Date().toISOString() };
  const claimed = await update((live) => [...live, me]);
  if (claimed.dead.length > 0) log(`swept the routes of ${claimed.dead.length} dead plane(s) (pid ${claimed.dead.map((o) => o.pid).join(', ')})`);
  const shared = me.ranges.filter((r) => !claimed.add.includes(r));
  log(`unreachable on this host: ${me.ranges.join(' ')}${shared.length ? ` (${shared.length} already held by other live planes)` : ''}`);
  let released: Promise<void> | undefined;
  return {
    ranges: me.ranges,
    release: () =>
      (released ??= (async () => {
        const after = await update((live) => live.filter((o) => o.id !== me.id));
        const kept = me.ranges.filter((r) => !after.remove.includes(r));
        const holders = after.owners.filter((o) => o.ranges.some((r) => kept.includes(r))).length;
        log(`removed host routes ${after.remove.join(' ') || '(none)'}${kept.length ? `; kept ${kept.join(' ')} for ${holders} other live plane(s)` : ''}`);
      })()),
  };
}

async function main(command: string | undefined): Promise<void> {
  if (command === 'sweep') {
    const { dead, remove } = await update((live) => live);
    process.stdout.write(`swept ${dead.length} dead owner(s); removed ${remove.join(' ') || 'no routes'}\n`);
  } else if (command === 'status') {
    const owners = await readOwners();
    for (const o of owners) process.stdout.write(`${alive(o) ? 'live' : 'dead'} pid ${o.pid} since ${o.since}: ${o.ranges.join(' ')}\n`);
    process.stdout.write(`installed (proto ${ROUTE_PROTO}): ${(await installedRoutes()).join(' ') || 'none'}\n`);
  } else {
    process.stderr.write('usage: node test/kube/host-routes.ts status|sweep\n');
    process.exitCode = 2;
  }
}

if (import.meta.main) {
  main(process.argv[2]).catch((error) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}

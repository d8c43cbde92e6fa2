/**
 * Loopback connections to a student's processes only from that student and the hub, by
 * iptables' owner match: the Dask dashboard, Spark's UIs and every other port a cluster
 * opens (fixed or random) have no login of their own.
 *
 * How: every TCP handshake on `lo` passes the CLUSTERHUB chain. A SYN from a student's (or
 * the hub's) socket tags its connection (connmark) with that uid. A SYN-ACK answered by a
 * student's listening socket whose connection carries neither the student's tag nor the
 * hub's is dropped and the connection marked refused; the caller's retried SYN then gets a
 * TCP reset ("connection refused", about a second later). Established traffic never enters.
 * Rules live in CLUSTERHUB-STUDENTS, two per student, tagged with a comment, added and
 * removed together (iptables-restore is atomic).
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import type { Account } from './accounts.ts';

const run = promisify(execFile);

const CHAIN = 'CLUSTERHUB';
const STUDENTS = 'CLUSTERHUB-STUDENTS';
/** Connection refused from now on (a bit of the connmark). */
const REFUSED = '0x40000000/0x40000000';
const TAG_MASK = 0x3fffffff;

function tag(uid: number): string {
  return `0x${(0x20000000 | uid).toString(16)}/0x${TAG_MASK.toString(16)}`;
}

const SYN = '--tcp-flags SYN,RST,ACK,FIN SYN';
const SYN_ACK = '--tcp-flags SYN,ACK SYN,ACK';

function comment(account: string): string {
  return `clusterhub:${account}`;
}

/** The two rules of one student, as iptables-restore lines (without -A/-D). */
export function studentRules(account: Account, hubUid: number): string[] {
  const c = `-m comment --comment ${comment(account.name)}`;
  return [
    `${STUDENTS} -p tcp ${SYN} -m owner --uid-owner ${account.uid} ${c} -j CONNMARK --set-xmark ${tag(account.uid)}`,
    `${STUDENTS} -p tcp ${SYN_ACK} -m owner --uid-owner ${account.uid} -m connmark ! --mark ${tag(account.uid)} -m connmark ! --mark ${tag(hubUid)} ${c} -j CONNMARK --set-xmark ${REFUSED}`,
  ];
}

/** The shared chain, replaced whole on every setup. */
export function baseRules(hubUid: number): string[] {
  return [
    `${CHAIN} -p tcp -m connmark --mark ${REFUSED} -j REJECT --reject-with tcp-reset`,
    `${CHAIN} -p tcp ${SYN} -m owner --uid-owner ${hubUid} -j CONNMARK --set-xmark ${tag(hubUid)}`,
    `${CHAIN} -p tcp -j ${STUDENTS}`,
    `${CHAIN} -p tcp -m connmark --mark ${REFUSED} -j DROP`,
  ];
}

function restore(tool: string, lines: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(`${tool}-restore`, ['-w', '10', '--noflush'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${tool}-restore: ${stderr.trim() || `exit ${code}`}`))));
    child.stdin.end(['*filter', ...lines, 'COMMIT', ''].join('\n'));
  });
}

/** Per-student loopback firewall (IPv4 and IPv6); operations run one at a time. */
export class LoopbackFirewall {
  readonly #hubUid: number;
  readonly #tools = ['iptables', 'ip6tables'];
  #queue: Promise<unknown> = Promise.resolve();

  constructor(hubUid = process.getuid?.() ?? 0) {
    this.#hubUid = hubUid;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.catch(() => {}).then(fn);
    this.#queue = next;
    return next;
  }

  /** Create the chains and hook them into OUTPUT; throws with iptables' words when it cannot. */
  setup(): Promise<void> {
    return this.#serial(async () => {
      for (const tool of this.#tools) {
        await run(tool, ['-w', '10', '-N', STUDENTS]).catch(() => {}); // already there
        await restore(tool, [`:${CHAIN} - [0:0]`, ...baseRules(this.#hubUid).map((r) => `-A ${r}`)]);
        const hook = ['OUTPUT', '-o', 'lo', '-p', 'tcp', '--tcp-flags', 'SYN', 'SYN', '-j', CHAIN];
        const hooked = await run(tool, ['-w', '10', '-C', ...hook]).then(() => true, () => false);
        if (!hooked) await run(tool, ['-w', '10', '-I', ...hook]);
      }
    });
  }

  /** Accounts that have rules now (IPv4; IPv6 is kept in step). */
  listed(): Promise<string[]> {
    return this.#serial(async () => [...new Set((await this.#rules('iptables')).map((r) => r.account))]);
  }

  /** The student rules of one table, with the account each belongs to. */
  async #rules(tool: string): Promise<Array<{ account: string; spec: string }>> {
    const { stdout } = await run(tool, ['-w', '10', '-S', STUDENTS]);
    return stdout.split('\n').flatMap((line) => {
      const m = line.match(/^-A (.*--comment "?clusterhub:([^"\s]+)"?.*)$/);
      return m ? [{ account: m[2]!, spec: m[1]!.replaceAll('"', '') }] : [];
    });
  }

  /** Only `account` (and the hub) may connect to `account`'s listening sockets. Idempotent. */
  allowOnlyOwner(account: Account): Promise<void> {
    return this.#serial(async () => {
      for (const tool of this.#tools) {
        if ((await this.#rules(tool)).some((r) => r.account === account.name)) continue;
        await restore(tool, studentRules(account, this.#hubUid).map((r) => `-A ${r}`));
      }
    });
  }

  /** Remove every rule of `account` (its cluster stopped), whatever uid it was made for. Idempotent. */
  remove(account: Account): Promise<void> {
    return this.#serial(async () => {
      for (const tool of this.#tools) {
        const mine = (await this.#rules(tool)).filter((r) => r.account === account.name);
        if (mine.length > 0) await restore(tool, mine.map((r) => `-D ${r.spec}`));
      }
    });
  }
}

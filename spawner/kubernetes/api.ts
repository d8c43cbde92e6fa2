/**
 * Polite access to the API server: a semaphore bounds the requests in flight (a class of
 * 100 pressing Launch at once must not become a 429 storm) and transient answers
 * (429, 5xx, optimistic-lock conflicts, dropped connections) are retried with backoff.
 */
import { setTimeout as delay } from 'node:timers/promises';

/** The Kubernetes `Status` fields of a failed request that decisions depend on. */
export interface ApiFailure {
  code?: number;
  /** `AlreadyExists`, `NotFound`, `Conflict`, `Forbidden`… */
  reason?: string;
  message: string;
  retryAfterSeconds?: number;
}

/** Reads the status of an error thrown by @kubernetes/client-node (or anything else). */
export function apiFailure(err: unknown): ApiFailure {
  const e = err as { code?: unknown; body?: unknown; headers?: Record<string, string>; message?: string; cause?: { code?: string } };
  const code = typeof e?.code === 'number' ? e.code : undefined;
  let status: { reason?: string; message?: string; details?: { retryAfterSeconds?: number } } = {};
  if (typeof e?.body === 'string') {
    try {
      status = JSON.parse(e.body);
    } catch {
      status = { message: e.body };
    }
  } else if (e?.body && typeof e.body === 'object') {
    status = e.body as typeof status;
  }
  const header = Number(e?.headers?.['retry-after']);
  const message = status.message || (code === undefined ? String(e?.message ?? err) : `HTTP ${code}`);
  const retryAfterSeconds = status.details?.retryAfterSeconds ?? (Number.isFinite(header) ? header : undefined);
  return { code, reason: status.reason, message, ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}) };
}

/** True when the request failed because the object does not exist. */
export function isNotFound(err: unknown): boolean {
  return apiFailure(err).code === 404;
}

/** True when a create failed because the object is already there. */
export function isAlreadyExists(err: unknown): boolean {
  const f = apiFailure(err);
  return f.code === 409 && f.reason === 'AlreadyExists';
}

/**
 * RBAC's answer right after a RoleBinding was created and before the authorizer's cache
 * has it: worth a retry, unlike an admission plugin's 403 (quota, PodSecurity).
 */
export function isRbacDenial(err: unknown): boolean {
  const f = apiFailure(err);
  return f.code === 403 && /\bcannot \w+ resource\b/.test(f.message);
}

/**
 * Admission not yet caught up with objects made a moment ago in the same namespace: the
 * quota controller has not filled in a new ResourceQuota's usage ("status unknown for
 * quota"), or the ServiceAccount admission's cache lacks a new ServiceAccount. Retried.
 */
export function isAdmissionCatchingUp(err: unknown): boolean {
  const f = apiFailure(err);
  return f.code === 403 && /status unknown for quota|error looking up service account/.test(f.message);
}

const CONNECTION_ERRORS = /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|UND_ERR_SOCKET|UND_ERR_CLOSED|UND_ERR_CONNECT_TIMEOUT)$/;

/** The first error code along the `cause` chain (`ECONNREFUSED`…), if any. */
function connectionCode(err: unknown): string | undefined {
  for (let e = err as { cause?: unknown; code?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && CONNECTION_ERRORS.test(e.code)) return e.code;
    for (const inner of (e as { errors?: unknown[] }).errors ?? []) {
      const code = (inner as { code?: unknown })?.code;
      if (typeof code === 'string' && CONNECTION_ERRORS.test(code)) return code;
    }
  }
  return undefined;
}

/** True when no HTTP answer came at all: the API server is down or cannot be reached. */
export function isUnreachable(err: unknown): boolean {
  return apiFailure(err).code === undefined && connectionCode(err) !== undefined;
}

/** What went wrong on the way to the API server, in a few words (`connect ECONNREFUSED 127.0.0.1:6443`). */
export function unreachableDetail(err: unknown): string {
  for (let e = err as { cause?: unknown; message?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.message === 'string' && e.message && e.message !== 'fetch failed' && e.message !== 'terminated') return e.message;
  }
  return connectionCode(err) ?? 'no answer';
}

/** Transient by nature: throttling, server trouble, optimistic-lock conflicts, lost connections. */
export function isRetryable(err: unknown): boolean {
  const f = apiFailure(err);
  if (f.code === undefined) return isUnreachable(err);
  return f.code === 429 || f.code >= 500 || (f.code === 409 && f.reason === 'Conflict');
}

export interface ApiGateOptions {
  /** Requests in flight at once. */
  concurrency: number;
  /** Attempts per request, the first included (default 6). */
  attempts?: number;
  /** First backoff (default 200 ms), doubled per attempt with jitter, capped at 5 s. */
  baseDelayMs?: number;
  /** Counts every request sent, retries included (metrics, benchmarks). */
  onRequest?: (what: string) => void;
}

/** First backoff of a `quick` retry. */
const QUICK_DELAY_MS = 25;

/** Bounded concurrency plus retries, around every API call the backend makes. */
export class ApiGate {
  readonly #limit: number;
  readonly #attempts: number;
  readonly #baseDelayMs: number;
  readonly #onRequest: (what: string) => void;
  #active = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(options: ApiGateOptions) {
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) throw new RangeError('concurrency must be a positive integer');
    this.#limit = options.concurrency;
    this.#attempts = options.attempts ?? 6;
    this.#baseDelayMs = options.baseDelayMs ?? 200;
    this.#onRequest = options.onRequest ?? (() => {});
  }

  /** Requests waiting for a slot right now. */
  get queued(): number {
    return this.#waiting.length;
  }

  /**
   * Runs `fn` in a slot; retries while `retry(err)` (default {@link isRetryable}) says so.
   * The slot is released during backoff, so one struggling request never blocks the rest.
   * With a `signal` (a launch's deadline), an unreachable API server is retried until the
   * signal aborts, and the connection error is what is thrown then.
   */
  async run<T>(what: string, fn: () => Promise<T>, options: {
    signal?: AbortSignal;
    retry?: (err: unknown) => boolean;
    attempts?: number;
    /** Failures that clear within milliseconds (an authorizer cache catching up): backoff from 25 ms, not the base. */
    quick?: (err: unknown) => boolean;
    /** Failures retried past `attempts`, until the signal aborts (only with a signal). */
    untilAborted?: (err: unknown) => boolean;
  } = {}): Promise<T> {
    const retry = options.retry ?? isRetryable;
    for (let attempt = 1; ; attempt++) {
      options.signal?.throwIfAborted();
      await this.#acquire();
      let failure: unknown;
      try {
        this.#onRequest(what);
        return await fn();
      } catch (err) {
        failure = err;
      } finally {
        this.#release();
      }
      const untilAborted = options.signal !== undefined && (isUnreachable(failure) || (options.untilAborted?.(failure) ?? false));
      if ((attempt >= (options.attempts ?? this.#attempts) && !untilAborted) || !retry(failure)) throw failure;
      const after = apiFailure(failure).retryAfterSeconds;
      const base = options.quick?.(failure) ? Math.min(QUICK_DELAY_MS, this.#baseDelayMs) : this.#baseDelayMs;
      const backoff = Math.min(5000, base * 2 ** Math.min(attempt - 1, 16));
      const wait = after !== undefined ? Math.min(after * 1000, 10_000) : backoff / 2 + Math.random() * (backoff / 2);
      try {
        await delay(wait, undefined, { signal: options.signal });
      } catch {
        throw failure;
      }
    }
  }

  #acquire(): Promise<void> {
    if (this.#active < this.#limit) {
      this.#active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#active--;
  }
}

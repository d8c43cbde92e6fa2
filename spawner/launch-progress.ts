/** One launch in flight: its progress history, fanned out to any number of watchers. */
import type { ProgressEvent } from './types.ts';

/** A launch's progress, replayed to late watchers and then streamed live. */
export class Launch {
  readonly user: string;
  readonly workers: number;
  readonly startedAt: Date;
  readonly controller = new AbortController();
  /** Settles when the launch is over (ready or failed); never rejects. */
  readonly done: Promise<ProgressEvent>;
  #events: ProgressEvent[] = [];
  #watchers = new Set<() => void>();
  #finish!: (event: ProgressEvent) => void;
  #final: ProgressEvent | undefined;
  #progress = 0;

  constructor(user: string, workers: number, now = new Date()) {
    this.user = user;
    this.workers = workers;
    this.startedAt = now;
    this.done = new Promise((resolve) => (this.#finish = resolve));
  }

  get finished(): boolean {
    return this.#final !== undefined;
  }

  /** The latest message, for a timeout or failure that needs context. */
  get lastMessage(): string {
    return this.#events.at(-1)?.message ?? '';
  }

  /** Records a step; progress never goes backwards, whatever the backend says. */
  push(event: ProgressEvent): void {
    if (this.#final) return;
    this.#progress = Math.max(this.#progress, Math.min(100, Math.max(0, Math.round(event.progress))));
    const recorded: ProgressEvent = { ...event, progress: this.#progress };
    this.#events.push(recorded);
    if (event.ready || event.failed) {
      this.#final = recorded;
      this.#finish(recorded);
    }
    for (const wake of this.#watchers) wake();
  }

  /** Every event so far, then each new one, ending with the ready or failed event. */
  async *watch(signal?: AbortSignal): AsyncGenerator<ProgressEvent> {
    let next = 0;
    while (!signal?.aborted) {
      while (next < this.#events.length) {
        const event = this.#events[next++]!;
        yield event;
        if (event.ready || event.failed) return;
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#watchers.delete(wake);
          signal?.removeEventListener('abort', wake);
          resolve();
        };
        this.#watchers.add(wake);
        signal?.addEventListener('abort', wake, { once: true });
      });
    }
  }
}

/** A FIFO of waiters with bounded concurrency, where each waiter can see its position. */

export interface Slot {
  /** Resolves when the holder may go ahead. */
  readonly ready: Promise<void>;
  /** 1-based place in line, 0 once admitted. */
  position(): number;
  /** Give the slot back (or leave the line). Idempotent. */
  release(): void;
}

/** Bounded concurrency with a visible line: launches beyond `limit` wait their turn. */
export class LaunchQueue {
  readonly limit: number;
  #running = 0;
  #waiting: Array<{ admit: () => void; onMove: () => void }> = [];

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`queue limit must be a positive integer, got ${limit}`);
    this.limit = limit;
  }

  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  /** Join the line. `onMove` is called whenever the position changes. */
  enter(onMove: (position: number) => void = () => {}): Slot {
    let admitted = false;
    let released = false;
    let resolve!: () => void;
    const ready = new Promise<void>((r) => (resolve = r));
    const entry = {
      admit: () => {
        admitted = true;
        this.#running++;
        resolve();
      },
      onMove: () => onMove(slot.position()),
    };
    const slot: Slot = {
      ready,
      position: () => (admitted ? 0 : this.#waiting.indexOf(entry) + 1),
      release: () => {
        if (released) return;
        released = true;
        if (admitted) {
          this.#running--;
          this.#pump();
        } else {
          this.#waiting.splice(this.#waiting.indexOf(entry), 1);
          resolve();
          this.#pump();
          this.#notify();
        }
      },
    };
    if (this.#running < this.limit && this.#waiting.length === 0) entry.admit();
    else this.#waiting.push(entry);
    return slot;
  }

  #pump(): void {
    let moved = false;
    while (this.#running < this.limit && this.#waiting.length > 0) {
      this.#waiting.shift()!.admit();
      moved = true;
    }
    if (moved) this.#notify();
  }

  #notify(): void {
    for (const w of this.#waiting) w.onMove();
  }
}

/**
 * The live GetLayer producers of one composefs service: a cap on how many run at once (each
 * holds a few fds until its consumer closes the keepalive, spec §4.3.4 and §5), and a way to
 * stop them all when the service is disposed, so its fds are closed by the time dispose
 * returns rather than whenever each keepalive wait next gets an event-loop turn.
 *
 * @module
 */

/**
 * Live producers, bounded, each with a synchronous release.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ProducerPool } from "./producer_pool.ts";
 *
 * using pool = new ProducerPool(1);
 * const end = pool.add(() => {});
 * assert.equal(pool.hasRoom, false);
 * end(); // the producer finished: its slot is free again
 * assert.equal(pool.hasRoom, true);
 * ```
 */
export class ProducerPool implements Disposable {
  /** Most producers alive at once. */
  readonly max: number;
  readonly #release = new Set<() => void>();

  /** A pool admitting at most `max` live producers. */
  constructor(max: number) {
    if (!(max >= 1)) throw new RangeError(`Invalid producer limit ${max}`);
    this.max = max;
  }

  /** Producers alive now. */
  get live(): number {
    return this.#release.size;
  }

  /** True when another producer may start. */
  get hasRoom(): boolean {
    return this.#release.size < this.max;
  }

  /**
   * Register a live producer and its `release` (close its fds, stop waiting; must be
   * idempotent). Returns the function the producer calls when it ends by itself: it runs
   * `release` once and frees the slot.
   */
  add(release: () => void): () => void {
    let done = false;
    const end = () => {
      if (done) return;
      done = true;
      this.#release.delete(end);
      release();
    };
    this.#release.add(end);
    return end;
  }

  /** Release every live producer now. */
  [Symbol.dispose](): void {
    for (const end of [...this.#release]) end();
  }
}

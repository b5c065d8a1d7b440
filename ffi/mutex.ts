/**
 * An async mutex: serialises sections that await in the middle (two `sendMessage` calls on
 * one socket must not interleave their bytes; two varlink calls on one connection must not
 * interleave their replies). Not FFI, but the lowest layer that needs it.
 *
 * @module
 */

/** First come, first served; `lock()` resolves to the release function. */
export class Mutex {
  #tail: Promise<void> = Promise.resolve();

  /**
   * Wait for every earlier holder to release, then hold the lock until the returned function
   * is called.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Mutex } from "./mutex.ts";
   *
   * const m = new Mutex();
   * const order: string[] = [];
   * const a = (async () => {
   *   const release = await m.lock();
   *   await new Promise((r) => setTimeout(r, 5));
   *   order.push("a");
   *   release();
   * })();
   * const b = (async () => {
   *   const release = await m.lock();
   *   order.push("b");
   *   release();
   * })();
   * await Promise.all([a, b]);
   * assert.deepEqual(order, ["a", "b"]);
   * ```
   */
  async lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => (release = r));
    const prev = this.#tail;
    this.#tail = next;
    await prev;
    return release;
  }
}

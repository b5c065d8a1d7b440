import assert from "node:assert/strict";
import { ProducerPool } from "./producer_pool.ts";

Deno.test("ProducerPool: caps live producers, ends each once, dispose releases the rest", () => {
  const pool = new ProducerPool(2);
  const released: string[] = [];
  const endA = pool.add(() => released.push("a"));
  assert.equal(pool.hasRoom, true);
  pool.add(() => released.push("b"));
  assert.equal(pool.live, 2);
  assert.equal(pool.hasRoom, false);
  endA();
  endA(); // a producer ending twice (its own finally after a dispose) releases once
  assert.deepEqual(released, ["a"]);
  assert.equal(pool.hasRoom, true);
  pool.add(() => released.push("c"));
  pool[Symbol.dispose]();
  assert.deepEqual(released, ["a", "b", "c"]);
  assert.equal(pool.live, 0);
  assert.throws(() => new ProducerPool(0), RangeError);
});

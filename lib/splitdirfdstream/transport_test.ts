import assert from "node:assert/strict";
import {
  buildLayerFdLayout,
  computeNFrames,
  nExtraLifetimeFds,
  nFramesFor,
  seedFromId,
  sparseDirSlots,
  splitFdsIntoFrames,
  splitIntoFrames,
  splitLayerFds,
} from "./transport.ts";
import { MAX_FDS_PER_FRAME } from "./constants.ts";
import { FdLimitExceededError, InvalidFdLayoutError } from "./errors.ts";

Deno.test("reference vector child-layer-001 (varlink-api §4.3.2)", () => {
  const seed = seedFromId("child-layer-001");
  assert.equal(seed, 9551015030439334514n);
  const layout = sparseDirSlots(2, seed);
  assert.equal(layout.totalSlots, 5);
  assert.equal(nExtraLifetimeFds(seed), 2);
  assert.equal(computeNFrames(seed, 9), 4);
  const fds = Array.from({ length: 9 }, (_, i) => i);
  const frames = splitFdsIntoFrames(fds, seed, true);
  assert.deepEqual(frames.map((f) => f.length), [3, 2, 2, 2]);
  assert.deepEqual(frames.flat(), fds);
});

Deno.test("splitIntoFrames: contiguous, non-empty, first batches larger", () => {
  assert.deepEqual(splitIntoFrames([1, 2, 3, 4, 5], 3), [[1, 2], [3, 4], [5]]);
  assert.deepEqual(splitIntoFrames([1], 1), [[1]]);
  assert.throws(() => splitIntoFrames([1, 2], 3), RangeError);
  assert.throws(() => splitIntoFrames([1, 2], 0), RangeError);
});

Deno.test("frame counts: never more than 240 fds per frame, never an empty frame", () => {
  for (const n of [1, 2, 3, 4, 7, 239, 240, 241, 480, 481, 1000, 5000]) {
    for (const seed of [0n, 1n, 12345678901234567n, 2n ** 64n - 1n]) {
      const k = computeNFrames(seed, n);
      assert.ok(k >= 1 && k <= n, `n=${n} k=${k}`);
      assert.ok(Math.ceil(n / k) <= MAX_FDS_PER_FRAME, `n=${n} k=${k}`);
      const frames = splitFdsIntoFrames(Array.from({ length: n }, (_, i) => i), seed, true);
      assert.equal(frames.length, k);
      assert.ok(frames.every((f) => f.length >= 1 && f.length <= MAX_FDS_PER_FRAME));
    }
  }
  assert.equal(nFramesFor(5n, 2), 2);
  assert.equal(nFramesFor(5n, 0), 1);
  assert.equal(nFramesFor(0n, 10), 3);
});

Deno.test("more:false: one frame up to 240 fds, FdLimitExceeded above", () => {
  const ok = Array.from({ length: 240 }, (_, i) => i);
  assert.deepEqual(splitFdsIntoFrames(ok, 7n, false), [ok]);
  assert.throws(
    () => splitFdsIntoFrames([...ok, 240], 7n, false),
    (e) => e instanceof FdLimitExceededError && e.fdCount === 241 && e.maxPerFrame === 240,
  );
  assert.throws(() => splitFdsIntoFrames([], 7n, true), RangeError);
});

Deno.test("buildLayerFdLayout: shape [pipe, dirfds, keepalive, extras] for many seeds", () => {
  for (let i = 0; i < 200; i++) {
    const seed = seedFromId(`oci-layer-sha256:${i}`);
    for (const nReal of [1, 2, 5]) {
      const real = Array.from({ length: nReal }, (_, j) => `real${j}`);
      const l = buildLayerFdLayout({
        pipeRead: "pipe",
        realDirs: real,
        keepaliveWrite: "keepalive",
        seed,
        makeDummy: (o) => `dummy${o}`,
      });
      assert.ok(l.dirCount > nReal && l.dirCount <= 2 * nReal + 1);
      assert.equal(l.fds[0], "pipe");
      assert.equal(l.fds[1 + l.dirCount], "keepalive");
      const extras = l.fds.length - (l.dirCount + 2);
      assert.equal(extras, nExtraLifetimeFds(seed));
      assert.deepEqual(l.realIndices.map((s) => l.fds[1 + s]), real);
      assert.deepEqual([...l.realIndices].sort((a, b) => a - b), l.realIndices);
      const region = l.fds.slice(1, 1 + l.dirCount);
      assert.equal(region.filter((x) => x.startsWith("dummy")).length, l.dirCount - nReal);
      const back = splitLayerFds(l.fds, l.dirCount);
      assert.equal(back.pipe, "pipe");
      assert.deepEqual(back.dirfds, region);
      assert.equal(back.lifetime[0], "keepalive");
    }
  }
  // Repository service: one real directory → dir_count ∈ {2, 3}.
  const counts = new Set<number>();
  for (let i = 0; i < 100; i++) counts.add(sparseDirSlots(1, BigInt(i) << 8n).totalSlots);
  assert.deepEqual([...counts].sort(), [2, 3]);
});

Deno.test("splitLayerFds refuses too few fds", () => {
  assert.throws(() => splitLayerFds([1, 2, 3], 2), InvalidFdLayoutError);
  assert.throws(() => splitLayerFds([1, 2, 3], -1), InvalidFdLayoutError);
  assert.deepEqual(splitLayerFds([1, 2, 3, 4], 2), { pipe: 1, dirfds: [2, 3], lifetime: [4] });
});

/**
 * fd-transport arithmetic for GetLayer: the logical fd array
 * `[pipe, dirfds × dir_count, keepalive, extra lifetime…]` and its split into frames of at
 * most `MAX_FDS_PER_FRAME`. Pure functions over generic arrays: callers pass `OwnedFd`s (or
 * anything else in tests) and keep ownership.
 *
 * @module
 */

import { sha256 } from "../../ffi/libcrypto.ts";
import { MAX_FDS_PER_FRAME } from "./constants.ts";
import { FdLimitExceededError, InvalidFdLayoutError } from "./errors.ts";

const U64_MASK = (1n << 64n) - 1n;

/**
 * The layout seed of a layer id: the first 8 bytes of SHA-256(`id`) as a little-endian u64
 * (composefs-rs `seed_from_id`). The repository service uses `"oci-layer-" + diff_id`.
 *
 * @example
 * ```ts
 * import { seedFromId } from "./transport.ts";
 * import assert from "node:assert/strict";
 * assert.equal(seedFromId("child-layer-001"), 9551015030439334514n);
 * ```
 */
export function seedFromId(id: string): bigint {
  const h = sha256(new TextEncoder().encode(id));
  return new DataView(h.buffer, h.byteOffset, 8).getBigUint64(0, true);
}

/**
 * Cut `items` into `nFrames` contiguous, non-empty batches; the first `items.length %
 * nFrames` batches get one extra item. Concatenating the batches gives `items` back.
 *
 * @throws {RangeError} unless `1 ≤ nFrames ≤ items.length`.
 */
export function splitIntoFrames<T>(items: readonly T[], nFrames: number): T[][] {
  if (!Number.isInteger(nFrames) || nFrames < 1 || nFrames > items.length) {
    throw new RangeError(`Cannot split ${items.length} item(s) into ${nFrames} frame(s)`);
  }
  const base = Math.floor(items.length / nFrames);
  const rem = items.length % nFrames;
  const out: T[][] = [];
  let off = 0;
  for (let i = 0; i < nFrames; i++) {
    const size = base + (i < rem ? 1 : 0);
    out.push(items.slice(off, off + size));
    off += size;
  }
  return out;
}

/**
 * The seed-derived frame count (composefs-rs `n_frames_for`): `max(fdCount, 1)` below 3 fds,
 * else `min(max(3, seed mod (fdCount + 1)), fdCount)`, so real layers use ≥ 3 frames and
 * clients' multi-frame paths get exercised.
 */
export function nFramesFor(seed: bigint, fdCount: number): number {
  if (fdCount < 3) return Math.max(fdCount, 1);
  const raw = Number(BigInt.asUintN(64, seed) % BigInt(fdCount + 1));
  return Math.min(Math.max(3, raw), fdCount);
}

/**
 * Frames for a `more: true` reply (composefs-rs `compute_n_frames`): the seed-derived count,
 * raised to `ceil(fdCount / MAX_FDS_PER_FRAME)`, clamped to `[1, fdCount]`.
 */
export function computeNFrames(seed: bigint, fdCount: number): number {
  const hashMin = nFramesFor(seed, fdCount);
  const capMin = Math.ceil(fdCount / MAX_FDS_PER_FRAME);
  return Math.max(Math.min(Math.max(hashMin, capMin), fdCount), 1);
}

/**
 * Split a GetLayer fd array into reply frames. `more: true` → {@link computeNFrames} frames;
 * `more: false` → exactly one frame.
 *
 * @throws {FdLimitExceededError} `more: false` and more than `MAX_FDS_PER_FRAME` fds.
 * @throws {RangeError} `fds` is empty (a GetLayer reply always carries fds).
 *
 * @example
 * ```ts
 * import { seedFromId, splitFdsIntoFrames } from "./transport.ts";
 * import assert from "node:assert/strict";
 * const fds = [0, 1, 2, 3, 4, 5, 6, 7, 8];
 * const frames = splitFdsIntoFrames(fds, seedFromId("child-layer-001"), true);
 * assert.equal(frames.length, 4);
 * assert.deepEqual(frames.flat(), fds);
 * ```
 */
export function splitFdsIntoFrames<T>(fds: readonly T[], seed: bigint, more: boolean): T[][] {
  if (fds.length === 0) throw new RangeError("A GetLayer reply carries at least one fd");
  if (!more) {
    if (fds.length > MAX_FDS_PER_FRAME) {
      throw new FdLimitExceededError(fds.length, MAX_FDS_PER_FRAME);
    }
    return [fds.slice()];
  }
  return splitIntoFrames(fds, computeNFrames(seed, fds.length));
}

/** Extra lifetime fds after the keepalive: `(seed >> 16) mod 3` (composefs-rs). */
export function nExtraLifetimeFds(seed: bigint): number {
  return Number((BigInt.asUintN(64, seed) >> 16n) % 3n);
}

/** Where real directories and dummies sit in the dirfds region. */
export interface SparseLayout {
  /** `dir_count`: real + dummy slots. */
  totalSlots: number;
  /** Slot of chain layer i (ascending). */
  realSlotIndices: number[];
  /** The other slots (ascending). */
  dummySlotIndices: number[];
}

/** SplitMix64 step: a small, well-mixed deterministic generator for the slot shuffle. */
function splitmix64(state: { s: bigint }): bigint {
  state.s = (state.s + 0x9e3779b97f4a7c15n) & U64_MASK;
  let z = state.s;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & U64_MASK;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & U64_MASK;
  return z ^ (z >> 31n);
}

/**
 * Sparse slot placement for `nReal` real directories: `n_dummy = ((seed >> 8) mod (nReal +
 * 1)) + 1` dummies (as composefs-rs, so `dir_count` matches), real slots chosen by a
 * seeded Fisher–Yates shuffle. composefs-rs shuffles with Pcg64 instead, so real slot
 * positions may differ from its; that is allowed — consumers never recompute the layout,
 * every FileBackedData chunk names its slot (varlink-api §4.3.2).
 */
export function sparseDirSlots(nReal: number, seed: bigint): SparseLayout {
  const s = BigInt.asUintN(64, seed);
  const nDummy = Number((s >> 8n) % BigInt(nReal + 1)) + 1;
  const total = nReal + nDummy;
  const slots = Array.from({ length: total }, (_, i) => i);
  const state = { s };
  for (let i = total - 1; i > 0; i--) {
    const j = Number(splitmix64(state) % BigInt(i + 1));
    [slots[i], slots[j]] = [slots[j], slots[i]];
  }
  const real = slots.slice(0, nReal).sort((a, b) => a - b);
  const realSet = new Set(real);
  const dummy = Array.from({ length: total }, (_, i) => i).filter((i) => !realSet.has(i));
  return { totalSlots: total, realSlotIndices: real, dummySlotIndices: dummy };
}

/** Inputs of {@link buildLayerFdLayout}. */
export interface LayerFdLayoutInput<T> {
  /** Read end of the data pipe (index 0). */
  pipeRead: T;
  /** One real directory per chain layer, in chain order. */
  realDirs: readonly T[];
  /** Write end of the keepalive pipe (first lifetime fd). */
  keepaliveWrite: T;
  /** Layout seed ({@link seedFromId}). */
  seed: bigint;
  /**
   * Make the dummy for the `ordinal`-th dummy slot (composefs-rs: `/dev/null` for even
   * ordinals, a memfd for odd ones). Also used for the extra lifetime fds.
   */
  makeDummy: (ordinal: number) => T;
}

/** The assembled GetLayer fd array. */
export interface LayerFdLayout<T> {
  /** `[pipeRead, dirfds × dirCount, keepaliveWrite, extra…]`. */
  fds: T[];
  /** Size of the dirfds region (the reply's `dir_count`). */
  dirCount: number;
  /** `dirfd_index` to write in FileBackedData chunks for chain layer i. */
  realIndices: number[];
}

/**
 * Assemble the GetLayer logical fd array (varlink-api §4.3.1): index 0 the data pipe, then
 * `dir_count` dirfd slots (real directories at sparse slots, dummies elsewhere), then the
 * keepalive write end and `(seed >> 16) mod 3` extra lifetime fds.
 *
 * @example
 * ```ts
 * import { buildLayerFdLayout } from "./transport.ts";
 * import assert from "node:assert/strict";
 * const l = buildLayerFdLayout({
 *   pipeRead: "pipe", realDirs: ["objects"], keepaliveWrite: "keepalive", seed: 0n,
 *   makeDummy: (i) => `dummy${i}`,
 * });
 * assert.equal(l.dirCount, 2);
 * assert.equal(l.fds[0], "pipe");
 * assert.equal(l.fds[1 + l.realIndices[0]], "objects");
 * assert.equal(l.fds[1 + l.dirCount], "keepalive");
 * ```
 */
export function buildLayerFdLayout<T>(input: LayerFdLayoutInput<T>): LayerFdLayout<T> {
  const layout = sparseDirSlots(input.realDirs.length, input.seed);
  const region = new Array<T>(layout.totalSlots);
  layout.realSlotIndices.forEach((slot, i) => region[slot] = input.realDirs[i]);
  layout.dummySlotIndices.forEach((slot, ordinal) => region[slot] = input.makeDummy(ordinal));
  const extra = Array.from({ length: nExtraLifetimeFds(input.seed) }, (_, i) => input.makeDummy(i));
  return {
    fds: [input.pipeRead, ...region, input.keepaliveWrite, ...extra],
    dirCount: layout.totalSlots,
    realIndices: layout.realSlotIndices,
  };
}

/** A received GetLayer fd array, split into its regions. */
export interface ReceivedLayerFds<T> {
  /** Read end of the data pipe. */
  pipe: T;
  /** The whole dirfds region; pass it unchanged to `reconstruct` (dummies are never opened). */
  dirfds: T[];
  /** Keepalive and extra lifetime fds: hold until done, then close; never write to them. */
  lifetime: T[];
}

/**
 * Split the concatenated fds of all GetLayer frames by the reply's `dir_count`
 * (consumer side, varlink-api §4.3.5).
 *
 * @throws {InvalidFdLayoutError} fewer than `dirCount + 2` fds (pipe, region, keepalive).
 *
 * @example
 * ```ts
 * import { splitLayerFds } from "./transport.ts";
 * import assert from "node:assert/strict";
 * const { pipe, dirfds, lifetime } = splitLayerFds(["p", "d0", "d1", "k", "x"], 2);
 * assert.equal(pipe, "p");
 * assert.deepEqual(dirfds, ["d0", "d1"]);
 * assert.deepEqual(lifetime, ["k", "x"]);
 * ```
 */
export function splitLayerFds<T>(fds: readonly T[], dirCount: number): ReceivedLayerFds<T> {
  if (!Number.isInteger(dirCount) || dirCount < 0 || fds.length < dirCount + 2) {
    throw new InvalidFdLayoutError(fds.length, dirCount);
  }
  return {
    pipe: fds[0],
    dirfds: fds.slice(1, 1 + dirCount),
    lifetime: fds.slice(1 + dirCount),
  };
}

/**
 * Streaming fs-verity digest (repository-format §2): a Merkle tree of 4 KiB blocks hashed with
 * SHA-256 or SHA-512 (no salt), then the hash of the 256-byte descriptor.
 *
 * Memory is bounded: the hasher keeps one pending data block plus one 4 KiB block of pending
 * hashes per tree level (≤ 4 levels for any real file), never the data itself.
 *
 * @module
 */

import { shaBlocksInto, shaInto } from "../../ffi/libcrypto.ts";
import { BLOCK_SIZE, digestSize, type HashAlgorithm } from "./algorithm.ts";
import { fsverityDescriptor } from "./descriptor.ts";

/** One tree level: hashes not yet packed into a block of the level above. */
interface Level {
  /** 4096 bytes of pending hashes (zero-padded only when finalizing). */
  buf: Uint8Array;
  /** Bytes used in `buf`. */
  len: number;
  /** Hashes ever produced at this level. */
  count: number;
}

/**
 * Incremental fs-verity digest; `update()` accepts any chunking and gives the same result.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FsVerityHasher } from "./hasher.ts";
 *
 * const h = new FsVerityHasher("sha256");
 * h.update(new TextEncoder().encode("hello "));
 * h.update(new TextEncoder().encode("world"));
 * assert.equal(h.size, 11);
 * const hex = h.digest().toHex();
 * assert.equal(hex, "1e2eaa4202d750a41174ee454970b92c1bc2f925b1e35076d8c7d5f56362ba64");
 * ```
 */
export class FsVerityHasher {
  /** The hash algorithm. */
  readonly algorithm: HashAlgorithm;
  readonly #ds: number;
  #size = 0;
  #block = new Uint8Array(BLOCK_SIZE);
  #blockLen = 0;
  #levels: Level[] = [];
  #done = false;

  /** Start a digest with `alg` (4096-byte blocks, no salt). */
  constructor(alg: HashAlgorithm) {
    this.algorithm = alg;
    this.#ds = digestSize(alg);
  }

  /** Number of data bytes hashed so far (the descriptor's `data_size`). */
  get size(): number {
    return this.#size;
  }

  /** Digest length in bytes (32 or 64). */
  get digestSize(): number {
    return this.#ds;
  }

  /** Feed the next bytes of the file. */
  update(data: Uint8Array): void {
    if (this.#done) throw new TypeError("FsVerityHasher is already finalized");
    const len = data.length;
    this.#size += len;
    let off = 0;
    if (this.#blockLen > 0) {
      const take = Math.min(BLOCK_SIZE - this.#blockLen, len);
      this.#block.set(data.subarray(0, take), this.#blockLen);
      this.#blockLen += take;
      off = take;
      if (this.#blockLen < BLOCK_SIZE) return;
      this.#hashDataBlocks(this.#block);
      this.#blockLen = 0;
    }
    // Fast path: whole blocks straight from the caller's buffer into level 0.
    while (len - off >= BLOCK_SIZE) {
      const l0 = this.#level(0);
      const n = Math.min((BLOCK_SIZE - l0.len) / this.#ds, Math.floor((len - off) / BLOCK_SIZE));
      this.#hashDataBlocks(data.subarray(off, off + n * BLOCK_SIZE));
      off += n * BLOCK_SIZE;
    }
    if (off < len) {
      this.#block.set(data.subarray(off), 0);
      this.#blockLen = len - off;
    }
  }

  /** The Merkle tree root hash (all zeros for empty input); finalizes the hasher. */
  rootHash(): Uint8Array {
    if (this.#done) throw new TypeError("FsVerityHasher is already finalized");
    this.#done = true;
    const ds = this.#ds;
    if (this.#size === 0) return new Uint8Array(ds);
    if (this.#blockLen > 0) {
      this.#block.fill(0, this.#blockLen);
      this.#hashDataBlocks(this.#block);
      this.#blockLen = 0;
    }
    for (let i = 0;; i++) {
      const level = this.#levels[i];
      if (i === this.#levels.length - 1 && level.count === 1) return level.buf.slice(0, ds);
      if (level.len > 0) {
        level.buf.fill(0, level.len);
        this.#pushBlockHash(i + 1, level.buf);
        level.len = 0;
      }
    }
  }

  /** Finish and return the fs-verity digest (32 or 64 bytes); finalizes the hasher. */
  digest(): Uint8Array {
    const size = this.#size;
    const root = this.rootHash();
    const out = new Uint8Array(this.#ds);
    shaInto(this.algorithm, fsverityDescriptor(this.algorithm, size, root), out);
    return out;
  }

  #level(i: number): Level {
    let level = this.#levels[i];
    if (level === undefined) {
      level = { buf: new Uint8Array(BLOCK_SIZE), len: 0, count: 0 };
      this.#levels[i] = level;
    }
    return level;
  }

  /** Hash whole data blocks (that fit in level 0's free space) into level 0. */
  #hashDataBlocks(blocks: Uint8Array): void {
    const l0 = this.#level(0);
    const n = blocks.length / BLOCK_SIZE;
    shaBlocksInto(this.algorithm, blocks, BLOCK_SIZE, l0.buf.subarray(l0.len));
    l0.len += n * this.#ds;
    l0.count += n;
    if (l0.len === BLOCK_SIZE) this.#carry(0);
  }

  /** Hash one 4096-byte block of level `i - 1` hashes into level `i`. */
  #pushBlockHash(i: number, block: Uint8Array): void {
    const level = this.#level(i);
    shaInto(this.algorithm, block, level.buf.subarray(level.len, level.len + this.#ds));
    level.len += this.#ds;
    level.count++;
    if (level.len === BLOCK_SIZE) this.#carry(i);
  }

  /** Level `i` has a full block of hashes: move it up. */
  #carry(i: number): void {
    const level = this.#levels[i];
    this.#pushBlockHash(i + 1, level.buf);
    level.len = 0;
  }
}

/**
 * fs-verity digest of a whole buffer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fsverityDigest } from "./hasher.ts";
 *
 * const d = fsverityDigest(new Uint8Array(0), "sha256");
 * assert.equal(d[0], 0x3d);
 * assert.equal(fsverityDigest(new Uint8Array(1), "sha512").length, 64);
 * ```
 */
export function fsverityDigest(data: Uint8Array, alg: HashAlgorithm): Uint8Array {
  const h = new FsVerityHasher(alg);
  h.update(data);
  return h.digest();
}

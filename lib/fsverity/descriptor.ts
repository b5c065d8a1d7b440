/**
 * The 256-byte `struct fsverity_descriptor` whose hash is the file digest (repository-format
 * §2.2, linux/fsverity.h).
 *
 * @module
 */

import { digestSize, type HashAlgorithm, kernelHashId, LG_BLOCK_SIZE } from "./algorithm.ts";

/** Size of `struct fsverity_descriptor`. */
export const DESCRIPTOR_SIZE = 256;

/** Offset of the root hash field (64 bytes, zero-padded). */
const ROOT_HASH_OFFSET = 16;

/**
 * Encode the descriptor: version 1, hash id, log_blocksize 12, no salt, `size` as u64 LE and
 * the root hash zero-padded to 64 bytes; everything else zero.
 */
export function fsverityDescriptor(
  alg: HashAlgorithm,
  size: number,
  rootHash: Uint8Array,
): Uint8Array {
  if (rootHash.length !== digestSize(alg)) {
    throw new RangeError(`Root hash has ${rootHash.length} bytes, ${alg} needs ${digestSize(alg)}`);
  }
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`Invalid data size ${size}`);
  const d = new Uint8Array(DESCRIPTOR_SIZE);
  d[0] = 1; // version
  d[1] = kernelHashId(alg);
  d[2] = LG_BLOCK_SIZE;
  // d[3] salt_size = 0, d[4..8) reserved (sig_size) = 0
  new DataView(d.buffer).setBigUint64(8, BigInt(size), true);
  d.set(rootHash, ROOT_HASH_OFFSET);
  return d;
}

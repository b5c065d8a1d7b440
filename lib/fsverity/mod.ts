/**
 * fs-verity digests in userspace (sha256 / sha512, 4 KiB blocks, no salt), identical to the
 * kernel's `FS_IOC_MEASURE_VERITY` and `fsverity digest --block-size=4096`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FsVerityHasher, fsverityDigest } from "./mod.ts";
 *
 * const data = new TextEncoder().encode("hello world");
 * const h = new FsVerityHasher("sha512");
 * h.update(data.subarray(0, 3));
 * h.update(data.subarray(3));
 * assert.deepEqual(h.digest(), fsverityDigest(data, "sha512"));
 * ```
 *
 * @module
 */

export {
  algorithmFromKernelId,
  BLOCK_SIZE,
  digestSize,
  formatAlgorithmName,
  HASH_ALGORITHMS,
  type HashAlgorithm,
  InvalidAlgorithmError,
  kernelHashId,
  LG_BLOCK_SIZE,
  parseAlgorithmName,
} from "./algorithm.ts";
export { DESCRIPTOR_SIZE, fsverityDescriptor } from "./descriptor.ts";
export { fsverityDigest, FsVerityHasher } from "./hasher.ts";
export { fsverityDigestFd } from "./digest_fd.ts";

/**
 * fs-verity digest of an open file, computed in userspace (no kernel support needed).
 *
 * @module
 */

import { pread } from "../../ffi/fs.ts";
import type { BorrowedFd } from "../../ffi/owned_fd.ts";
import type { HashAlgorithm } from "./algorithm.ts";
import { FsVerityHasher } from "./hasher.ts";

/** Read size: 1 MiB keeps the FFI per-call cost negligible and fits in L2-ish caches. */
const READ_SIZE = 1 << 20;

/** One reused read buffer (the hashing is synchronous, so calls never overlap). */
let readBuf: Uint8Array<ArrayBuffer> | undefined;

/**
 * fs-verity digest of the whole content of `fd` (read with `pread` from offset 0, so the file
 * position is untouched), like `fsverity digest --block-size=4096`. `tap` sees every chunk
 * read, in order, so a caller can compute another hash in the same single pass (the chunk is
 * only valid during the call).
 */
export function fsverityDigestFd(
  fd: BorrowedFd,
  alg: HashAlgorithm,
  tap?: (chunk: Uint8Array) => void,
): Uint8Array {
  readBuf ??= new Uint8Array(READ_SIZE);
  const buf = readBuf;
  const h = new FsVerityHasher(alg);
  let off = 0;
  for (;;) {
    const n = pread(fd, buf, off);
    if (n === 0) break;
    const chunk = n === buf.length ? buf : buf.subarray(0, n);
    h.update(chunk);
    tap?.(chunk);
    off += n;
  }
  return h.digest();
}

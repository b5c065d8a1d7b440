/**
 * fs-verity kernel interface: FS_IOC_ENABLE_VERITY and FS_IOC_MEASURE_VERITY
 * (linux/fsverity.h; repository-format §1.7).
 *
 * Filesystems without fs-verity (tmpfs, overlayfs, ext4 without the feature, or a kernel
 * built without it) answer ENOTTY or EOPNOTSUPP; those are reported as `"unsupported"`
 * outcomes, not thrown, because insecure repositories run on them by design.
 *
 * @module
 */

import { errno, libc } from "./libc.ts";
import { ERRNO, ErrnoError } from "./errno.ts";
import type { BorrowedFd } from "./owned_fd.ts";

/** sizeof(struct fsverity_enable_arg): 4×u32, u64 salt_ptr, 2×u32, u64 sig_ptr, 11×u64. */
export const FSVERITY_ENABLE_ARG_SIZE = 128;
/** sizeof(struct fsverity_digest) without the flexible digest array: u16 alg, u16 size. */
export const FSVERITY_DIGEST_HEADER_SIZE = 4;
/** The largest digest the kernel returns (SHA-512). */
const FS_VERITY_MAX_DIGEST_SIZE = 64;

/** _IOW('f', 133, struct fsverity_enable_arg) = dir 1 << 30 | size 128 << 16 | 'f' << 8 | 133. */
export const FS_IOC_ENABLE_VERITY = 0x40806685n;
/** _IOWR('f', 134, struct fsverity_digest) = dir 3 << 30 | size 4 << 16 | 'f' << 8 | 134. */
export const FS_IOC_MEASURE_VERITY = 0xc0046686n;

/** fs-verity Merkle block size used by composefs. */
const VERITY_BLOCK_SIZE = 4096;

/** Encode `struct fsverity_enable_arg` {version 1, alg, block 4096, no salt, no signature}. */
export function encodeEnableArg(hashAlgorithm: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(FSVERITY_ENABLE_ARG_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, 1, true); // version
  dv.setUint32(4, hashAlgorithm, true);
  dv.setUint32(8, VERITY_BLOCK_SIZE, true);
  // salt_size @12, salt_ptr @16, sig_size @24, reserved @28, sig_ptr @32, reserved @40..128: 0
  return b;
}

/** Outcome of {@link enableVerity}. */
export type EnableVerityOutcome = "enabled" | "already-enabled" | "unsupported" | "busy";

/**
 * FS_IOC_ENABLE_VERITY on `fd` (which must be opened read-only, with no writable fd open on the
 * inode). ENOTTY/EOPNOTSUPP → `"unsupported"`, EEXIST → `"already-enabled"`, ETXTBSY →
 * `"busy"` (a writable fd is still open); anything else throws {@link ErrnoError}.
 */
export function enableVerity(fd: BorrowedFd, hashAlgorithm: 1 | 2): EnableVerityOutcome {
  const rc = libc().ioctl_ptr(fd.fd, FS_IOC_ENABLE_VERITY, encodeEnableArg(hashAlgorithm));
  if (rc >= 0) return "enabled";
  const e = errno();
  if (e === ERRNO.ENOTTY || e === ERRNO.EOPNOTSUPP) return "unsupported";
  if (e === ERRNO.EEXIST) return "already-enabled";
  if (e === ERRNO.ETXTBSY) return "busy";
  throw new ErrnoError("ioctl(FS_IOC_ENABLE_VERITY)", e);
}

/** Outcome of {@link measureVerity}. */
export type MeasureVerityOutcome =
  | { kind: "measured"; digest: Uint8Array }
  | { kind: "missing" }
  | { kind: "unsupported" };

/** The kernel measured a digest of another algorithm or size than asked for. */
export class VerityAlgorithmMismatchError extends Error {
  override name = "VerityAlgorithmMismatchError";
  /** The kernel's hash algorithm id. */
  readonly actualAlgorithm: number;
  /** The kernel's digest size. */
  readonly actualSize: number;
  constructor(expected: number, actualAlgorithm: number, actualSize: number) {
    super(
      `fs-verity digest uses algorithm ${actualAlgorithm} (${actualSize} bytes), expected algorithm ${expected}`,
    );
    this.actualAlgorithm = actualAlgorithm;
    this.actualSize = actualSize;
  }
}

/**
 * FS_IOC_MEASURE_VERITY: the file's fs-verity digest. ENODATA → `"missing"` (verity not
 * enabled), ENOTTY/EOPNOTSUPP → `"unsupported"`; an algorithm other than `hashAlgorithm`
 * throws {@link VerityAlgorithmMismatchError}; other errors throw {@link ErrnoError}.
 */
export function measureVerity(fd: BorrowedFd, hashAlgorithm: 1 | 2): MeasureVerityOutcome {
  const buf = new Uint8Array(FSVERITY_DIGEST_HEADER_SIZE + FS_VERITY_MAX_DIGEST_SIZE);
  const dv = new DataView(buf.buffer);
  dv.setUint16(2, FS_VERITY_MAX_DIGEST_SIZE, true); // in: capacity of digest[]
  const rc = libc().ioctl_ptr(fd.fd, FS_IOC_MEASURE_VERITY, buf);
  if (rc < 0) {
    const e = errno();
    if (e === ERRNO.ENODATA) return { kind: "missing" };
    if (e === ERRNO.ENOTTY || e === ERRNO.EOPNOTSUPP) return { kind: "unsupported" };
    throw new ErrnoError("ioctl(FS_IOC_MEASURE_VERITY)", e);
  }
  const alg = dv.getUint16(0, true);
  const size = dv.getUint16(2, true);
  const want = hashAlgorithm === 1 ? 32 : 64;
  if (alg !== hashAlgorithm || size !== want) {
    throw new VerityAlgorithmMismatchError(hashAlgorithm, alg, size);
  }
  return {
    kind: "measured",
    digest: buf.slice(FSVERITY_DIGEST_HEADER_SIZE, FSVERITY_DIGEST_HEADER_SIZE + size),
  };
}

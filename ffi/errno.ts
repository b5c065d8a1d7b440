/**
 * errno → typed error.
 *
 * @module
 */

import { errno } from "./libc.ts";

/** Linux x86_64 errno numbers by name (asm-generic/errno-base.h, errno.h). */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  ETXTBSY: 26,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  EPIPE: 32,
  ERANGE: 34,
  EDEADLK: 35,
  ENAMETOOLONG: 36,
  ENOLCK: 37,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENODATA: 61,
  EOVERFLOW: 75,
  EBADMSG: 74,
  ENOTSOCK: 88,
  EMSGSIZE: 90,
  EPROTOTYPE: 91,
  ENOPROTOOPT: 92,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  ECONNRESET: 104,
  ENOBUFS: 105,
  EISCONN: 106,
  ENOTCONN: 107,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  EALREADY: 114,
  EINPROGRESS: 115,
  ESTALE: 116,
  EDQUOT: 122,
  ENOKEY: 126,
  EKEYREJECTED: 129,
} as const;

/** An errno name known to this table. */
export type ErrnoName = keyof typeof ERRNO;

const NAMES: Map<number, string> = new Map(
  Object.entries(ERRNO).map(([k, v]) => [v, k]),
);

/** The symbolic name of an errno value (`ENOENT`), or `E<number>` when unknown. */
export function errnoName(code: number): string {
  return NAMES.get(code) ?? `E${code}`;
}

/**
 * A failed system call: which call, on what, and the errno (number and name).
 *
 * @example Matching an errno by name
 * ```ts
 * import assert from "node:assert/strict";
 * import { ErrnoError } from "@cfs-deno/cfs";
 *
 * const e = new ErrnoError("openat2", 2, "objects/ab/cd");
 * assert.equal(e.code, "ENOENT");
 * assert.ok(e.is("ENOENT"));
 * assert.match(e.message, /openat2 "objects\/ab\/cd" failed: ENOENT/);
 * ```
 */
export class ErrnoError extends Error {
  /** Always `ErrnoError`. */
  override name = "ErrnoError";
  /** errno value. */
  readonly errno: number;
  /** Symbolic errno name, e.g. `ENOENT`. */
  readonly code: string;
  /** The system call that failed, e.g. `openat2`. */
  readonly syscall: string;
  /** The path or object the call was about, when there is one. */
  readonly path?: string;

  /** The failed `syscall` with errno `code`, about `path` when given. */
  constructor(syscall: string, code: number, path?: string, options?: ErrorOptions) {
    const name = errnoName(code);
    super(
      `${syscall}${path === undefined ? "" : ` "${path}"`} failed: ${name} (${describe(code)})`,
      options,
    );
    this.errno = code;
    this.code = name;
    this.syscall = syscall;
    this.path = path;
  }

  /** True when this error carries the given errno name. */
  is(name: ErrnoName): boolean {
    return this.errno === ERRNO[name];
  }
}

/**
 * True when `e` is an {@link ErrnoError} carrying one of `names`: the one errno test of the code
 * base, so a caller states exactly which errnos it expects and lets every other error through.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ErrnoError, isErrno } from "./errno.ts";
 *
 * const e = new ErrnoError("openat2", 17, "objects/ab/cd");
 * assert.ok(isErrno(e, "ENOENT", "EEXIST"));
 * assert.ok(!isErrno(e, "ENOENT"));
 * assert.ok(!isErrno(new Error("EEXIST"), "EEXIST"));
 * ```
 */
export function isErrno(e: unknown, ...names: ErrnoName[]): e is ErrnoError {
  if (!(e instanceof ErrnoError)) return false;
  for (const n of names) if (e.errno === ERRNO[n]) return true;
  return false;
}

const DESCRIPTIONS: Record<string, string> = {
  EPERM: "operation not permitted",
  ENOENT: "no such file or directory",
  EIO: "input/output error",
  EBADF: "bad file descriptor",
  EAGAIN: "resource temporarily unavailable",
  EACCES: "permission denied",
  EEXIST: "file exists",
  EXDEV: "cross-device link or path escapes its root",
  ENOTDIR: "not a directory",
  EISDIR: "is a directory",
  EINVAL: "invalid argument",
  EMFILE: "too many open files",
  ENOTTY: "inappropriate ioctl for device",
  ENOSPC: "no space left on device",
  EPIPE: "broken pipe",
  ENOSYS: "function not implemented",
  ELOOP: "too many levels of symbolic links or a symlink where none is allowed",
  EOPNOTSUPP: "operation not supported",
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset by peer",
  ENODATA: "no data available",
  ETXTBSY: "text file busy",
  EROFS: "read-only file system",
  ENOTEMPTY: "directory not empty",
  ENAMETOOLONG: "file name too long",
};

function describe(code: number): string {
  return DESCRIPTIONS[errnoName(code)] ?? `errno ${code}`;
}

/** Throw an {@link ErrnoError} for `syscall` if `rc` is negative; return `rc` otherwise. */
export function check(rc: number, syscall: string, path?: string): number {
  if (rc < 0) throw new ErrnoError(syscall, errno(), path);
  return rc;
}

/** The bigint variant of {@link check} for `ssize_t`/`long` results. */
export function checkBig(rc: bigint, syscall: string, path?: string): number {
  if (rc < 0n) throw new ErrnoError(syscall, errno(), path);
  return Number(rc);
}

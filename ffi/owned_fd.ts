/**
 * OwnedFd: the only holder of a raw file descriptor outside `ffi/`'s internals.
 *
 * @module
 */

import { libc } from "./libc.ts";
import { check } from "./errno.ts";

/** F_DUPFD_CLOEXEC: duplicate with close-on-exec set, so children never inherit by accident. */
const F_DUPFD_CLOEXEC = 1030;

/**
 * A file descriptor this process owns: closed exactly once, by dispose or `close()`.
 *
 * @example
 * ```ts
 * import { OwnedFd } from "./owned_fd.ts";
 * import { openDir } from "./fs.ts";
 * import assert from "node:assert/strict";
 * let fd: OwnedFd;
 * {
 *   using dir = openDir("/");
 *   fd = dir;
 *   assert.equal(fd.closed, false);
 * }
 * assert.equal(fd.closed, true);
 * ```
 */
export class OwnedFd implements Disposable {
  #fd: number;

  /** Take ownership of `fd` (internal: only `ffi/` creates OwnedFds from raw numbers). */
  constructor(fd: number) {
    if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`Invalid file descriptor: ${fd}`);
    this.#fd = fd;
  }

  /** The raw descriptor; throws once closed. For `ffi/` only. */
  get fd(): number {
    if (this.#fd < 0) throw new TypeError("File descriptor is already closed");
    return this.#fd;
  }

  /** True once closed or released. */
  get closed(): boolean {
    return this.#fd < 0;
  }

  /** Duplicate (close-on-exec) into a new independently owned descriptor. */
  dup(): OwnedFd {
    return new OwnedFd(check(libc().fcntl(this.fd, F_DUPFD_CLOEXEC, 0n), "fcntl(F_DUPFD_CLOEXEC)"));
  }

  /** Give up ownership and return the raw number (the caller must close it). */
  release(): number {
    const fd = this.fd;
    this.#fd = -1;
    return fd;
  }

  /** Close; idempotent. */
  close(): void {
    if (this.#fd >= 0) {
      const fd = this.#fd;
      this.#fd = -1;
      libc().close(fd);
    }
  }

  /** Close, at the end of a `using` scope (same as `close()`). */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Count this process's open descriptors (for leak tests): probes fds 0..limit with F_GETFD. */
export function openFdCount(limit = 4096): number {
  const F_GETFD = 1;
  const c = libc();
  let n = 0;
  for (let fd = 0; fd < limit; fd++) if (c.fcntl(fd, F_GETFD, 0n) >= 0) n++;
  return n;
}

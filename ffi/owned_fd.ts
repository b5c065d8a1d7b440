/**
 * OwnedFd and BorrowedFd: the only holders of a raw file descriptor outside `ffi/`'s internals.
 * The type says who closes what: an {@link OwnedFd} is closed by its holder (`using`, `close()`);
 * a {@link BorrowedFd} is someone else's (a repository's `objects/` directory, a socket's own fd)
 * and has no way to be closed — `using` one does not type-check, and at run time neither
 * `close()` nor `[Symbol.dispose]` exists on it.
 *
 * @module
 */

import { libc } from "./libc.ts";
import { check } from "./errno.ts";

/** F_DUPFD_CLOEXEC: duplicate with close-on-exec set, so children never inherit by accident. */
const F_DUPFD_CLOEXEC = 1030;

/**
 * A file descriptor lent for use, never for closing: it stays valid while its owner keeps it
 * open, and `closed` turns true once the owner closes it. Functions that only use a descriptor
 * take a `BorrowedFd`; every {@link OwnedFd} is one (an owner can always lend). To keep the
 * descriptor beyond the owner's lifetime, take an owned copy with {@link BorrowedFd.dup}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BorrowedFd, OwnedFd } from "./owned_fd.ts";
 * import { openDir } from "./fs.ts";
 *
 * using dir = openDir("/");
 * const lent: BorrowedFd = dir.borrow();
 * assert.equal(lent.fd, dir.fd);
 * assert.equal("close" in lent, false); // nothing to close it with
 * using copy: OwnedFd = lent.dup(); // an independent descriptor the caller owns
 * assert.notEqual(copy.fd, dir.fd);
 * dir.close();
 * assert.equal(lent.closed, true);
 * ```
 */
export class BorrowedFd {
  #owner: OwnedFd | undefined;

  /** Borrow `owner`'s descriptor (the same as `owner.borrow()`). */
  constructor(owner: OwnedFd) {
    // OwnedFd passes itself through its own constructor chain with no owner yet.
    if (owner === undefined && new.target === BorrowedFd) {
      throw new TypeError("A BorrowedFd needs the OwnedFd it borrows from");
    }
    this.#owner = owner;
  }

  /** The raw descriptor; throws once the owner closed it. For `ffi/` only. */
  get fd(): number {
    return this.#owner!.fd;
  }

  /** True once the owner closed (or released) the descriptor. */
  get closed(): boolean {
    return this.#owner!.closed;
  }

  /** Duplicate (close-on-exec) into a new descriptor the caller owns and must close. */
  dup(): OwnedFd {
    return new OwnedFd(check(libc().fcntl(this.fd, F_DUPFD_CLOEXEC, 0n), "fcntl(F_DUPFD_CLOEXEC)"));
  }
}

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
export class OwnedFd extends BorrowedFd implements Disposable {
  #fd: number;
  #lent: BorrowedFd | undefined;

  /** Take ownership of `fd` (internal: only `ffi/` creates OwnedFds from raw numbers). */
  constructor(fd: number) {
    super(undefined as unknown as OwnedFd);
    if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`Invalid file descriptor: ${fd}`);
    this.#fd = fd;
  }

  /** The raw descriptor; throws once closed. For `ffi/` only. */
  override get fd(): number {
    if (this.#fd < 0) throw new TypeError("File descriptor is already closed");
    return this.#fd;
  }

  /** True once closed or released. */
  override get closed(): boolean {
    return this.#fd < 0;
  }

  /** Lend this descriptor: the result can be used but not closed, and sees this one's close. */
  borrow(): BorrowedFd {
    return this.#lent ??= new BorrowedFd(this);
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

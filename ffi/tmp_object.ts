/**
 * The one way a file is written before it becomes visible (DESIGN 8): an unnamed O_TMPFILE,
 * given its name with linkat once complete, or — where the filesystem has no O_TMPFILE — a
 * named temporary file created O_EXCL and moved with renameat2(RENAME_NOREPLACE). Either way
 * the final name appears atomically, fully written, and never replaces an existing one
 * (EEXIST). Repository objects and `meta.json` are written through it.
 *
 * @module
 */

import * as C from "./constants.ts";
import { ERRNO, ErrnoError, isErrno } from "./errno.ts";
import {
  linkAt,
  linkFd,
  openBeneath,
  openTmpfile,
  type PathArg,
  renameAt,
  reopenFd,
  unlinkAt,
} from "./fs.ts";
import type { BorrowedFd, OwnedFd } from "./owned_fd.ts";

/** How a {@link TmpObject} was created: unnamed O_TMPFILE, or a named temp file + rename. */
export type TmpObjectMethod = "tmpfile" | "named";

/** Attempts at a fresh random name before giving up (composefs-rs tries 16 times too). */
const TMP_NAME_ATTEMPTS = 16;
/** Length of the random part of temporary names (composefs-rs: 12 alphanumerics). */
const TMP_SUFFIX_LEN = 12;
const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** 12 random alphanumerics, as composefs-rs's temporary names (`.tmp-object-…`, `.symlink-…`). */
export function randomSuffix(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(TMP_SUFFIX_LEN));
  let s = "";
  for (const b of bytes) s += ALNUM[b % ALNUM.length];
  return s;
}

/**
 * Whether an O_TMPFILE open failed because this filesystem or kernel has no O_TMPFILE, so a
 * named temporary file is the way forward:
 *
 * - `EOPNOTSUPP`: the filesystem has no tmpfile operation (NFS, fuse-overlayfs, vfat, …);
 * - `EISDIR`: a kernel older than O_TMPFILE (3.11) sees O_DIRECTORY|O_RDWR on a directory.
 *
 * Everything else is a real error and propagates, because a named file would fail the same way
 * or hide the cause: `EINVAL` (flags or mode wrong: a bug here), `ENOENT` (the directory was
 * removed; old kernels also say so for a missing directory, and ours exists), `EACCES`/`EPERM`,
 * `EROFS`, `ENOSPC`, `EDQUOT`, `EMFILE`. `ENOSYS` never reaches here: {@link openBeneath}
 * answers a kernel without openat2 itself, with openat.
 */
export function tmpfileUnsupported(e: unknown): boolean {
  return isErrno(e, "EOPNOTSUPP", "EISDIR");
}

/** Options of {@link TmpObject.create}. */
export interface TmpObjectOptions {
  /** File mode (before umask); default 0644. */
  mode?: number;
  /** Use a named temporary file even where O_TMPFILE works (tests of the fallback). */
  forceNamed?: boolean;
  /** Prefix of the named fallback's name; default `.tmp-`. */
  prefix?: string;
}

/**
 * A file being written that becomes visible only when {@link TmpObject.link} gives it a name,
 * atomically and never over an existing one (EEXIST). Dispose drops it if never linked.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openDir, writeAll } from "./fs.ts";
 * import { TmpObject } from "./tmp_object.ts";
 *
 * const path = await Deno.makeTempDir();
 * {
 *   using dir = openDir(path);
 *   using tmp = TmpObject.create(dir);
 *   writeAll(tmp.fd, new TextEncoder().encode("whole"));
 *   assert.deepEqual([...Deno.readDirSync(path)], []); // nothing visible yet
 *   tmp.link("name");
 * }
 * assert.equal(await Deno.readTextFile(`${path}/name`), "whole");
 * await Deno.remove(path, { recursive: true });
 * ```
 */
export class TmpObject implements Disposable {
  /** Which mechanism was used. */
  readonly method: TmpObjectMethod;
  #dir: BorrowedFd;
  #fd: OwnedFd;
  /** The named fallback's name in `#dir`, until renamed into place (or dropped). */
  #name: string | undefined;
  /** Where a renamed named file now lives, for further links. */
  #linked: { dir: BorrowedFd; name: PathArg } | undefined;

  private constructor(dir: BorrowedFd, fd: OwnedFd, name: string | undefined) {
    this.#dir = dir;
    this.#fd = fd;
    this.#name = name;
    this.method = name === undefined ? "tmpfile" : "named";
  }

  /**
   * Start a file in `dir` (which must outlive it): O_TMPFILE, else (see
   * {@link tmpfileUnsupported}) `<prefix><12 alphanumerics>` created O_EXCL.
   */
  static create(dir: BorrowedFd, opts: TmpObjectOptions = {}): TmpObject {
    const mode = opts.mode ?? 0o644;
    if (!opts.forceNamed) {
      try {
        return new TmpObject(dir, openTmpfile(dir, ".", mode), undefined);
      } catch (e) {
        if (!tmpfileUnsupported(e)) throw e;
      }
    }
    const prefix = opts.prefix ?? ".tmp-";
    let name = "";
    for (let i = 0; i < TMP_NAME_ATTEMPTS; i++) {
      name = `${prefix}${randomSuffix()}`;
      try {
        const fd = openBeneath(dir, name, {
          flags: C.O_RDWR | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW,
          mode,
        });
        return new TmpObject(dir, fd, name);
      } catch (e) {
        if (!isErrno(e, "EEXIST")) throw e;
      }
    }
    throw new ErrnoError("openat2", ERRNO.EEXIST, name);
  }

  /** The open file (read-write until {@link reopenReadOnly}); owned by this object. */
  get fd(): BorrowedFd {
    return this.#fd.borrow();
  }

  /**
   * Swap the writable descriptor for a read-only one (fs-verity can only be enabled on an
   * inode with no writable descriptor open) and return it; still owned by this object.
   */
  reopenReadOnly(): BorrowedFd {
    const ro = this.#name === undefined
      ? reopenFd(this.#fd, C.O_RDONLY)
      : openBeneath(this.#dir, this.#name, { flags: C.O_RDONLY });
    this.#fd.close();
    this.#fd = ro;
    return ro.borrow();
  }

  /**
   * Give the file the name `name` beneath `dir` (default: the directory it was created in).
   * Throws ErrnoError EEXIST when the name exists. Further calls add hard links.
   */
  link(name: PathArg, dir: BorrowedFd = this.#dir): void {
    if (this.#linked) {
      linkAt(this.#linked.dir, this.#linked.name, dir, name);
    } else if (this.#name === undefined) {
      linkFd(this.#fd, dir, name);
    } else {
      renameAt(this.#dir, this.#name, dir, name, C.RENAME_NOREPLACE);
      this.#name = undefined;
      this.#linked = { dir, name };
    }
  }

  /** Close the file; a named one never linked is removed. */
  [Symbol.dispose](): void {
    this.#fd.close();
    if (this.#name !== undefined) {
      const name = this.#name;
      this.#name = undefined;
      unlinkAt(this.#dir, name);
    }
  }
}

/**
 * The object store (repository-format §1.3, §1.5, §1.7): `objects/XX/<rest>` named by
 * fs-verity digest — presence, opening with the fs-verity check, writing through the one
 * {@link ObjectWriter}, and importing files zero-copy where the filesystem allows (DESIGN 8:
 * reflink, else hardlink, else copy), remembering which source devices cannot reflink here.
 *
 * @module
 */

import * as C from "../../ffi/constants.ts";
import { ERRNO, ErrnoError, isErrno } from "../../ffi/errno.ts";
import {
  fstat,
  linkAt,
  linkFd,
  lstatAtIfExists,
  mkdirAt,
  openBeneath,
  pread,
} from "../../ffi/fs.ts";
import { enableVerity, measureVerity } from "../../ffi/fsverity_ioctl.ts";
import type { BorrowedFd, OwnedFd } from "../../ffi/owned_fd.ts";
import { digestSize, type HashAlgorithm, kernelHashId } from "../fsverity/algorithm.ts";
import { fsverityDigestFd } from "../fsverity/digest_fd.ts";
import { fsverityDigest } from "../fsverity/hasher.ts";
import {
  CopyNotAllowedError,
  ObjectDigestMismatchError,
  ObjectNotFoundError,
  UnsafeRepositoryEntryError,
  VerityMissingError,
  VerityUnsupportedError,
} from "./errors.ts";
import { idEqual, objectDirName, objectPathOf, toHex } from "./object_id.ts";
import { IN_MEMORY_MODES, type ObjectSink, ObjectWriter } from "./object_writer.ts";
import type { RepoDir } from "./repo_dir.ts";

/** `objects/` (ensure_dir_and_openat: 0777 before umask, §1.6). */
export const OBJECTS_DIR_MODE = 0o777;
/** `objects/XX` created by the streaming and import paths (§1.6). */
const OBJECT_SUBDIR_MODE = 0o755;
/** ETXTBSY retries when enabling fs-verity right after the writable fd was closed. */
const VERITY_BUSY_RETRIES = 3;
/** Read size when copying files into objects. */
const COPY_CHUNK = 1 << 20;
/**
 * The copy path's read buffer, reused: a fresh 1 MiB buffer per object costs more in page
 * faults than the copy itself. Safe because the copy is synchronous end to end.
 */
let copyBuf: Uint8Array<ArrayBuffer> | undefined;

/** How {@link ObjectStore.storeObjectFromFile} stored the object. */
export type StoreMethod = "reflinked" | "hardlinked" | "copied" | "present";

/** Which ways of storing a file an import may use (DESIGN 8; each defaults as documented). */
export interface ObjectImportOptions {
  /** Try FICLONE into a new object (default true). */
  allowReflink?: boolean;
  /** Try a hard link of the source (default false; same algorithm and filesystem only). */
  allowHardlink?: boolean;
  /** Copy when no link works (default true; false makes that a {@link CopyNotAllowedError}). */
  allowCopy?: boolean;
}

/** Options of {@link ObjectStore.storeObjectFromFile}. */
export interface StoreFromFileOptions extends ObjectImportOptions {
  /** The object's ID if the caller knows it (checked against the bytes). */
  knownId?: Uint8Array;
  /** The object's ID, vouched for by the caller (not checked; nothing read unless copied). */
  trustedId?: Uint8Array;
  /** Nobody modifies the source: a reflink is hashed from it rather than from the clone. */
  stableSource?: boolean;
  /** Sees every chunk hashed, in order (a second hash in the same pass). */
  tap?: (chunk: Uint8Array) => void;
}

/**
 * FICLONE failures that mean "no reflink here, use the next method": EOPNOTSUPP (the
 * filesystem cannot share extents: ext4, tmpfs), EXDEV (another filesystem), ENOTTY/ENOSYS (no
 * such ioctl for this file), EINVAL (this pair of files cannot share: btrfs with differing
 * nodatasum/compression, xfs realtime files), EBADF (a source not open for reading).
 */
const REFLINK_UNAVAILABLE = ["EOPNOTSUPP", "EXDEV", "ENOTTY", "ENOSYS", "EINVAL", "EBADF"] as const;
/** Of those, the ones that hold for every file of the source's filesystem: remembered. */
const REFLINK_NEVER = ["EOPNOTSUPP", "EXDEV", "ENOTTY", "ENOSYS"] as const;
/** Hard-link failures after which a copy still works. */
const HARDLINK_UNAVAILABLE = ["EXDEV", "EPERM", "EACCES", "ENOENT", "EMLINK"] as const;

/** Objects of one repository, beneath its {@link RepoDir}. */
export class ObjectStore implements ObjectSink, Disposable {
  /** fs-verity algorithm of object IDs. */
  readonly algorithm: HashAlgorithm;
  /** Use named temporary files instead of O_TMPFILE (tests of the fallback path). */
  readonly forceNamedTmpfile: boolean;

  #dir: RepoDir;
  #objects: OwnedFd | undefined;
  #subdirs: (OwnedFd | undefined)[] = new Array(256);
  #devices = new WeakMap<BorrowedFd, bigint>();
  /** Source devices FICLONE refused for good (see {@link REFLINK_NEVER}): not tried again. */
  #noReflinkFrom = new Set<bigint>();
  /** The objects filesystem answered "no fs-verity" once; it will not change while open. */
  #verityUnsupported = false;

  /** Objects beneath `dir` (which must outlive this store). */
  constructor(dir: RepoDir, opts: { forceNamedTmpfile?: boolean } = {}) {
    this.#dir = dir;
    this.algorithm = dir.algorithm;
    this.forceNamedTmpfile = !!opts.forceNamedTmpfile;
  }

  // ---------------------------------------------------------------- directories

  #objectsDir(create: boolean): OwnedFd | null {
    if (this.#objects) return this.#objects;
    const fd = this.#dir.openDir(["objects"], create && this.#dir.writable, OBJECTS_DIR_MODE);
    if (fd) this.#objects = fd;
    return fd;
  }

  #objectSubdir(first: number, create: boolean, mode = OBJECT_SUBDIR_MODE): OwnedFd | null {
    const cached = this.#subdirs[first];
    if (cached) return cached;
    const objects = this.#objectsDir(create);
    if (!objects) return null;
    const name = objectDirName(first);
    if (create) mkdirAt(objects, name, mode, true);
    let fd: OwnedFd;
    try {
      fd = openBeneath(objects, name, { flags: C.O_RDONLY | C.O_DIRECTORY });
    } catch (e) {
      if (isErrno(e, "ENOENT")) return null;
      if (isErrno(e, "ELOOP", "ENOTDIR", "EXDEV")) {
        throw new UnsafeRepositoryEntryError(`objects/${name}`, { cause: e });
      }
      throw e;
    }
    this.#subdirs[first] = fd;
    return fd;
  }

  /** `objects/`, created when missing (for the {@link ObjectWriter}). @internal */
  objectsDir(): BorrowedFd {
    return this.#objectsDir(true)!;
  }

  /** `objects/XX`, created with `mode` when missing (for the {@link ObjectWriter}). @internal */
  objectSubdir(first: number, mode: number): BorrowedFd {
    return this.#objectSubdir(first, true, mode)!;
  }

  /** The `objects/` directory (borrowed: the repository closes it). Created when missing. */
  objectsDirFd(): BorrowedFd {
    this.#dir.assertOpen();
    const fd = this.#objectsDir(this.#dir.writable);
    if (!fd) throw new ObjectNotFoundError("objects/");
    return fd.borrow();
  }

  /** `objects/` (borrowed), or null when it does not exist yet. */
  objectsDirIfExists(): BorrowedFd | null {
    this.#dir.assertOpen();
    return this.#objectsDir(false)?.borrow() ?? null;
  }

  /** st_dev of `objects/` (for same-filesystem hardlink decisions). */
  objectsDevice(): bigint {
    // Without objects/ yet (a fresh repository), its device is the repository root's: stat
    // the root rather than create objects/ as a side effect of asking.
    const objects = this.#objectsDir(false);
    return objects ? this.#deviceOf(objects) : this.#dir.device();
  }

  /** `st_dev` of a directory fd, remembered per fd (asked once per object otherwise). */
  #deviceOf(fd: BorrowedFd): bigint {
    let dev = this.#devices.get(fd);
    if (dev === undefined) {
      dev = fstat(fd).dev;
      this.#devices.set(fd, dev);
    }
    return dev;
  }

  // ---------------------------------------------------------------- reading

  /** True when `objects/XX/<rest>` exists. */
  hasObject(id: Uint8Array): boolean {
    this.#dir.assertOpen();
    const sub = this.#objectSubdir(id[0], false);
    if (!sub) return false;
    return lstatAtIfExists(sub, toHex(id).slice(2)) !== null;
  }

  /** Size of the object `id` without opening it (null when absent). */
  objectSize(id: Uint8Array): number | null {
    this.#dir.assertOpen();
    const sub = this.#objectSubdir(id[0], false);
    if (!sub) return null;
    return lstatAtIfExists(sub, toHex(id).slice(2))?.size ?? null;
  }

  /** Open an object read-only; in secure mode its fs-verity digest must match. */
  openObject(id: Uint8Array): OwnedFd {
    this.#dir.assertOpen();
    const path = objectPathOf(id);
    const sub = this.#objectSubdir(id[0], false);
    if (!sub) throw new ObjectNotFoundError(path);
    let fd: OwnedFd;
    try {
      fd = openBeneath(sub, path.slice(3), { flags: C.O_RDONLY });
    } catch (e) {
      if (isErrno(e, "ENOENT")) throw new ObjectNotFoundError(path, { cause: e });
      if (isErrno(e, "ELOOP")) {
        throw new UnsafeRepositoryEntryError(`objects/${path}`, { cause: e });
      }
      throw e;
    }
    try {
      const m = measureVerity(fd, kernelHashId(this.algorithm));
      if (m.kind === "measured") {
        if (!idEqual(m.digest, id)) throw new ObjectDigestMismatchError(path, toHex(m.digest));
      } else if (!this.#dir.insecure) throw new VerityMissingError(path);
      return fd;
    } catch (e) {
      fd.close();
      throw e;
    }
  }

  // ---------------------------------------------------------------- sealing

  /** False once fs-verity is known to be unavailable and not required. @internal */
  needsSeal(): boolean {
    return !(this.#dir.insecure && this.#verityUnsupported);
  }

  /** Enable fs-verity (always tried), then check the kernel's measurement matches `id`. @internal */
  sealObject(ro: BorrowedFd, id: Uint8Array, path: string): void {
    const kid = kernelHashId(this.algorithm);
    const insecure = this.#dir.insecure;
    let r = enableVerity(ro, kid);
    for (let i = 0; r === "busy" && i < VERITY_BUSY_RETRIES; i++) r = enableVerity(ro, kid);
    if (r === "unsupported" || r === "busy") {
      if (r === "unsupported") this.#verityUnsupported = true;
      if (insecure) return;
      if (r === "busy") {
        throw new ErrnoError("ioctl(FS_IOC_ENABLE_VERITY)", ERRNO.ETXTBSY, `objects/${path}`);
      }
      throw new VerityUnsupportedError(
        `${this.#dir.path}/objects/${path}`,
        " (repository requires it)",
      );
    }
    const m = measureVerity(ro, kid);
    if (m.kind === "measured") {
      if (!idEqual(m.digest, id)) throw new ObjectDigestMismatchError(path, toHex(m.digest));
    } else if (!insecure) throw new VerityMissingError(path);
  }

  // ---------------------------------------------------------------- writing

  /** Start writing a new object (hashed while written). Dispose without `finish()` to abort. */
  createObjectWriter(): ObjectWriter {
    this.#dir.assertWritable();
    this.#dir.markUnsynced();
    return new ObjectWriter(this);
  }

  /** Store in-memory bytes as an object (composefs-rs `ensure_object`); returns its ID. */
  storeObject(data: Uint8Array): Uint8Array {
    this.#dir.assertWritable();
    this.#dir.markUnsynced();
    const id = fsverityDigest(data, this.algorithm);
    if (this.hasObject(id)) {
      // Secure mode: an existing object must carry the right fs-verity digest (openObject checks).
      if (!this.#dir.insecure) this.openObject(id).close();
      return id;
    }
    using w = new ObjectWriter(this, { expectedId: id, modes: IN_MEMORY_MODES });
    w.write(data);
    w.finish();
    return id;
  }

  /**
   * Store the content of an open file: FICLONE into a new object, else a hardlink (when
   * allowed and on the objects filesystem), else a copy. The digest is computed from the
   * bytes that are linked (`tap` sees them), except with `trustedId`: then the caller vouches
   * that the file is an object of a repository of this algorithm named `trustedId` (a local
   * same-algorithm copy) and nothing is read unless a copy is needed. With `stableSource`
   * the caller vouches that nobody modifies `src` (an object of a local repository): a
   * reflink is then hashed from `src`, whose pages are usually cached, instead of from the
   * fresh clone, whose pages never are (its reads go to the disk).
   */
  storeObjectFromFile(
    src: BorrowedFd,
    opts: StoreFromFileOptions = {},
  ): { id: Uint8Array; method: StoreMethod; tapped: boolean } {
    this.#dir.assertWritable();
    this.#dir.markUnsynced();
    const allowReflink = opts.allowReflink ?? true;
    const allowCopy = opts.allowCopy ?? true;
    const trusted = opts.trustedId;
    if (trusted && trusted.length !== digestSize(this.algorithm)) {
      throw new RangeError(`Trusted object id has ${trusted.length} bytes for ${this.algorithm}`);
    }
    const known = trusted ?? opts.knownId;
    if (known && known.length === digestSize(this.algorithm) && this.hasObject(known)) {
      return { id: known, method: "present", tapped: false };
    }
    const objects = this.#objectsDir(true)!;
    const srcDev = fstat(src).dev;
    // DESIGN 8: reflink first (a private copy sharing extents), then hardlink (same
    // algorithm only: the caller passes knownId), then copy. Each path hashes the bytes it
    // links exactly once, handing them to `tap` on the way.
    if (allowReflink) {
      const w = this.#cloneWriter(src, srcDev);
      if (w) {
        using _w = w;
        // A clone shares the source's extents, not its page cache: hash whichever is
        // safe and cheap to read (a secure repository re-measures the clone when sealing).
        const id = trusted ??
          fsverityDigestFd(opts.stableSource ? src : w.fd, this.algorithm, opts.tap);
        const r = w.finish(id);
        return { id, method: r.present ? "present" : "reflinked", tapped: !trusted };
      }
    }
    let knownDigest: Uint8Array | undefined;
    if (opts.allowHardlink && srcDev === fstat(objects).dev) {
      const id = trusted ?? fsverityDigestFd(src, this.algorithm, opts.tap);
      knownDigest = id;
      if (opts.knownId && !idEqual(id, opts.knownId)) {
        throw new ObjectDigestMismatchError(objectPathOf(opts.knownId), toHex(id));
      }
      // A secure repository needs fs-verity on every object; a shared inode qualifies only
      // when it already carries the right measurement (we never enable verity on someone
      // else's file in place). Otherwise fall through to a copy.
      const linkable = this.#dir.insecure || (() => {
        const m = measureVerity(src, kernelHashId(this.algorithm));
        return m.kind === "measured" && idEqual(m.digest, id);
      })();
      if (linkable) {
        const sub = this.#objectSubdir(id[0], true)!;
        try {
          linkFd(src, sub, toHex(id).slice(2));
          return { id, method: "hardlinked", tapped: !trusted };
        } catch (e) {
          if (isErrno(e, "EEXIST")) return { id, method: "present", tapped: !trusted };
          if (!isErrno(e, ...HARDLINK_UNAVAILABLE)) throw e;
        }
      }
    }
    if (!allowCopy) throw new CopyNotAllowedError();
    // When the hardlink attempt already hashed (and tapped) the bytes, or the id is trusted,
    // copy without re-hashing.
    knownDigest ??= trusted;
    using w = new ObjectWriter(this, knownDigest ? { expectedId: knownDigest } : {});
    const buf = copyBuf ??= new Uint8Array(COPY_CHUNK);
    let off = 0;
    for (;;) {
      const n = pread(src, buf, off);
      if (n === 0) break;
      const chunk = buf.subarray(0, n);
      w.write(chunk);
      if (!knownDigest) opts.tap?.(chunk);
      off += n;
    }
    const r = w.finish();
    return { id: r.id, method: r.present ? "present" : "copied", tapped: !trusted };
  }

  /**
   * Bring the object `id` of another repository of this algorithm into this one under the
   * same name, unread: `from` is that repository's `objects/` directory, whose names are the
   * digests of their contents (a local same-algorithm copy; the caller vouches for it, as
   * with `trustedId`). Reflink, else hardlink, else copy, as allowed (DESIGN 8); an object
   * already here counts as present. The common cases cost one `linkat` (hardlink) or one
   * open, O_TMPFILE, FICLONE and `linkat` (reflink): no presence check beforehand, EEXIST
   * answers it.
   *
   * @throws {ObjectNotFoundError} when `from` lacks the object.
   * @throws {CopyNotAllowedError} when neither link works and copying is not allowed.
   */
  importTrustedObject(
    from: BorrowedFd,
    id: Uint8Array,
    opts: ObjectImportOptions = {},
  ): StoreMethod {
    this.#dir.assertWritable();
    this.#dir.markUnsynced();
    if (id.length !== digestSize(this.algorithm)) {
      throw new RangeError(`Trusted object id has ${id.length} bytes for ${this.algorithm}`);
    }
    const path = objectPathOf(id);
    const rest = path.slice(3);
    const fromDev = this.#deviceOf(from);
    const sameFs = fromDev === this.objectsDevice();
    // Reflinks are tried across st_dev too (btrfs subvolumes share extents); a failure is
    // remembered for the device, as in storeObjectFromFile.
    const canReflink = (opts.allowReflink ?? true) && !this.#noReflinkFrom.has(fromDev);
    // Hardlinks by name need no open, but share the inode: only where nothing has to be
    // sealed (an insecure repository); a secure one takes the measured path below.
    if (!canReflink && opts.allowHardlink && sameFs && this.#dir.insecure) {
      try {
        linkAt(from, path, this.#objectSubdir(id[0], true)!, rest);
        return "hardlinked";
      } catch (e) {
        if (isErrno(e, "EEXIST")) return "present";
        if (isErrno(e, "ENOENT")) throw new ObjectNotFoundError(path, { cause: e });
        if (!isErrno(e, ...HARDLINK_UNAVAILABLE)) throw e;
      }
    }
    let src: OwnedFd;
    try {
      src = openBeneath(from, path, { flags: C.O_RDONLY });
    } catch (e) {
      if (isErrno(e, "ENOENT")) throw new ObjectNotFoundError(path, { cause: e });
      throw e;
    }
    using _src = src;
    if (canReflink) {
      const w = this.#cloneWriter(src, fromDev);
      if (w) {
        using _w = w;
        return w.finish(id).present ? "present" : "reflinked";
      }
    }
    const r = this.storeObjectFromFile(src, {
      allowReflink: false,
      allowHardlink: opts.allowHardlink,
      allowCopy: opts.allowCopy,
      trustedId: id,
    });
    return r.method;
  }

  /**
   * A new object writer holding a reflink of `src` (on device `srcDev`), or undefined when
   * that cannot work here. Like composefs-rs, a device that cannot reflink into this
   * repository is remembered: no temporary file and failing ioctl per object from then on.
   */
  #cloneWriter(src: BorrowedFd, srcDev: bigint): ObjectWriter | undefined {
    if (this.#noReflinkFrom.has(srcDev)) return undefined;
    const w = new ObjectWriter(this);
    try {
      w.cloneFrom(src);
      return w;
    } catch (e) {
      w[Symbol.dispose]();
      if (!isErrno(e, ...REFLINK_UNAVAILABLE)) throw e;
      if (isErrno(e, ...REFLINK_NEVER)) this.#noReflinkFrom.add(srcDev);
      return undefined;
    }
  }

  /** Close the cached directory fds. */
  [Symbol.dispose](): void {
    for (let i = 0; i < this.#subdirs.length; i++) {
      this.#subdirs[i]?.close();
      this.#subdirs[i] = undefined;
    }
    this.#objects?.close();
    this.#objects = undefined;
  }
}

/**
 * The composefs repository (repository-format §1): `meta.json`, content-addressed `objects/`,
 * `streams/` and `images/` symlinks and their `refs/`, locking, GC and fsck.
 *
 * Every file operation goes through the repository's directory fd with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) (DESIGN 7): a symlink
 * planted anywhere inside (e.g. `objects/` → `/etc`) is refused, never followed.
 *
 * @module
 */

import { resolve as resolvePath } from "node:path";
import * as C from "../../ffi/constants.ts";
import { ERRNO, ErrnoError } from "../../ffi/errno.ts";
import {
  DT,
  fdPath,
  ficlone,
  flock,
  fstat,
  fstatfs,
  fsync,
  linkAt,
  linkFd,
  lstatAt,
  lstatAtIfExists,
  mkdirAt,
  openBeneath,
  openDir,
  openTmpfile,
  pread,
  readAllAt,
  readDir,
  readlinkAt,
  renameAt,
  reopenFd,
  symlinkAt,
  syncfs,
  unlinkAt,
  writeAll,
} from "../../ffi/fs.ts";
import { enableVerity, measureVerity } from "../../ffi/fsverity_ioctl.ts";
import type { BorrowedFd, OwnedFd } from "../../ffi/owned_fd.ts";
import { digestSize, type HashAlgorithm, kernelHashId } from "../fsverity/algorithm.ts";
import { fsverityDigestFd } from "../fsverity/digest_fd.ts";
import { fsverityDigest } from "../fsverity/hasher.ts";
import {
  CopyNotAllowedError,
  MetadataMissingError,
  NotFoundError,
  ObjectDigestMismatchError,
  ObjectNotFoundError,
  OldFormatRepositoryError,
  RepositoryBusyError,
  RepositoryCorruptError,
  RepositoryExistsError,
  RepositoryReadOnlyError,
  StreamMismatchError,
  UnsafeRepositoryEntryError,
  VerityMissingError,
  VerityUnsupportedError,
} from "./errors.ts";
import {
  checkMetadata,
  type ErofsFormatVersion,
  META_JSON,
  metadataEqual,
  newRepoMetadata,
  parseRepoMetadata,
  type RepoMetadata,
  serializeRepoMetadata,
  unknownReadOnlyFeatures,
} from "./meta.ts";
import {
  refComponents,
  relativeSymlinkTarget,
  resolveLinkTarget,
  validateEntryName,
} from "./names.ts";
import {
  idEqual,
  objectPathOf,
  parseObjectEntry,
  parseObjectLinkTarget,
  toHex,
} from "./object_id.ts";
import { IN_MEMORY_MODES, type ObjectSink, ObjectWriter, randomSuffix } from "./object_writer.ts";
import { parseSplitstream, type Splitstream, SplitstreamError } from "./splitstream.ts";
import { requirePermission } from "./permissions.ts";

/** A parsed splitstream as returned by {@link Repository.readStream}. */
export type ParsedSplitstream = Splitstream;
import { collectGarbage, type GcOptions, type GcReport } from "./gc.ts";
import { checkRepository, type FsckOptions, type FsckReport } from "./fsck.ts";
import { imageObjectRefs } from "./image_refs.ts";

/** Mode of a repository directory created by init (composefs-rs: 0700). */
const REPO_DIR_MODE = 0o700;
/** `objects/` and `images/` (ensure_dir_and_openat: 0777 before umask). */
const OBJECTS_DIR_MODE = 0o777;
/** `objects/XX` created by the streaming write paths. */
const OBJECT_SUBDIR_MODE = 0o755;
/** Directories made while creating symlinks (`streams/` and the `refs/` trees). */
const LINK_DIR_MODE = 0o755;
/** meta.json mode. */
const META_MODE = 0o644;
/** Attempts at a fresh `.symlink-*` name for an atomic replace (composefs-rs: 16). */
const SYMLINK_TMP_ATTEMPTS = 16;
/** Poll interval while waiting for the repository lock (flock would block the JS thread). */
const LOCK_POLL_MS = 20;
/** ETXTBSY retries when enabling fs-verity right after the writable fd was closed. */
const VERITY_BUSY_RETRIES = 3;
/** statfs f_flags bit for a read-only mount (ST_RDONLY, sys/statvfs.h). */
const ST_RDONLY = 1;
/** Read size when copying files into objects. */
const COPY_CHUNK = 1 << 20;
/**
 * The copy path's read buffer, reused: a fresh 1 MiB buffer per object costs more in page
 * faults than the copy itself. Safe because the copy is synchronous end to end.
 */
let copyBuf: Uint8Array<ArrayBuffer> | undefined;

/** Options of {@link Repository.init}. */
export interface InitOptions {
  /** fs-verity algorithm of object IDs. */
  algorithm: HashAlgorithm;
  /** Do not require fs-verity (meta.json is written without it). */
  insecure?: boolean;
  /** EROFS formats (default: `{default: 1}`, like composefs-rs). */
  erofsFormats?: { default: ErofsFormatVersion; extra?: number[] };
}

/** Options of {@link Repository.open}. */
export interface OpenOptions {
  /** Open for writing (needs Deno write permission for the path). */
  write?: boolean;
  /** Do not require fs-verity on objects even if the repository does. */
  insecure?: boolean;
  /** Fail unless the repository requires fs-verity. */
  requireVerity?: boolean;
  /** Do not write meta.json for a legacy repository. */
  noUpgrade?: boolean;
  /** Use named temporary files instead of O_TMPFILE (tests of the fallback path). */
  forceNamedTmpfile?: boolean;
}

/** How {@link Repository.storeObjectFromFile} stored the object. */
export type StoreMethod = "reflinked" | "hardlinked" | "copied" | "present";

/** A named image ref and the image it points to. */
export interface ImageEntry {
  /** Ref name below `images/refs/`. */
  name: string;
  /** Image object ID. */
  id: Uint8Array;
}

/** A ref below `streams/refs/` and its raw symlink target. */
export interface RefEntry {
  /** Full ref name below `streams/refs/` (e.g. `oci/latest`). */
  name: string;
  /** The symlink target as stored (e.g. `../../oci-manifest-sha256:…`). */
  target: string;
}

/** What `init` did: created a new repository or found an identical one. */
export interface InitResult {
  /** The opened repository. */
  repository: Repository;
  /** True when meta.json was written now. */
  created: boolean;
}

/** Internal handles GC and fsck use (not part of the public API). */
export interface RepositoryInternals {
  root: OwnedFd;
  /** `objects/` or null when it does not exist. */
  objectsDirIfExists(): OwnedFd | null;
  /** Open a first-level dir (`streams`, `images`) or null if absent; symlinks refused. */
  openDirIfExists(rel: string): OwnedFd | null;
  /** Resolve `category/name` (first level) to its object ID, or null if not a valid link. */
  firstLevelTarget(category: "streams" | "images", name: string): Uint8Array | null;
  lockExclusive(): boolean;
  lockShared(): void;
}

function isErrno(e: unknown, ...names: Parameters<ErrnoError["is"]>[0][]): e is ErrnoError {
  return e instanceof ErrnoError && names.some((n) => e.is(n));
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Take the shared repository lock without blocking the JS thread. */
async function lockSharedAsync(fd: BorrowedFd): Promise<void> {
  while (!flock(fd, "shared", true)) await sleep(LOCK_POLL_MS);
}

/** Write meta.json (O_TMPFILE + linkat; O_CREAT|O_EXCL fallback), optionally with fs-verity. */
function writeMetaJson(root: BorrowedFd, path: string, meta: RepoMetadata, verity: boolean): void {
  const bytes = serializeRepoMetadata(meta);
  let rw: OwnedFd;
  let named = false;
  try {
    rw = openTmpfile(root, ".", META_MODE);
  } catch (e) {
    if (!isErrno(e, "EOPNOTSUPP", "EISDIR", "EINVAL", "ENOSYS")) throw e;
    rw = openBeneath(root, META_JSON, {
      flags: C.O_RDWR | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW,
      mode: META_MODE,
    });
    named = true;
  }
  try {
    writeAll(rw, bytes);
    fsync(rw);
    using ro = named
      ? openBeneath(root, META_JSON, { flags: C.O_RDONLY })
      : reopenFd(rw, C.O_RDONLY);
    rw.close();
    if (verity) {
      const r = enableVerity(ro, kernelHashId(meta.algorithm));
      if (r === "unsupported") {
        if (named) unlinkAt(root, META_JSON);
        throw new VerityUnsupportedError(path, " (use --insecure)");
      }
      if (r === "busy") {
        throw new ErrnoError("ioctl(FS_IOC_ENABLE_VERITY)", ERRNO.ETXTBSY, `${path}/${META_JSON}`);
      }
    }
    if (!named) linkFd(ro, root, META_JSON);
    fsync(root);
  } finally {
    rw.close();
  }
}

/** Remove a directory tree beneath `dir` without following symlinks. */
function removeTree(dir: BorrowedFd, name: string): void {
  let sub: OwnedFd;
  try {
    sub = openBeneath(dir, name, { flags: C.O_RDONLY | C.O_DIRECTORY });
  } catch (e) {
    if (isErrno(e, "ENOENT")) return;
    if (isErrno(e, "ENOTDIR", "ELOOP")) {
      unlinkAt(dir, name);
      return;
    }
    throw e;
  }
  try {
    for (const ent of readDir(sub)) {
      if (ent.type === DT.DIR) removeTree(sub, ent.name);
      else unlinkAt(sub, ent.nameBytes);
    }
  } finally {
    sub.close();
  }
  unlinkAt(dir, name, { dir: true });
}

/**
 * A composefs repository opened through its directory fd.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Repository, toHex } from "./mod.ts";
 *
 * const dir = await Deno.makeTempDir();
 * {
 *   using repo = await Repository.init(`${dir}/repo`, { algorithm: "sha256", insecure: true });
 *   const id = repo.storeObject(new TextEncoder().encode("hello world"));
 *   assert.equal(toHex(id), "1e2eaa4202d750a41174ee454970b92c1bc2f925b1e35076d8c7d5f56362ba64");
 *   assert.ok(repo.hasObject(id));
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class Repository implements Disposable {
  /** Absolute path the repository was opened at. */
  readonly path: string;
  /** fs-verity algorithm of object IDs. */
  readonly algorithm: HashAlgorithm;
  /** True when fs-verity is not required (meta.json lacks it, or `insecure` was asked for). */
  readonly insecure: boolean;
  /** Opened for writing. */
  readonly writable: boolean;
  /** The parsed meta.json. */
  readonly meta: RepoMetadata;

  #root: OwnedFd;
  /** Source devices FICLONE refused (EOPNOTSUPP/EXDEV): not tried again. */
  #noReflinkFrom = new Set<bigint>();
  #objects: OwnedFd | undefined;
  #subdirs = new Map<number, OwnedFd>();
  #devices = new WeakMap<BorrowedFd, bigint>();
  /**
   * An object may have been stored (or found present, possibly written by another process)
   * since the last sync: the next name must sync first (DESIGN 9). Names created back to
   * back after one batch of objects then cost one sync, not one each.
   */
  #unsynced = true;
  #forceNamed: boolean;
  #closed = false;
  /** The objects filesystem answered "no fs-verity" once; it will not change while open. */
  #verityUnsupported = false;

  private constructor(
    path: string,
    root: OwnedFd,
    meta: RepoMetadata,
    insecure: boolean,
    writable: boolean,
    forceNamed: boolean,
  ) {
    this.path = path;
    this.#root = root;
    this.meta = meta;
    this.algorithm = meta.algorithm;
    this.insecure = insecure;
    this.writable = writable;
    this.#forceNamed = forceNamed;
  }

  /**
   * Create the directory (and parents) and write `meta.json`; an identical existing
   * configuration is accepted, a different one is an error. Returns the opened repository.
   */
  static async init(path: string, opts: InitOptions): Promise<Repository> {
    return (await Repository.initDetailed(path, opts)).repository;
  }

  /** Like {@link Repository.init}, also telling whether meta.json was created now. */
  static async initDetailed(path: string, opts: InitOptions): Promise<InitResult> {
    const abs = resolvePath(path);
    await requirePermission(abs, "write");
    await requirePermission(abs, "read");
    await Deno.mkdir(abs, { recursive: true, mode: REPO_DIR_MODE });
    const meta = newRepoMetadata(opts.algorithm, opts.erofsFormats ?? { default: 1 });
    let created = false;
    {
      using root = await openRootChecked(abs, "write");
      await lockSharedAsync(root);
      const existing = readMetaBytes(root);
      if (existing) {
        const old = parseRepoMetadata(existing);
        if (!metadataEqual(old, meta)) throw new RepositoryExistsError(abs);
      } else {
        try {
          writeMetaJson(root, abs, meta, !opts.insecure);
          created = true;
        } catch (e) {
          if (!isErrno(e, "EEXIST")) throw e;
          // A concurrent init won the race: accept it only if it wrote the same configuration.
          const old = parseRepoMetadata(readMetaBytes(root)!);
          if (!metadataEqual(old, meta)) throw new RepositoryExistsError(abs);
        }
      }
    }
    const repository = await Repository.open(abs, { write: true, insecure: opts.insecure });
    return { repository, created };
  }

  /**
   * Delete `streams/`, `images/` and `meta.json`, keeping `objects/` (`init --reset-metadata`).
   * Needs write permission.
   */
  static async resetMetadata(path: string): Promise<void> {
    const abs = resolvePath(path);
    await requirePermission(abs, "write");
    await requirePermission(abs, "read");
    let root: OwnedFd;
    try {
      root = await openRootChecked(abs, "write");
    } catch (e) {
      if (isErrno(e, "ENOENT")) return; // nothing to reset; init creates it
      throw e;
    }
    using _root = root;
    // Deleting streams/ and images/ under a running user would pull links from under it.
    if (!flock(root, "exclusive", true)) throw new RepositoryBusyError(abs);
    removeTree(root, "streams");
    removeTree(root, "images");
    try {
      unlinkAt(root, META_JSON);
    } catch (e) {
      if (!isErrno(e, "ENOENT")) throw e;
    }
    fsync(root);
  }

  /**
   * Open an existing repository. Without meta.json but with `objects/`, a writable open
   * upgrades it (infers the algorithm from object names) unless `noUpgrade`.
   */
  static async open(path: string, opts: OpenOptions = {}): Promise<Repository> {
    return (await Repository.openDetailed(path, opts)).repository;
  }

  /** Like {@link Repository.open}, also telling whether a legacy repository was upgraded. */
  static async openDetailed(
    path: string,
    opts: OpenOptions = {},
  ): Promise<{ repository: Repository; upgraded: boolean }> {
    const abs = resolvePath(path);
    if (opts.write) await requirePermission(abs, "write");
    await requirePermission(abs, "read");
    const root = await openRootChecked(abs, opts.write ? "write" : "read");
    let upgraded = false;
    try {
      await lockSharedAsync(root);
      let bytes = readMetaBytes(root);
      if (!bytes) {
        if (!exists(root, "objects")) throw new MetadataMissingError(abs);
        if (opts.noUpgrade) {
          throw new OldFormatRepositoryError(abs, "upgrades are disabled (--no-upgrade)");
        }
        if (!opts.write) {
          throw new OldFormatRepositoryError(abs, "open it for writing to upgrade it");
        }
        upgradeLegacy(root, abs);
        upgraded = true;
        bytes = readMetaBytes(root)!;
      }
      const meta = parseRepoMetadata(bytes);
      const mode = checkMetadata(meta);
      if (opts.write && mode === "read-only") {
        throw new RepositoryReadOnlyError(
          abs,
          `unknown read-only-compatible features ${
            unknownReadOnlyFeatures(meta).map((f) => `"${f}"`).join(", ")
          }`,
        );
      }
      using metaFd = openBeneath(root, META_JSON, { flags: C.O_RDONLY });
      const m = measureVerity(metaFd, kernelHashId(meta.algorithm));
      const repoInsecure = m.kind !== "measured";
      if (opts.requireVerity && repoInsecure) {
        throw new VerityMissingError(META_JSON);
      }
      if (opts.write && (fstatfs(root).flags & ST_RDONLY) !== 0) {
        throw new RepositoryReadOnlyError(abs, "the filesystem is mounted read-only");
      }
      const repository = new Repository(
        abs,
        root,
        meta,
        repoInsecure || !!opts.insecure,
        !!opts.write,
        !!opts.forceNamedTmpfile,
      );
      return { repository, upgraded };
    } catch (e) {
      root.close();
      throw e;
    }
  }

  // ---------------------------------------------------------------- directories

  #assertOpen(): void {
    if (this.#closed) throw new TypeError("Repository is closed");
  }

  #assertWritable(): void {
    this.#assertOpen();
    if (!this.writable) throw new RepositoryReadOnlyError(this.path, "opened read-only");
  }

  /** Open `rel` (a chain of directories) beneath the root, creating each when `create`. */
  #openDirChain(parts: readonly string[], create: boolean, mode = LINK_DIR_MODE): OwnedFd | null {
    let cur = this.#root.dup();
    try {
      for (let i = 0; i < parts.length; i++) {
        if (create) mkdirAt(cur, parts[i], mode, true);
        let next: OwnedFd;
        try {
          next = openBeneath(cur, parts[i], { flags: C.O_RDONLY | C.O_DIRECTORY });
        } catch (e) {
          if (isErrno(e, "ENOENT") && !create) return null;
          if (isErrno(e, "ELOOP", "ENOTDIR", "EXDEV")) {
            throw new UnsafeRepositoryEntryError(parts.slice(0, i + 1).join("/"), { cause: e });
          }
          throw e;
        }
        cur.close();
        cur = next;
      }
      const out = cur;
      cur = undefined as unknown as OwnedFd;
      return out;
    } finally {
      cur?.close();
    }
  }

  #objectsDir(create: boolean): OwnedFd | null {
    if (this.#objects) return this.#objects;
    const fd = this.#openDirChain(["objects"], create && this.writable, OBJECTS_DIR_MODE);
    if (fd) this.#objects = fd;
    return fd;
  }

  #objectSubdir(first: number, create: boolean, mode = OBJECT_SUBDIR_MODE): OwnedFd | null {
    const cached = this.#subdirs.get(first);
    if (cached) return cached;
    const objects = this.#objectsDir(create);
    if (!objects) return null;
    const name = first.toString(16).padStart(2, "0");
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
    this.#subdirs.set(first, fd);
    return fd;
  }

  #sink(): ObjectSink {
    return {
      algorithm: this.algorithm,
      objectsDir: () => this.#objectsDir(true)!,
      objectSubdir: (first, mode) => this.#objectSubdir(first, true, mode)!,
      sealObject: (ro, id, path) => this.#sealObject(ro, id, path),
      needsSeal: () => !(this.insecure && this.#verityUnsupported),
      forceNamedTmpfile: this.#forceNamed,
    };
  }

  /** Enable fs-verity (always tried), then check the kernel's measurement matches `id`. */
  #sealObject(ro: BorrowedFd, id: Uint8Array, path: string): void {
    const kid = kernelHashId(this.algorithm);
    let r = enableVerity(ro, kid);
    for (let i = 0; r === "busy" && i < VERITY_BUSY_RETRIES; i++) r = enableVerity(ro, kid);
    if (r === "unsupported" || r === "busy") {
      if (r === "unsupported") this.#verityUnsupported = true;
      if (this.insecure) return;
      if (r === "busy") {
        throw new ErrnoError("ioctl(FS_IOC_ENABLE_VERITY)", ERRNO.ETXTBSY, `objects/${path}`);
      }
      throw new VerityUnsupportedError(`${this.path}/objects/${path}`, " (repository requires it)");
    }
    const m = measureVerity(ro, kid);
    if (m.kind === "measured") {
      if (!idEqual(m.digest, id)) throw new ObjectDigestMismatchError(path, toHex(m.digest));
    } else if (!this.insecure) throw new VerityMissingError(path);
  }

  // ---------------------------------------------------------------- objects

  /** Start writing a new object (hashed while written). Dispose without `finish()` to abort. */
  createObjectWriter(): ObjectWriter {
    this.#assertWritable();
    this.#unsynced = true;
    return new ObjectWriter(this.#sink());
  }

  /** Store in-memory bytes as an object (composefs-rs `ensure_object`); returns its ID. */
  storeObject(data: Uint8Array): Uint8Array {
    this.#assertWritable();
    this.#unsynced = true;
    const id = fsverityDigest(data, this.algorithm);
    if (this.hasObject(id)) {
      // Secure mode: an existing object must carry the right fs-verity digest (openObject checks).
      if (!this.insecure) this.openObject(id).close();
      return id;
    }
    using w = new ObjectWriter(this.#sink(), { expectedId: id, modes: IN_MEMORY_MODES });
    w.write(data);
    w.finish();
    return id;
  }

  /**
   * Store the content of an open file: FICLONE into an O_TMPFILE, else a hardlink (when
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
    opts: {
      allowReflink?: boolean;
      allowHardlink?: boolean;
      allowCopy?: boolean;
      knownId?: Uint8Array;
      trustedId?: Uint8Array;
      stableSource?: boolean;
      tap?: (chunk: Uint8Array) => void;
    } = {},
  ): { id: Uint8Array; method: StoreMethod; tapped: boolean } {
    this.#assertWritable();
    this.#unsynced = true;
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
      const tmp = this.#cloneToTmpfile(src, srcDev, objects);
      if (tmp) {
        // A clone shares the source's extents, not its page cache: hash whichever is
        // safe and cheap to read (a secure repository re-measures the clone when sealing).
        const id = trusted ??
          fsverityDigestFd(opts.stableSource ? src : tmp, this.algorithm, opts.tap);
        using w = new ObjectWriter(this.#sink(), { expectedId: id, fd: tmp });
        const r = w.finish();
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
      const linkable = this.insecure || (() => {
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
          if (!isErrno(e, "EXDEV", "EPERM", "EACCES", "ENOENT", "EMLINK")) throw e;
        }
      }
    }
    if (!allowCopy) throw new CopyNotAllowedError();
    // When the hardlink attempt already hashed (and tapped) the bytes, or the id is trusted,
    // copy without re-hashing.
    knownDigest ??= trusted;
    using w = new ObjectWriter(this.#sink(), knownDigest ? { expectedId: knownDigest } : {});
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
    opts: { allowReflink?: boolean; allowHardlink?: boolean; allowCopy?: boolean } = {},
  ): StoreMethod {
    this.#assertWritable();
    this.#unsynced = true;
    if (id.length !== digestSize(this.algorithm)) {
      throw new RangeError(`Trusted object id has ${id.length} bytes for ${this.algorithm}`);
    }
    const path = objectPathOf(id);
    const rest = path.slice(3);
    const fromDev = this.#deviceOf(from);
    const sameFs = fromDev === this.objectsDevice();
    // Reflinks are tried across st_dev too (btrfs subvolumes share extents); a failure is
    // remembered for the device, as in storeObjectFromFile.
    const canReflink = (opts.allowReflink ?? true) && !this.#forceNamed &&
      !this.#noReflinkFrom.has(fromDev);
    // Hardlinks by name need no open, but share the inode: only where nothing has to be
    // sealed (an insecure repository); a secure one takes the measured path below.
    if (!canReflink && opts.allowHardlink && sameFs && this.insecure) {
      try {
        linkAt(from, path, this.#objectSubdir(id[0], true)!, rest);
        return "hardlinked";
      } catch (e) {
        if (isErrno(e, "EEXIST")) return "present";
        if (isErrno(e, "ENOENT")) throw new ObjectNotFoundError(path, { cause: e });
        if (!isErrno(e, "EXDEV", "EPERM", "EACCES", "EMLINK")) throw e;
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
      const tmp = this.#cloneToTmpfile(src, fromDev, this.#objectSubdir(id[0], true)!);
      if (tmp) {
        using w = new ObjectWriter(this.#sink(), { expectedId: id, fd: tmp });
        return w.finish().present ? "present" : "reflinked";
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
   * FICLONE `src` (on device `srcDev`) into a new O_TMPFILE in `dir`, or undefined when that
   * cannot work here. Like composefs-rs, a device that cannot reflink into this repository
   * (EOPNOTSUPP/EXDEV) is remembered: no tmpfile and failing ioctl per object from then on.
   */
  #cloneToTmpfile(src: BorrowedFd, srcDev: bigint, dir: BorrowedFd): OwnedFd | undefined {
    if (this.#forceNamed || this.#noReflinkFrom.has(srcDev)) return undefined;
    let tmp: OwnedFd | undefined;
    try {
      tmp = openTmpfile(dir, ".", 0o644);
      ficlone(tmp, src);
      return tmp;
    } catch (e) {
      tmp?.close();
      if (!isErrno(e, "EOPNOTSUPP", "EXDEV", "EINVAL", "ENOTTY", "EISDIR", "EBADF", "ENOSYS")) {
        throw e;
      }
      if (isErrno(e, "EOPNOTSUPP", "EXDEV", "ENOTTY", "ENOSYS")) this.#noReflinkFrom.add(srcDev);
      return undefined;
    }
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

  /** True when `objects/XX/<rest>` exists. */
  hasObject(id: Uint8Array): boolean {
    this.#assertOpen();
    const sub = this.#objectSubdir(id[0], false);
    if (!sub) return false;
    return lstatAtIfExists(sub, toHex(id).slice(2)) !== null;
  }

  /** Size of the object `id` without opening it (null when absent). */
  objectSize(id: Uint8Array): number | null {
    this.#assertOpen();
    const sub = this.#objectSubdir(id[0], false);
    if (!sub) return null;
    return lstatAtIfExists(sub, toHex(id).slice(2))?.size ?? null;
  }

  /** Open an object read-only; in secure mode its fs-verity digest must match. */
  openObject(id: Uint8Array): OwnedFd {
    this.#assertOpen();
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
      } else if (!this.insecure) throw new VerityMissingError(path);
      return fd;
    } catch (e) {
      fd.close();
      throw e;
    }
  }

  /** `XX/<rest>` for an ID. */
  objectPath(id: Uint8Array): string {
    return objectPathOf(id);
  }

  /**
   * The `objects/` directory, borrowed: it stays the repository's and is closed with it (a
   * caller's `using` cannot close it; take {@link BorrowedFd.dup} to keep one beyond the
   * repository). Created when missing.
   */
  objectsDirFd(): BorrowedFd {
    this.#assertOpen();
    const fd = this.#objectsDir(this.writable);
    if (!fd) throw new ObjectNotFoundError("objects/");
    return fd.borrow();
  }

  /** st_dev of `objects/` (for same-filesystem hardlink decisions). */
  objectsDevice(): bigint {
    // Without objects/ yet (a fresh repository), its device is the repository root's: stat
    // the root rather than create objects/ as a side effect of asking.
    const objects = this.#objectsDir(false);
    return objects ? this.#deviceOf(objects) : fstat(this.#root).dev;
  }

  // ---------------------------------------------------------------- symlinks

  /** Create or atomically re-point symlink `linkPath` → `targetPath` (repository-relative). */
  #symlink(linkPath: string, targetPath: string): void {
    const target = relativeSymlinkTarget(linkPath, targetPath);
    const parts = linkPath.split("/");
    const base = parts.pop()!;
    // images/ is made like objects/ (0777 before umask); streams/ and refs trees 0755 (§1.6).
    if (parts[0] === "images") this.#openDirChain(["images"], true, OBJECTS_DIR_MODE)!.close();
    using dir = this.#openDirChain(parts, true)!;
    try {
      symlinkAt(target, dir, base);
      return;
    } catch (e) {
      if (!isErrno(e, "EEXIST")) throw e;
    }
    try {
      if (readlinkAt(dir, base) === target) return;
    } catch (e) {
      if (!isErrno(e, "EINVAL")) throw e; // EINVAL: not a symlink; replaced below
    }
    for (let i = 0; i < SYMLINK_TMP_ATTEMPTS; i++) {
      const tmp = `.symlink-${randomSuffix()}`;
      try {
        symlinkAt(target, this.#root, tmp);
      } catch (e) {
        if (isErrno(e, "EEXIST")) continue;
        throw e;
      }
      try {
        renameAt(this.#root, tmp, dir, base);
        return;
      } catch (e) {
        unlinkAt(this.#root, tmp);
        throw e;
      }
    }
    throw new ErrnoError("symlinkat", ERRNO.EEXIST, ".symlink-*");
  }

  /** Read first-level `category/name` and parse its `../objects/XX/<rest>` target. */
  #firstLevelTarget(category: "streams" | "images", name: string): Uint8Array | null {
    using dir = this.#openDirChain([category], false);
    if (!dir) return null;
    let target: string;
    try {
      target = readlinkAt(dir, name);
    } catch (e) {
      if (isErrno(e, "ENOENT")) return null;
      if (isErrno(e, "EINVAL")) {
        throw new RepositoryCorruptError(`${category}/${name}`, "not a symlink", { cause: e });
      }
      throw e;
    }
    if (!target.startsWith("../")) {
      throw new RepositoryCorruptError(`${category}/${name}`, `unexpected target "${target}"`);
    }
    try {
      return parseObjectLinkTarget(target, this.algorithm);
    } catch (e) {
      throw new RepositoryCorruptError(`${category}/${name}`, `unexpected target "${target}"`, {
        cause: e,
      });
    }
  }

  /** Resolve a ref below `category/refs/` to the first-level entry name it points at. */
  #resolveRef(category: "streams" | "images", ref: string): string | null {
    const parts = refComponents(ref);
    const base = parts.pop()!;
    using dir = this.#openDirChain([category, "refs", ...parts], false);
    if (!dir) return null;
    let target: string;
    try {
      target = readlinkAt(dir, base);
    } catch (e) {
      if (isErrno(e, "ENOENT")) return null;
      if (isErrno(e, "EINVAL")) {
        throw new RepositoryCorruptError(`${category}/refs/${ref}`, "not a symlink", { cause: e });
      }
      throw e;
    }
    const linkPath = [category, "refs", ...parts, base].join("/");
    const resolved = resolveLinkTarget(linkPath, target);
    const prefix = `${category}/`;
    if (!resolved || !resolved.startsWith(prefix) || resolved.slice(prefix.length).includes("/")) {
      throw new RepositoryCorruptError(linkPath, `target "${target}" is not a ${category}/ entry`);
    }
    return resolved.slice(prefix.length);
  }

  // ---------------------------------------------------------------- streams

  /**
   * Store a splitstream as an object without naming it (name it later with
   * {@link linkStreamObject}, after the rest of a batch): it is parsed, and every object and
   * stream it references must already exist.
   *
   * @throws {StreamMismatchError} for a malformed splitstream.
   * @throws {ObjectNotFoundError} for a missing reference.
   */
  storeStream(splitstream: Uint8Array, name = "splitstream"): Uint8Array {
    this.#assertWritable();
    const parsed = this.#parse(splitstream, name);
    for (const ref of [...parsed.objectRefs, ...parsed.streamRefs]) {
      if (!this.hasObject(ref)) throw new ObjectNotFoundError(objectPathOf(ref));
    }
    return this.storeObject(splitstream);
  }

  /**
   * Store a splitstream and name it `streams/<contentId>` (and `streams/refs/<refName>`).
   * Order (DESIGN 9): every referenced object must already exist; the splitstream object is
   * stored, the filesystem synced, then the links are created.
   */
  writeStream(contentId: string, splitstream: Uint8Array, refName?: string): Uint8Array {
    this.#assertWritable();
    validateEntryName(contentId);
    if (refName !== undefined) refComponents(refName);
    const id = this.storeStream(splitstream, contentId);
    this.#syncIfUnsynced();
    this.#symlink(`streams/${contentId}`, `objects/${objectPathOf(id)}`);
    if (refName !== undefined) {
      using streams = this.#openDirChain(["streams"], false)!;
      fsync(streams);
      this.#symlink(`streams/refs/${refName}`, `streams/${contentId}`);
    }
    return id;
  }

  /**
   * Name an already stored splitstream object `streams/<contentId>` (a stream brought over
   * whole by a local copy, with every object it references). The filesystem is synced first,
   * so the name never points at anything not durable (DESIGN 9).
   *
   * @throws {ObjectNotFoundError} when the object is absent.
   */
  linkStreamObject(contentId: string, id: Uint8Array): void {
    this.#assertWritable();
    validateEntryName(contentId);
    if (!this.hasObject(id)) throw new ObjectNotFoundError(objectPathOf(id));
    this.#syncIfUnsynced();
    this.#symlink(`streams/${contentId}`, `objects/${objectPathOf(id)}`);
  }

  /** The splitstream object ID named `streams/<contentId>`, or null. */
  hasStream(contentId: string): Uint8Array | null {
    this.#assertOpen();
    validateEntryName(contentId);
    return this.#firstLevelTarget("streams", contentId);
  }

  #streamId(nameOrRef: string): Uint8Array {
    let cid = nameOrRef;
    if (nameOrRef.startsWith("refs/")) {
      const r = this.#resolveRef("streams", nameOrRef.slice("refs/".length));
      if (r === null) throw new NotFoundError("stream", nameOrRef);
      cid = r;
    }
    const id = this.hasStream(cid);
    if (!id) throw new NotFoundError("stream", nameOrRef);
    return id;
  }

  #parse(bytes: Uint8Array, name: string, expectedContentType?: bigint): ParsedSplitstream {
    try {
      return parseSplitstream(bytes, this.algorithm, expectedContentType);
    } catch (e) {
      if (e instanceof SplitstreamError) {
        throw new StreamMismatchError(name, e.message, { cause: e });
      }
      throw e;
    }
  }

  /** Read and parse a stream by content id or `refs/<name>`; optionally check its content type. */
  readStream(nameOrRef: string, expectedContentType?: bigint): ParsedSplitstream {
    this.#assertOpen();
    const id = this.#streamId(nameOrRef);
    return this.readStreamObject(id, nameOrRef, expectedContentType);
  }

  /** Parse the splitstream object `id` (the verity-addressed form of {@link readStream}). */
  readStreamObject(
    id: Uint8Array,
    name: string = toHex(id),
    expectedContentType?: bigint,
  ): ParsedSplitstream {
    using fd = this.openObject(id);
    return this.#parse(readAllAt(fd), name, expectedContentType);
  }

  /** The reassembled bytes of a stream (inline data and external objects, in order). */
  catStream(nameOrRef: string): ReadableStream<Uint8Array> {
    const parsed = this.readStream(nameOrRef);
    const chunks = parsed.chunks()[Symbol.iterator]();
    let cur: OwnedFd | undefined;
    let off = 0;
    const buf = new Uint8Array(COPY_CHUNK);
    return new ReadableStream<Uint8Array>({
      pull: (ctl) => {
        try {
          for (;;) {
            if (cur) {
              const n = pread(cur, buf, off);
              if (n > 0) {
                off += n;
                ctl.enqueue(buf.slice(0, n));
                return;
              }
              cur.close();
              cur = undefined;
            }
            const next = chunks.next();
            if (next.done) {
              ctl.close();
              return;
            }
            const c = next.value;
            if ("inline" in c) {
              if (c.inline.length === 0) continue;
              ctl.enqueue(c.inline);
              return;
            }
            cur = this.openObject(c.external);
            off = 0;
          }
        } catch (e) {
          cur?.close();
          cur = undefined;
          chunks.return?.();
          throw e;
        }
      },
      cancel: () => {
        cur?.close();
        cur = undefined;
        chunks.return?.();
      },
    }, { highWaterMark: 0 });
  }

  /** Point `streams/refs/<refName>` at existing stream `streams/<contentId>`. */
  nameStream(contentId: string, refName: string): void {
    this.#assertWritable();
    refComponents(refName);
    if (!this.hasStream(contentId)) throw new NotFoundError("stream", contentId);
    this.#symlink(`streams/refs/${refName}`, `streams/${contentId}`);
  }

  /** Remove `streams/refs/<refName>` (the stream itself stays until GC). */
  removeStreamRef(refName: string): void {
    this.#assertWritable();
    const parts = refComponents(refName);
    const base = parts.pop()!;
    using dir = this.#openDirChain(["streams", "refs", ...parts], false);
    if (!dir) throw new NotFoundError("ref", refName);
    try {
      const st = lstatAt(dir, base);
      if ((st.mode & C.S_IFMT) !== C.S_IFLNK) {
        throw new RepositoryCorruptError(`streams/refs/${refName}`, "not a symlink");
      }
      unlinkAt(dir, base);
    } catch (e) {
      if (isErrno(e, "ENOENT")) throw new NotFoundError("ref", refName, { cause: e });
      throw e;
    }
  }

  /** Refs below `streams/refs/<prefix>` (recursive), sorted by name. */
  listStreamRefs(prefix: string): RefEntry[] {
    this.#assertOpen();
    const parts = prefix === "" ? [] : refComponents(prefix.replace(/\/+$/, ""));
    return this.#listRefs("streams", parts);
  }

  #listRefs(category: "streams" | "images", parts: string[]): RefEntry[] {
    const out: RefEntry[] = [];
    using dir = this.#openDirChain([category, "refs", ...parts], false);
    if (!dir) return out;
    const walk = (d: BorrowedFd, rel: string[]) => {
      for (const ent of readDir(d)) {
        const name = [...rel, ent.name];
        if (ent.type === DT.DIR) {
          using sub = openBeneath(d, ent.name, { flags: C.O_RDONLY | C.O_DIRECTORY });
          walk(sub, name);
        } else if (ent.type === DT.LNK) {
          out.push({ name: name.join("/"), target: readlinkAt(d, ent.name) });
        }
      }
    };
    walk(dir, parts);
    out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return out;
  }

  // ---------------------------------------------------------------- images

  /** Store an EROFS image: object, `images/<hex>`, and `images/refs/<name>` when named. */
  writeImage(bytes: Uint8Array, name?: string): Uint8Array {
    this.#assertWritable();
    if (name !== undefined) refComponents(name);
    const id = this.storeObject(bytes);
    this.#syncIfUnsynced();
    const hex = toHex(id);
    this.#symlink(`images/${hex}`, `objects/${objectPathOf(id)}`);
    if (name !== undefined) {
      using images = this.#openDirChain(["images"], false)!;
      fsync(images);
      this.#symlink(`images/refs/${name}`, `images/${hex}`);
    }
    return id;
  }

  /**
   * Name an already stored EROFS object `images/<hex>` (an image brought over whole by a
   * local copy). The filesystem is synced first (DESIGN 9).
   *
   * @throws {ObjectNotFoundError} when the object is absent.
   */
  linkImageObject(id: Uint8Array): void {
    this.#assertWritable();
    if (!this.hasObject(id)) throw new ObjectNotFoundError(objectPathOf(id));
    this.#syncIfUnsynced();
    this.#symlink(`images/${toHex(id)}`, `objects/${objectPathOf(id)}`);
  }

  /** Resolve an image name (hex digest, `refs/<name>`, or a bare ref name) to its ID. */
  imageId(name: string): Uint8Array {
    this.#assertOpen();
    let entry: string | null = null;
    if (name.startsWith("refs/")) entry = this.#resolveRef("images", name.slice("refs/".length));
    else if (!name.includes("/")) {
      validateEntryName(name);
      entry = this.#firstLevelTarget("images", name) ? name : this.#resolveRef("images", name);
    } else throw new NotFoundError("image", name);
    if (entry === null) throw new NotFoundError("image", name);
    const id = this.#firstLevelTarget("images", entry);
    if (!id) throw new NotFoundError("image", name);
    if (!name.startsWith("refs/") && entry === name && toHex(id) !== name.toLowerCase()) {
      throw new ObjectDigestMismatchError(`images/${name}`, toHex(id));
    }
    return id;
  }

  /** Open an image by name (see {@link imageId}); verified like any object. */
  openImage(name: string): OwnedFd {
    return this.openObject(this.imageId(name));
  }

  /** Named images (`images/refs/**`) with their IDs. */
  listImages(): ImageEntry[] {
    this.#assertOpen();
    const out: ImageEntry[] = [];
    for (const r of this.#listRefs("images", [])) {
      const entry = this.#resolveRef("images", r.name);
      const id = entry === null ? null : this.#firstLevelTarget("images", entry);
      if (id) out.push({ name: r.name, id });
    }
    return out;
  }

  /** Objects an image references (its `trusted.overlay.redirect` targets). */
  imageObjects(name: string): Uint8Array[] {
    using fd = this.openImage(name);
    return imageObjectRefs(readAllAt(fd), this.algorithm);
  }

  // ---------------------------------------------------------------- maintenance

  /** syncfs(2) on the repository's filesystem. */
  sync(): void {
    this.#assertOpen();
    syncfs(this.#root);
    this.#unsynced = false;
  }

  /** Sync before a name when an object may have been stored since the last sync. */
  #syncIfUnsynced(): void {
    if (this.#unsynced) this.sync();
  }

  #internals(): RepositoryInternals {
    return {
      root: this.#root,
      objectsDirIfExists: () => this.#objectsDir(false),
      openDirIfExists: (rel) => this.#openDirChain(rel.split("/"), false),
      firstLevelTarget: (c, n) => this.#firstLevelTarget(c, n),
      lockExclusive: () => flock(this.#root, "exclusive", true),
      lockShared: () => {
        flock(this.#root, "shared", false);
      },
    };
  }

  /** Mark and sweep (repository-format §1.9). Needs the repository exclusively unless dry-run. */
  gc(opts: GcOptions = {}): GcReport {
    if (opts.dryRun) this.#assertOpen();
    else this.#assertWritable();
    const internals = this.#internals();
    if (!opts.dryRun && !internals.lockExclusive()) throw new RepositoryBusyError(this.path);
    try {
      return collectGarbage(this, internals, opts);
    } finally {
      if (!opts.dryRun) internals.lockShared();
    }
  }

  /** Check objects, streams, images and links (repository-format §1.10). */
  fsck(opts: FsckOptions = {}): FsckReport {
    this.#assertOpen();
    return checkRepository(this, this.#internals(), opts);
  }

  /** Release the lock and every fd. */
  [Symbol.dispose](): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const fd of this.#subdirs.values()) fd.close();
    this.#subdirs.clear();
    this.#objects?.close();
    this.#objects = undefined;
    this.#root.close();
  }

  /** Same as dispose. */
  close(): void {
    this[Symbol.dispose]();
  }
}

function exists(dir: BorrowedFd, name: string): boolean {
  try {
    lstatAt(dir, name);
    return true;
  } catch (e) {
    if (isErrno(e, "ENOENT")) return false;
    throw e;
  }
}

function readMetaBytes(root: BorrowedFd): Uint8Array | null {
  let fd: OwnedFd;
  try {
    fd = openBeneath(root, META_JSON, { flags: C.O_RDONLY });
  } catch (e) {
    if (isErrno(e, "ENOENT")) return null;
    if (isErrno(e, "ELOOP")) throw new UnsafeRepositoryEntryError(META_JSON, { cause: e });
    throw e;
  }
  using _ = fd;
  return readAllAt(fd);
}

/** Open the repository directory and re-check permission on its real path (symlinked paths). */
async function openRootChecked(abs: string, access: "read" | "write"): Promise<OwnedFd> {
  const root = openDir(abs);
  try {
    const real = fdPath(root);
    if (real !== abs) {
      await requirePermission(real, access);
      if (access === "write") await requirePermission(real, "read");
    }
    return root;
  } catch (e) {
    root.close();
    throw e;
  }
}

/**
 * Write meta.json for a pre-meta.json repository: the algorithm comes from the first object
 * name of 62 (sha256) or 126 (sha512) hex characters. Like composefs-rs (`RepoMetadata::new`)
 * the result is V1 + `v1_erofs`, so both implementations agree on the upgraded file.
 */
function upgradeLegacy(root: BorrowedFd, abs: string): void {
  using objects = openBeneath(root, "objects", { flags: C.O_RDONLY | C.O_DIRECTORY });
  let alg: HashAlgorithm | undefined;
  let sample: { dir: string; name: string } | undefined;
  outer: for (const d of readDir(objects).sort((a, b) => a.name < b.name ? -1 : 1)) {
    if (d.type !== DT.DIR || !/^[0-9a-f]{2}$/.test(d.name)) continue;
    using sub = openBeneath(objects, d.name, { flags: C.O_RDONLY | C.O_DIRECTORY });
    for (const f of readDir(sub)) {
      if (f.name.length === 62) alg = "sha256";
      else if (f.name.length === 126) alg = "sha512";
      else continue;
      sample = { dir: d.name, name: f.name };
      break outer;
    }
  }
  if (!alg || !sample) {
    throw new OldFormatRepositoryError(abs, "no objects found to infer the algorithm from");
  }
  parseObjectEntry(sample.dir, sample.name, alg);
  // Probe: a legacy object with fs-verity means the repository was secure.
  using obj = openBeneath(objects, `${sample.dir}/${sample.name}`, { flags: C.O_RDONLY });
  const secure = measureVerity(obj, kernelHashId(alg)).kind === "measured";
  writeMetaJson(root, abs, newRepoMetadata(alg), secure);
}

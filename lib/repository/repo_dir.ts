/**
 * The repository directory itself (repository-format §1.1, §1.2, §1.8): its fd, opened with the
 * permission checks DESIGN 7 asks for, the parsed `meta.json`, the lock, the durability barrier
 * between objects and the names that point at them, and safe directory walks beneath the root.
 *
 * Every file operation goes through the root fd with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS): a symlink planted
 * anywhere inside (e.g. `objects/` → `/etc`) is refused, never followed.
 *
 * @module
 */

import { resolve as resolvePath } from "node:path";
import * as C from "../../ffi/constants.ts";
import { isErrno } from "../../ffi/errno.ts";
import {
  DT,
  fdPath,
  flock,
  fstat,
  fstatfs,
  fsync,
  lstatAtIfExists,
  mkdirAt,
  openBeneath,
  openDir,
  readDir,
  syncfs,
  unlinkAt,
} from "../../ffi/fs.ts";
import { measureVerity } from "../../ffi/fsverity_ioctl.ts";
import type { BorrowedFd, OwnedFd } from "../../ffi/owned_fd.ts";
import { type HashAlgorithm, kernelHashId } from "../fsverity/algorithm.ts";
import {
  MetadataMissingError,
  OldFormatRepositoryError,
  RepositoryBusyError,
  RepositoryExistsError,
  RepositoryReadOnlyError,
  UnsafeRepositoryEntryError,
  VerityMissingError,
} from "./errors.ts";
import {
  checkMetadata,
  type ErofsFormatVersion,
  META_JSON,
  metadataEqual,
  newRepoMetadata,
  parseRepoMetadata,
  type RepoMetadata,
  unknownReadOnlyFeatures,
} from "./meta.ts";
import { readMetaBytes, upgradeLegacy, writeMetaJson } from "./meta_file.ts";
import { requirePermission } from "./permissions.ts";

/** Mode of a repository directory created by init (composefs-rs: 0700). */
const REPO_DIR_MODE = 0o700;
/** Directories made beneath the root unless a caller says otherwise (§1.6: 0755). */
const DIR_MODE = 0o755;
/** Poll interval while waiting for the repository lock (flock would block the JS thread). */
const LOCK_POLL_MS = 20;
/** statfs f_flags bit for a read-only mount (ST_RDONLY, sys/statvfs.h). */
const ST_RDONLY = 1;

/** Options of `Repository.init`. */
export interface InitOptions {
  /** fs-verity algorithm of object IDs. */
  algorithm: HashAlgorithm;
  /** Do not require fs-verity (meta.json is written without it). */
  insecure?: boolean;
  /** EROFS formats (default: `{default: 1}`, like composefs-rs). */
  erofsFormats?: { default: ErofsFormatVersion; extra?: number[] };
}

/** Options of `Repository.open`. */
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

/**
 * An open repository directory: root fd, metadata, lock and sync state. Objects and links are
 * kept by `ObjectStore` and `LinkStore` on top of it; `Repository` puts the three together.
 */
export class RepoDir implements Disposable {
  /** Absolute path the repository was opened at. */
  readonly path: string;
  /** The parsed meta.json. */
  readonly meta: RepoMetadata;
  /** fs-verity algorithm of object IDs. */
  readonly algorithm: HashAlgorithm;
  /** True when fs-verity is not required (meta.json lacks it, or `insecure` was asked for). */
  readonly insecure: boolean;
  /** Opened for writing. */
  readonly writable: boolean;

  #root: OwnedFd;
  #closed = false;
  /**
   * An object may have been stored (or found present, possibly written by another process)
   * since the last sync: the next name must sync first (DESIGN 9). Names created back to
   * back after one batch of objects then cost one sync, not one each.
   */
  #unsynced = true;

  private constructor(
    path: string,
    root: OwnedFd,
    meta: RepoMetadata,
    insecure: boolean,
    writable: boolean,
  ) {
    this.path = path;
    this.#root = root;
    this.meta = meta;
    this.algorithm = meta.algorithm;
    this.insecure = insecure;
    this.writable = writable;
  }

  /**
   * Create the directory (and parents) and write `meta.json`; an identical existing
   * configuration is accepted, a different one is an error. True when meta.json was written now.
   */
  static async create(path: string, opts: InitOptions): Promise<boolean> {
    const abs = resolvePath(path);
    await requirePermission(abs, "write");
    await requirePermission(abs, "read");
    await Deno.mkdir(abs, { recursive: true, mode: REPO_DIR_MODE });
    const meta = newRepoMetadata(opts.algorithm, opts.erofsFormats ?? { default: 1 });
    using root = await openRootChecked(abs, "write");
    await lockSharedAsync(root);
    const existing = readMetaBytes(root);
    if (existing) {
      if (!metadataEqual(parseRepoMetadata(existing), meta)) throw new RepositoryExistsError(abs);
      return false;
    }
    try {
      writeMetaJson(root, abs, meta, !opts.insecure);
      return true;
    } catch (e) {
      if (!isErrno(e, "EEXIST")) throw e;
      // A concurrent init won the race: accept it only if it wrote the same configuration.
      const old = parseRepoMetadata(readMetaBytes(root)!);
      if (!metadataEqual(old, meta)) throw new RepositoryExistsError(abs);
      return false;
    }
  }

  /**
   * Delete `streams/`, `images/` and `meta.json`, keeping `objects/` (`init --reset-metadata`).
   * Needs write permission and nobody else using the repository.
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
   * Open an existing repository and take the shared lock. Without meta.json but with
   * `objects/`, a writable open upgrades it (infers the algorithm from object names) unless
   * `noUpgrade`.
   */
  static async open(
    path: string,
    opts: OpenOptions = {},
  ): Promise<{ dir: RepoDir; upgraded: boolean }> {
    const abs = resolvePath(path);
    if (opts.write) await requirePermission(abs, "write");
    await requirePermission(abs, "read");
    const root = await openRootChecked(abs, opts.write ? "write" : "read");
    let upgraded = false;
    try {
      await lockSharedAsync(root);
      let bytes = readMetaBytes(root);
      if (!bytes) {
        if (!lstatAtIfExists(root, "objects")) throw new MetadataMissingError(abs);
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
      const dir = new RepoDir(abs, root, meta, repoInsecure || !!opts.insecure, !!opts.write);
      return { dir, upgraded };
    } catch (e) {
      root.close();
      throw e;
    }
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** @throws {TypeError} once closed. */
  assertOpen(): void {
    if (this.#closed) throw new TypeError("Repository is closed");
  }

  /** @throws {RepositoryReadOnlyError} unless opened for writing (and still open). */
  assertWritable(): void {
    this.assertOpen();
    if (!this.writable) throw new RepositoryReadOnlyError(this.path, "opened read-only");
  }

  /** The root directory fd (borrowed: the repository closes it). */
  get root(): BorrowedFd {
    this.assertOpen();
    return this.#root.borrow();
  }

  /** `st_dev` of the root directory. */
  device(): bigint {
    return fstat(this.root).dev;
  }

  /**
   * Open the chain of directories `parts` beneath the root, creating each (with `mode`) when
   * `create`; null when one is missing and not `create`. A symlink or non-directory on the way
   * is an {@link UnsafeRepositoryEntryError}. The caller owns the result.
   */
  openDir(parts: readonly string[], create: boolean, mode: number = DIR_MODE): OwnedFd | null {
    let cur = this.root.dup();
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

  /** syncfs(2) on the repository's filesystem. */
  sync(): void {
    syncfs(this.root);
    this.#unsynced = false;
  }

  /** Note that an object may have been stored: the next name syncs first. */
  markUnsynced(): void {
    this.#unsynced = true;
  }

  /** Sync before a name when an object may have been stored since the last sync (DESIGN 9). */
  syncIfUnsynced(): void {
    if (this.#unsynced) this.sync();
  }

  /**
   * Take the lock exclusively (GC: nobody else may have the repository open, §1.8); false when
   * another holder has it. Give it back with {@link RepoDir.lockShared}.
   */
  tryLockExclusive(): boolean {
    return flock(this.root, "exclusive", true);
  }

  /** Go back to the shared lock every open repository holds. */
  lockShared(): void {
    flock(this.root, "shared", false);
  }

  /** Release the lock and the root fd. */
  [Symbol.dispose](): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#root.close();
  }
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Take the shared repository lock without blocking the JS thread. */
async function lockSharedAsync(fd: BorrowedFd): Promise<void> {
  while (!flock(fd, "shared", true)) await sleep(LOCK_POLL_MS);
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

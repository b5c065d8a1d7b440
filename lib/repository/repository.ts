/**
 * The composefs repository (repository-format §1): a façade over its three parts —
 * {@link RepoDir} (the directory fd, `meta.json`, locking, syncing), {@link ObjectStore}
 * (`objects/`, writes and zero-copy imports) and {@link LinkStore} (`streams/`, `images/` and
 * their `refs/`) — plus GC and fsck, which work on those parts.
 *
 * Every file operation goes through the repository's directory fd with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) (DESIGN 7): a symlink
 * planted anywhere inside (e.g. `objects/` → `/etc`) is refused, never followed.
 *
 * @module
 */

import type { BorrowedFd, OwnedFd } from "../../ffi/owned_fd.ts";
import type { HashAlgorithm } from "../fsverity/algorithm.ts";
import { checkRepository, type FsckOptions, type FsckReport } from "./fsck.ts";
import { collectGarbage, type GcOptions, type GcReport } from "./gc.ts";
import { type ImageEntry, LinkStore, type RefEntry } from "./link_store.ts";
import type { RepoMetadata } from "./meta.ts";
import { objectPathOf } from "./object_id.ts";
import {
  type ObjectImportOptions,
  ObjectStore,
  type StoreFromFileOptions,
  type StoreMethod,
} from "./object_store.ts";
import type { ObjectWriter } from "./object_writer.ts";
import { type InitOptions, type OpenOptions, RepoDir } from "./repo_dir.ts";
import type { Splitstream } from "./splitstream.ts";

export type {
  ImageEntry,
  InitOptions,
  ObjectImportOptions,
  OpenOptions,
  RefEntry,
  StoreFromFileOptions,
  StoreMethod,
};

/** A parsed splitstream as returned by {@link Repository.readStream}. */
export type ParsedSplitstream = Splitstream;

/** What `init` did: created a new repository or found an identical one. */
export interface InitResult {
  /** The opened repository. */
  repository: Repository;
  /** True when meta.json was written now. */
  created: boolean;
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

  #dir: RepoDir;
  #objects: ObjectStore;
  #links: LinkStore;

  private constructor(dir: RepoDir, forceNamedTmpfile: boolean) {
    this.#dir = dir;
    this.#objects = new ObjectStore(dir, { forceNamedTmpfile });
    this.#links = new LinkStore(dir, this.#objects);
    this.path = dir.path;
    this.meta = dir.meta;
    this.algorithm = dir.algorithm;
    this.insecure = dir.insecure;
    this.writable = dir.writable;
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
    const created = await RepoDir.create(path, opts);
    const repository = await Repository.open(path, { write: true, insecure: opts.insecure });
    return { repository, created };
  }

  /**
   * Delete `streams/`, `images/` and `meta.json`, keeping `objects/` (`init --reset-metadata`).
   * Needs write permission.
   */
  static async resetMetadata(path: string): Promise<void> {
    await RepoDir.resetMetadata(path);
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
    const { dir, upgraded } = await RepoDir.open(path, opts);
    return { repository: new Repository(dir, !!opts.forceNamedTmpfile), upgraded };
  }

  // ---------------------------------------------------------------- objects

  /** Start writing a new object (hashed while written). Dispose without `finish()` to abort. */
  createObjectWriter(): ObjectWriter {
    return this.#objects.createObjectWriter();
  }

  /** Store in-memory bytes as an object (composefs-rs `ensure_object`); returns its ID. */
  storeObject(data: Uint8Array): Uint8Array {
    return this.#objects.storeObject(data);
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
    return this.#objects.storeObjectFromFile(src, opts);
  }

  /**
   * Bring the object `id` of another repository of this algorithm into this one under the
   * same name, unread: `from` is that repository's `objects/` directory (see
   * {@link Repository.objectsDirFd}), whose names are the digests of their contents. Reflink,
   * else hardlink, else copy, as allowed (DESIGN 8); an object already here counts as present.
   *
   * @throws {ObjectNotFoundError} when `from` lacks the object.
   * @throws {CopyNotAllowedError} when neither link works and copying is not allowed.
   */
  importTrustedObject(
    from: BorrowedFd,
    id: Uint8Array,
    opts: ObjectImportOptions = {},
  ): StoreMethod {
    return this.#objects.importTrustedObject(from, id, opts);
  }

  /** True when `objects/XX/<rest>` exists. */
  hasObject(id: Uint8Array): boolean {
    return this.#objects.hasObject(id);
  }

  /** Size of the object `id` without opening it (null when absent). */
  objectSize(id: Uint8Array): number | null {
    return this.#objects.objectSize(id);
  }

  /** Open an object read-only (the caller owns the fd); in secure mode its fs-verity must match. */
  openObject(id: Uint8Array): OwnedFd {
    return this.#objects.openObject(id);
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
    return this.#objects.objectsDirFd();
  }

  /** st_dev of `objects/` (for same-filesystem hardlink decisions). */
  objectsDevice(): bigint {
    return this.#objects.objectsDevice();
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
    return this.#links.storeStream(splitstream, name);
  }

  /**
   * Store a splitstream and name it `streams/<contentId>` (and `streams/refs/<refName>`).
   * Order (DESIGN 9): every referenced object must already exist; the splitstream object is
   * stored, the filesystem synced, then the links are created.
   */
  writeStream(contentId: string, splitstream: Uint8Array, refName?: string): Uint8Array {
    return this.#links.writeStream(contentId, splitstream, refName);
  }

  /**
   * Name an already stored splitstream object `streams/<contentId>` (a stream brought over
   * whole by a local copy, with every object it references). The filesystem is synced first,
   * so the name never points at anything not durable (DESIGN 9).
   *
   * @throws {ObjectNotFoundError} when the object is absent.
   */
  linkStreamObject(contentId: string, id: Uint8Array): void {
    this.#links.linkStreamObject(contentId, id);
  }

  /** The splitstream object ID named `streams/<contentId>`, or null. */
  hasStream(contentId: string): Uint8Array | null {
    return this.#links.hasStream(contentId);
  }

  /** Read and parse a stream by content id or `refs/<name>`; optionally check its content type. */
  readStream(nameOrRef: string, expectedContentType?: bigint): ParsedSplitstream {
    return this.#links.readStream(nameOrRef, expectedContentType);
  }

  /** Parse the splitstream object `id` (the verity-addressed form of {@link readStream}). */
  readStreamObject(id: Uint8Array, name?: string, expectedContentType?: bigint): ParsedSplitstream {
    return this.#links.readStreamObject(id, name, expectedContentType);
  }

  /** The reassembled bytes of a stream (inline data and external objects, in order). */
  catStream(nameOrRef: string): ReadableStream<Uint8Array> {
    return this.#links.catStream(nameOrRef);
  }

  /** Point `streams/refs/<refName>` at existing stream `streams/<contentId>`. */
  nameStream(contentId: string, refName: string): void {
    this.#links.nameStream(contentId, refName);
  }

  /** Remove `streams/refs/<refName>` (the stream itself stays until GC). */
  removeStreamRef(refName: string): void {
    this.#links.removeStreamRef(refName);
  }

  /** Refs below `streams/refs/<prefix>` (recursive), sorted by name. */
  listStreamRefs(prefix: string): RefEntry[] {
    return this.#links.listStreamRefs(prefix);
  }

  // ---------------------------------------------------------------- images

  /** Store an EROFS image: object, `images/<hex>`, and `images/refs/<name>` when named. */
  writeImage(bytes: Uint8Array, name?: string): Uint8Array {
    return this.#links.writeImage(bytes, name);
  }

  /**
   * Name an already stored EROFS object `images/<hex>` (an image brought over whole by a
   * local copy). The filesystem is synced first (DESIGN 9).
   *
   * @throws {ObjectNotFoundError} when the object is absent.
   */
  linkImageObject(id: Uint8Array): void {
    this.#links.linkImageObject(id);
  }

  /** Resolve an image name (hex digest, `refs/<name>`, or a bare ref name) to its ID. */
  imageId(name: string): Uint8Array {
    return this.#links.imageId(name);
  }

  /** Open an image by name (see {@link imageId}); verified like any object. */
  openImage(name: string): OwnedFd {
    return this.#links.openImage(name);
  }

  /** Named images (`images/refs/**`) with their IDs. */
  listImages(): ImageEntry[] {
    return this.#links.listImages();
  }

  /** Objects an image references (its `trusted.overlay.redirect` targets). */
  imageObjects(name: string): Uint8Array[] {
    return this.#links.imageObjects(name);
  }

  // ---------------------------------------------------------------- maintenance

  /** syncfs(2) on the repository's filesystem. */
  sync(): void {
    this.#dir.assertOpen();
    this.#dir.sync();
  }

  /** Mark and sweep (repository-format §1.9). Needs the repository exclusively unless dry-run. */
  gc(opts: GcOptions = {}): GcReport {
    return collectGarbage(this.#dir, this.#objects, this.#links, opts);
  }

  /** Check objects, streams, images and links (repository-format §1.10). */
  fsck(opts: FsckOptions = {}): FsckReport {
    return checkRepository(this.#dir, this.#objects, this.#links, opts);
  }

  /** Release the lock and every fd. */
  [Symbol.dispose](): void {
    if (this.#dir.closed) return;
    this.#objects[Symbol.dispose]();
    this.#dir[Symbol.dispose]();
  }

  /** Same as dispose. */
  close(): void {
    this[Symbol.dispose]();
  }
}

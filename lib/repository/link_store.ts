/**
 * The names of a repository (repository-format §1.4): `streams/<content-id>` and
 * `images/<hex>` symlinks to objects, and the `refs/` trees of symlinks to those (the GC roots).
 * Every name is created only after what it points at is durable (DESIGN 9), and replaced
 * atomically (a `.symlink-*` temporary renamed over it).
 *
 * @module
 */

import * as C from "../../ffi/constants.ts";
import { ERRNO, ErrnoError, isErrno } from "../../ffi/errno.ts";
import {
  DT,
  fsync,
  lstatAt,
  openBeneath,
  readAllAt,
  readDir,
  readlinkAt,
  renameAt,
  symlinkAt,
  unlinkAt,
} from "../../ffi/fs.ts";
import type { BorrowedFd, OwnedFd } from "../../ffi/owned_fd.ts";
import { randomSuffix } from "../../ffi/tmp_object.ts";
import { catSplitstream } from "./cat_stream.ts";
import {
  NotFoundError,
  ObjectDigestMismatchError,
  ObjectNotFoundError,
  RepositoryCorruptError,
  StreamMismatchError,
} from "./errors.ts";
import { imageObjectRefs } from "./image_refs.ts";
import {
  refComponents,
  relativeSymlinkTarget,
  resolveLinkTarget,
  validateEntryName,
} from "./names.ts";
import { objectPathOf, parseObjectLinkTarget, toHex } from "./object_id.ts";
import { OBJECTS_DIR_MODE, type ObjectStore } from "./object_store.ts";
import type { RepoDir } from "./repo_dir.ts";
import { parseSplitstream, type Splitstream, SplitstreamError } from "./splitstream.ts";

/** Attempts at a fresh `.symlink-*` name for an atomic replace (composefs-rs: 16). */
const SYMLINK_TMP_ATTEMPTS = 16;

/** The two first-level namespaces. */
export type LinkCategory = "streams" | "images";

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

/**
 * The target of the symlink `name` in `dir`, or null when there is none; anything else there
 * is a {@link RepositoryCorruptError} naming `path`.
 */
function readLinkIfExists(dir: BorrowedFd, name: string, path: string): string | null {
  try {
    return readlinkAt(dir, name);
  } catch (e) {
    if (isErrno(e, "ENOENT")) return null;
    if (isErrno(e, "EINVAL")) throw new RepositoryCorruptError(path, "not a symlink", { cause: e });
    throw e;
  }
}

/** Streams, images and refs of one repository, over its {@link RepoDir} and {@link ObjectStore}. */
export class LinkStore {
  #dir: RepoDir;
  #objects: ObjectStore;

  /** Names beneath `dir` for the objects of `objects` (both must outlive this store). */
  constructor(dir: RepoDir, objects: ObjectStore) {
    this.#dir = dir;
    this.#objects = objects;
  }

  // ---------------------------------------------------------------- links

  /** Open `rel` (e.g. `streams`, `images/refs`) or null when absent; symlinks refused. */
  openDirIfExists(rel: string): OwnedFd | null {
    return this.#dir.openDir(rel.split("/"), false);
  }

  /** Create or atomically re-point symlink `linkPath` → `targetPath` (repository-relative). */
  #symlink(linkPath: string, targetPath: string): void {
    const target = relativeSymlinkTarget(linkPath, targetPath);
    const parts = linkPath.split("/");
    const base = parts.pop()!;
    // images/ is made like objects/ (0777 before umask); streams/ and refs trees 0755 (§1.6).
    if (parts[0] === "images") this.#dir.openDir(["images"], true, OBJECTS_DIR_MODE)!.close();
    using dir = this.#dir.openDir(parts, true)!;
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
    const root = this.#dir.root;
    for (let i = 0; i < SYMLINK_TMP_ATTEMPTS; i++) {
      const tmp = `.symlink-${randomSuffix()}`;
      try {
        symlinkAt(target, root, tmp);
      } catch (e) {
        if (isErrno(e, "EEXIST")) continue;
        throw e;
      }
      try {
        renameAt(root, tmp, dir, base);
        return;
      } catch (e) {
        unlinkAt(root, tmp);
        throw e;
      }
    }
    throw new ErrnoError("symlinkat", ERRNO.EEXIST, ".symlink-*");
  }

  /** Sync the directory `category` so a ref made next never points at a lost entry. */
  #syncCategory(category: LinkCategory): void {
    using dir = this.#dir.openDir([category], false)!;
    fsync(dir);
  }

  /**
   * Read first-level `category/name` and parse its `../objects/XX/<rest>` target; null when
   * absent. Anything but such a symlink is a {@link RepositoryCorruptError}.
   */
  firstLevelTarget(category: LinkCategory, name: string): Uint8Array | null {
    using dir = this.#dir.openDir([category], false);
    if (!dir) return null;
    const target = readLinkIfExists(dir, name, `${category}/${name}`);
    if (target === null) return null;
    if (!target.startsWith("../")) {
      throw new RepositoryCorruptError(`${category}/${name}`, `unexpected target "${target}"`);
    }
    try {
      return parseObjectLinkTarget(target, this.#dir.algorithm);
    } catch (e) {
      throw new RepositoryCorruptError(`${category}/${name}`, `unexpected target "${target}"`, {
        cause: e,
      });
    }
  }

  /** Resolve a ref below `category/refs/` to the first-level entry name it points at. */
  #resolveRef(category: LinkCategory, ref: string): string | null {
    const parts = refComponents(ref);
    const base = parts.pop()!;
    using dir = this.#dir.openDir([category, "refs", ...parts], false);
    if (!dir) return null;
    const target = readLinkIfExists(dir, base, `${category}/refs/${ref}`);
    if (target === null) return null;
    const linkPath = [category, "refs", ...parts, base].join("/");
    const resolved = resolveLinkTarget(linkPath, target);
    const prefix = `${category}/`;
    if (!resolved || !resolved.startsWith(prefix) || resolved.slice(prefix.length).includes("/")) {
      throw new RepositoryCorruptError(linkPath, `target "${target}" is not a ${category}/ entry`);
    }
    return resolved.slice(prefix.length);
  }

  #listRefs(category: LinkCategory, parts: string[]): RefEntry[] {
    const out: RefEntry[] = [];
    using dir = this.#dir.openDir([category, "refs", ...parts], false);
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

  // ---------------------------------------------------------------- streams

  #parse(bytes: Uint8Array, name: string, expectedContentType?: bigint): Splitstream {
    try {
      return parseSplitstream(bytes, this.#dir.algorithm, expectedContentType);
    } catch (e) {
      if (e instanceof SplitstreamError) {
        throw new StreamMismatchError(name, e.message, { cause: e });
      }
      throw e;
    }
  }

  /**
   * Store a splitstream as an object without naming it: it is parsed, and every object and
   * stream it references must already exist.
   *
   * @throws {StreamMismatchError} for a malformed splitstream.
   * @throws {ObjectNotFoundError} for a missing reference.
   */
  storeStream(splitstream: Uint8Array, name = "splitstream"): Uint8Array {
    this.#dir.assertWritable();
    const parsed = this.#parse(splitstream, name);
    for (const ref of [...parsed.objectRefs, ...parsed.streamRefs]) {
      if (!this.#objects.hasObject(ref)) throw new ObjectNotFoundError(objectPathOf(ref));
    }
    return this.#objects.storeObject(splitstream);
  }

  /**
   * Store a splitstream and name it `streams/<contentId>` (and `streams/refs/<refName>`).
   * Order (DESIGN 9): every referenced object must already exist; the splitstream object is
   * stored, the filesystem synced, then the links are created.
   */
  writeStream(contentId: string, splitstream: Uint8Array, refName?: string): Uint8Array {
    this.#dir.assertWritable();
    validateEntryName(contentId);
    if (refName !== undefined) refComponents(refName);
    const id = this.storeStream(splitstream, contentId);
    this.#dir.syncIfUnsynced();
    this.#symlink(`streams/${contentId}`, `objects/${objectPathOf(id)}`);
    if (refName !== undefined) {
      this.#syncCategory("streams");
      this.#symlink(`streams/refs/${refName}`, `streams/${contentId}`);
    }
    return id;
  }

  /**
   * Name an already stored splitstream object `streams/<contentId>`, after a sync (DESIGN 9).
   *
   * @throws {ObjectNotFoundError} when the object is absent.
   */
  linkStreamObject(contentId: string, id: Uint8Array): void {
    this.#dir.assertWritable();
    validateEntryName(contentId);
    if (!this.#objects.hasObject(id)) throw new ObjectNotFoundError(objectPathOf(id));
    this.#dir.syncIfUnsynced();
    this.#symlink(`streams/${contentId}`, `objects/${objectPathOf(id)}`);
  }

  /** The splitstream object ID named `streams/<contentId>`, or null. */
  hasStream(contentId: string): Uint8Array | null {
    this.#dir.assertOpen();
    validateEntryName(contentId);
    return this.firstLevelTarget("streams", contentId);
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

  /** Read and parse a stream by content id or `refs/<name>`; optionally check its content type. */
  readStream(nameOrRef: string, expectedContentType?: bigint): Splitstream {
    this.#dir.assertOpen();
    const id = this.#streamId(nameOrRef);
    return this.readStreamObject(id, nameOrRef, expectedContentType);
  }

  /** Parse the splitstream object `id` (the verity-addressed form of {@link readStream}). */
  readStreamObject(
    id: Uint8Array,
    name: string = toHex(id),
    expectedContentType?: bigint,
  ): Splitstream {
    using fd = this.#objects.openObject(id);
    return this.#parse(readAllAt(fd), name, expectedContentType);
  }

  /** The reassembled bytes of a stream (inline data and external objects, in order). */
  catStream(nameOrRef: string): ReadableStream<Uint8Array> {
    return catSplitstream(this.readStream(nameOrRef), (id) => this.#objects.openObject(id));
  }

  /** Point `streams/refs/<refName>` at existing stream `streams/<contentId>`. */
  nameStream(contentId: string, refName: string): void {
    this.#dir.assertWritable();
    refComponents(refName);
    if (!this.hasStream(contentId)) throw new NotFoundError("stream", contentId);
    this.#symlink(`streams/refs/${refName}`, `streams/${contentId}`);
  }

  /** Remove `streams/refs/<refName>` (the stream itself stays until GC). */
  removeStreamRef(refName: string): void {
    this.#dir.assertWritable();
    const parts = refComponents(refName);
    const base = parts.pop()!;
    using dir = this.#dir.openDir(["streams", "refs", ...parts], false);
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
    this.#dir.assertOpen();
    const parts = prefix === "" ? [] : refComponents(prefix.replace(/\/+$/, ""));
    return this.#listRefs("streams", parts);
  }

  // ---------------------------------------------------------------- images

  /** Store an EROFS image: object, `images/<hex>`, and `images/refs/<name>` when named. */
  writeImage(bytes: Uint8Array, name?: string): Uint8Array {
    this.#dir.assertWritable();
    if (name !== undefined) refComponents(name);
    const id = this.#objects.storeObject(bytes);
    this.#dir.syncIfUnsynced();
    const hex = toHex(id);
    this.#symlink(`images/${hex}`, `objects/${objectPathOf(id)}`);
    if (name !== undefined) {
      this.#syncCategory("images");
      this.#symlink(`images/refs/${name}`, `images/${hex}`);
    }
    return id;
  }

  /**
   * Name an already stored EROFS object `images/<hex>`, after a sync (DESIGN 9).
   *
   * @throws {ObjectNotFoundError} when the object is absent.
   */
  linkImageObject(id: Uint8Array): void {
    this.#dir.assertWritable();
    if (!this.#objects.hasObject(id)) throw new ObjectNotFoundError(objectPathOf(id));
    this.#dir.syncIfUnsynced();
    this.#symlink(`images/${toHex(id)}`, `objects/${objectPathOf(id)}`);
  }

  /** Resolve an image name (hex digest, `refs/<name>`, or a bare ref name) to its ID. */
  imageId(name: string): Uint8Array {
    this.#dir.assertOpen();
    let entry: string | null = null;
    if (name.startsWith("refs/")) entry = this.#resolveRef("images", name.slice("refs/".length));
    else if (!name.includes("/")) {
      validateEntryName(name);
      entry = this.firstLevelTarget("images", name) ? name : this.#resolveRef("images", name);
    } else throw new NotFoundError("image", name);
    if (entry === null) throw new NotFoundError("image", name);
    const id = this.firstLevelTarget("images", entry);
    if (!id) throw new NotFoundError("image", name);
    if (!name.startsWith("refs/") && entry === name && toHex(id) !== name.toLowerCase()) {
      throw new ObjectDigestMismatchError(`images/${name}`, toHex(id));
    }
    return id;
  }

  /** Open an image by name (see {@link imageId}); verified like any object. */
  openImage(name: string): OwnedFd {
    return this.#objects.openObject(this.imageId(name));
  }

  /** Named images (`images/refs/**`) with their IDs. */
  listImages(): ImageEntry[] {
    this.#dir.assertOpen();
    const out: ImageEntry[] = [];
    for (const r of this.#listRefs("images", [])) {
      const entry = this.#resolveRef("images", r.name);
      const id = entry === null ? null : this.firstLevelTarget("images", entry);
      if (id) out.push({ name: r.name, id });
    }
    return out;
  }

  /** Objects an image references (its `trusted.overlay.redirect` targets). */
  imageObjects(name: string): Uint8Array[] {
    using fd = this.openImage(name);
    return imageObjectRefs(readAllAt(fd), this.#dir.algorithm);
  }
}

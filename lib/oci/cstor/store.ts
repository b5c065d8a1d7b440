/**
 * One containers-storage store on disk (overlay or vfs driver): its metadata files, image
 * big-data, tar-split files and layer directories, all opened beneath the store's root fd
 * (DESIGN 7), and its locks.
 *
 * Locking: containers/storage takes POSIX `fcntl` record locks (`F_SETLKW`, `F_RDLCK` for
 * readers, `F_WRLCK` for writers) on `<driver>-layers/layers.lock` and
 * `<driver>-images/images.lock` (c/storage `pkg/lockfile`). We hold *read* locks on both, in that
 * order (c/storage's own order), for as long as an import runs, so `podman rmi` — which needs the
 * write locks — waits for us instead of deleting a layer we are reading. We use open-file-
 * description locks (F_OFD_SETLKW): they conflict with classic POSIX locks, but unlike them are
 * not dropped when any other fd of the file in this process is closed. composefs-rs uses flock,
 * which does not interact with fcntl locks at all (spec §4.4.4): it excludes nobody.
 *
 * @module
 */

import * as C from "../../../ffi/constants.ts";
import { isErrno } from "../../../ffi/errno.ts";
import { readableFromFd } from "../../../ffi/fd_stream.ts";
import {
  lstatAt,
  ofdLock,
  openBeneath,
  openDir,
  openDirBeneath,
  readAllAt,
  readlinkAt,
  RESOLVE_STRICT,
} from "../../../ffi/fs.ts";
import type { OwnedFd } from "../../../ffi/owned_fd.ts";
import { StoreNotFoundError } from "./errors.ts";
import {
  bigDataFileName,
  type ImageRecord,
  type LayerRecord,
  parseImagesJson,
  parseLayersJson,
  StoreMetadataError,
} from "./store_model.ts";

/** Drivers whose layout we read. */
export type Driver = "overlay" | "vfs";

/**
 * Everything is opened beneath the store root, never through symlinks. Mount crossings must be
 * allowed: c/storage's overlay driver bind-mounts `<graphroot>/overlay` onto itself (spec
 * §4.4.5), so every layer directory of a store podman has used is behind a mount point.
 * (Inside a layer directory, files are opened with RESOLVE_NO_XDEV.)
 */
const RESOLVE_META = RESOLVE_STRICT;
/** overlay's `l/<link>` symlinks point at `../<layer-id>/diff`. */
const LOWER_LINK = /^\.\.\/([A-Za-z0-9][A-Za-z0-9_.-]*)\/diff$/;

/** Read locks on a store's layer and image stores; release by disposing. */
export class StoreLock implements Disposable {
  #fds: OwnedFd[];
  /** Build the error from its structured fields. */
  constructor(fds: OwnedFd[]) {
    this.#fds = fds;
  }
  /** Number of lock files held (0 when the store has none yet, e.g. a fresh read-only store). */
  get count(): number {
    return this.#fds.filter((f) => !f.closed).length;
  }
  /** Release the locks. */
  [Symbol.dispose](): void {
    // Closing the last fd of an open file description releases its OFD lock.
    for (const fd of this.#fds.reverse()) fd.close();
  }
}

/** An opened containers-storage store. */
export class ContainersStore implements Disposable {
  /** The graph root path (for messages). */
  readonly path: string;
  /** The graph driver. */
  readonly driver: Driver;
  /** True for an additional (read-only) image store. */
  readonly readOnly: boolean;
  #root: OwnedFd;

  private constructor(path: string, driver: Driver, readOnly: boolean, root: OwnedFd) {
    this.path = path;
    this.driver = driver;
    this.readOnly = readOnly;
    this.#root = root;
  }

  /**
   * Open the store at `path`. `driver` `null` detects it from which `<driver>-images/` directory
   * exists (overlay first, as c/storage's driver priority). Throws {@link StoreNotFoundError}
   * when the directory is missing or holds no store of a readable driver.
   */
  static open(path: string, driver: string | null, readOnly = false): ContainersStore {
    let root: OwnedFd;
    try {
      root = openDir(path);
    } catch (e) {
      if (isErrno(e, "ENOENT", "ENOTDIR")) {
        throw new StoreNotFoundError(path, "no such directory", { cause: e });
      }
      throw e;
    }
    try {
      const has = (d: string) => {
        try {
          return (lstatAt(root, d).mode & C.S_IFMT) === C.S_IFDIR;
        } catch (e) {
          if (isErrno(e, "ENOENT")) return false;
          throw e;
        }
      };
      let d: Driver;
      if (driver === null) {
        if (has("overlay-images")) d = "overlay";
        else if (has("vfs-images")) d = "vfs";
        else throw new StoreNotFoundError(path, "it holds no overlay or vfs image store");
      } else if (driver === "overlay" || driver === "overlay2" || driver === "vfs") {
        d = driver === "vfs" ? "vfs" : "overlay";
        if (!has(`${d}-images`) || !has(`${d}-layers`)) {
          throw new StoreNotFoundError(
            path,
            `it holds no "${d}" store ("${d}-images/" is missing)`,
          );
        }
      } else {
        throw new StoreNotFoundError(
          path,
          `driver "${driver}" is not supported (only overlay and vfs are)`,
        );
      }
      return new ContainersStore(path, d, readOnly, root);
    } catch (e) {
      root.close();
      throw e;
    }
  }

  #open(rel: string, flags = C.O_RDONLY): OwnedFd {
    return openBeneath(this.#root, rel, { flags, resolve: RESOLVE_META });
  }

  #readFile(rel: string): Uint8Array {
    using fd = this.#open(rel);
    return readAllAt(fd);
  }

  /**
   * Take read locks on `<driver>-layers/layers.lock` then `<driver>-images/images.lock`
   * (blocking while a writer holds them). A lock file that does not exist is skipped: no
   * c/storage process has ever written that store.
   */
  lock(): StoreLock {
    const fds: OwnedFd[] = [];
    try {
      for (
        const rel of [`${this.driver}-layers/layers.lock`, `${this.driver}-images/images.lock`]
      ) {
        let fd: OwnedFd;
        try {
          fd = this.#open(rel, C.O_RDONLY | C.O_NOCTTY);
        } catch (e) {
          if (isErrno(e, "ENOENT")) continue;
          throw e;
        }
        fds.push(fd);
        ofdLock(fd, "read", true);
      }
    } catch (e) {
      for (const fd of fds) fd.close();
      throw e;
    }
    return new StoreLock(fds);
  }

  /** The images of `images.json` (empty when the file does not exist yet). */
  images(): ImageRecord[] {
    return this.#readRecords(`${this.driver}-images/images.json`, parseImagesJson);
  }

  /** The layers of `layers.json` (empty when the file does not exist yet). */
  layers(): LayerRecord[] {
    return this.#readRecords(`${this.driver}-layers/layers.json`, parseLayersJson);
  }

  /** Parse the store file `rel` with `parse`; a file not written yet holds no records. */
  #readRecords<T>(rel: string, parse: (bytes: Uint8Array, path: string) => T[]): T[] {
    let bytes: Uint8Array;
    try {
      bytes = this.#readFile(rel);
    } catch (e) {
      if (isErrno(e, "ENOENT")) return [];
      throw e;
    }
    return parse(bytes, `${this.path}/${rel}`);
  }

  /** An image's big-data item (`manifest`, `sha256:<id>` for the config, ...). */
  bigData(imageId: string, key: string): Uint8Array {
    const rel = `${this.driver}-images/${imageId}/${bigDataFileName(key)}`;
    try {
      return this.#readFile(rel);
    } catch (e) {
      if (isErrno(e, "ENOENT")) {
        throw new StoreMetadataError(`${this.path}/${rel}`, `big-data "${key}" is missing`, {
          cause: e,
        });
      }
      throw e;
    }
  }

  /** The gunzipped bytes of `<driver>-layers/<id>.tar-split.gz`. */
  tarSplit(layerId: string): ReadableStream<Uint8Array> {
    const rel = `${this.driver}-layers/${layerId}.tar-split.gz`;
    let fd: OwnedFd;
    try {
      fd = this.#open(rel);
    } catch (e) {
      if (isErrno(e, "ENOENT")) {
        throw new StoreMetadataError(`${this.path}/${rel}`, "tar-split file is missing", {
          cause: e,
        });
      }
      throw e;
    }
    return readableFromFd(fd).pipeThrough(new DecompressionStream("gzip"));
  }

  /** True if the store has this layer's content directory. */
  hasLayerDir(layerId: string): boolean {
    try {
      using _ = openDirBeneath(this.#root, this.#layerDirRel(layerId), { path: true });
      return true;
    } catch (e) {
      if (isErrno(e, "ENOENT")) return false;
      throw e;
    }
  }

  #layerDirRel(layerId: string): string {
    return this.driver === "overlay" ? `overlay/${layerId}/diff` : `vfs/dir/${layerId}`;
  }

  /**
   * The directory the layer's files live in: overlay `overlay/<id>/diff` (the layer's own
   * changes), vfs `vfs/dir/<id>` (the whole tree after the layer). The caller owns the fd.
   */
  openLayerDir(layerId: string): OwnedFd {
    const rel = this.#layerDirRel(layerId);
    try {
      return openBeneath(this.#root, rel, {
        flags: C.O_RDONLY | C.O_DIRECTORY,
        resolve: RESOLVE_META,
      });
    } catch (e) {
      if (isErrno(e, "ENOENT")) {
        throw new StoreMetadataError(`${this.path}/${rel}`, "layer directory is missing", {
          cause: e,
        });
      }
      throw e;
    }
  }

  /**
   * overlay only: the layer ids of `overlay/<id>/lower` (closest parent first), resolved through
   * the `overlay/l/<link>` symlinks. Empty for a base layer or the vfs driver.
   */
  lowerLayerIds(layerId: string): string[] {
    if (this.driver !== "overlay") return [];
    let text: string;
    try {
      text = new TextDecoder().decode(this.#readFile(`overlay/${layerId}/lower`)).trim();
    } catch (e) {
      if (isErrno(e, "ENOENT")) return [];
      throw e;
    }
    if (text === "") return [];
    using overlay = openBeneath(this.#root, "overlay", {
      flags: C.O_PATH | C.O_DIRECTORY,
      resolve: RESOLVE_META,
    });
    return text.split(":").map((l) => {
      if (!/^l\/[A-Za-z0-9]+$/.test(l)) {
        throw new StoreMetadataError(`${this.path}/overlay/${layerId}/lower`, `bad entry "${l}"`);
      }
      const target = readlinkAt(overlay, l);
      const m = LOWER_LINK.exec(target);
      if (!m) {
        throw new StoreMetadataError(`${this.path}/overlay/${l}`, `unexpected target "${target}"`);
      }
      return m[1];
    });
  }

  /** Close the store's root fd. */
  [Symbol.dispose](): void {
    this.#root.close();
  }
}

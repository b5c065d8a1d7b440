/**
 * The merged filesystem of an OCI image (erofs-format §3.2–3.5): layers applied in
 * `rootfs.diff_ids` order with overlay whiteouts (`.wh.<name>`, `.wh..wh..opq`), hardlinks as
 * shared leaves, then `transform_for_oci` — root metadata from `/usr`, `/run` emptied, xattrs
 * filtered. Exactly composefs-rs's rules, including its strictness (a missing parent or a
 * dangling hardlink aborts) and its stream-order whiteouts.
 *
 * @module
 */

import {
  type ByteString,
  byteStringToUtf8,
  Directory,
  type Inode,
  Leaf,
  makeStat,
} from "../erofs/tree.ts";
import {
  MissingUsrError,
  parseXattrFiltering,
  transformForOci,
  type XattrFiltering,
} from "../erofs/oci_transform.ts";
import type { Repository } from "../repository/repository.ts";

export { MissingUsrError, parseXattrFiltering, transformForOci, type XattrFiltering };
import { CONTENT_TYPE } from "../repository/splitstream.ts";
import { InvalidOciDocumentError } from "./errors.ts";
import type { StoredImage } from "./image_store.ts";
import { layerEntries, type LayerEntry } from "./layer_entries.ts";
import { layerStreamName } from "./names.ts";

/** A layer entry that cannot be merged (missing parent, bad hardlink, non-directory root...). */
export class MergeError extends Error {
  override name = "MergeError";
  /** The entry path (`/a/b`). */
  readonly path: string;
  /** What is wrong. */
  readonly reason: string;
  constructor(path: string, reason: string, options?: ErrorOptions) {
    super(`Cannot merge layer entry "${path}": ${reason}`, options);
    this.path = path;
    this.reason = reason;
  }
}

function show(parts: ByteString[]): string {
  return "/" + parts.map(byteStringToUtf8).join("/");
}

/** Builds a merged tree entry by entry (composefs-rs `process_entry`). */
export class MergedTreeBuilder {
  /** The tree so far. */
  readonly root: Directory = new Directory(makeStat({ mode: 0o755 }));

  /** The parent directory of `parts` (all but the last must exist as directories). */
  #parent(parts: ByteString[], path: ByteString[]): Directory {
    let dir = this.root;
    for (let i = 0; i < parts.length - 1; i++) {
      const next = dir.entries.get(parts[i]);
      if (next === undefined) {
        throw new MergeError(show(path), `parent "${show(parts.slice(0, i + 1))}" does not exist`);
      }
      if (next.type !== "dir") {
        throw new MergeError(show(path), `"${show(parts.slice(0, i + 1))}" is not a directory`);
      }
      dir = next;
    }
    return dir;
  }

  /** Apply one entry. */
  apply(entry: LayerEntry): void {
    const { path, stat, item } = entry;
    if (path.length === 0) {
      if (item.kind !== "dir") throw new MergeError("/", "the root must be a directory");
      this.root.stat = stat;
      return;
    }
    let inode: Inode;
    if (item.kind === "dir") inode = new Directory(stat);
    else if (item.kind === "leaf") inode = new Leaf(stat, item.content);
    else {
      if (item.target.length === 0) {
        throw new MergeError(show(path), "hardlink to the root directory");
      }
      const tdir = this.#parent(item.target, path);
      const t = tdir.entries.get(item.target[item.target.length - 1]);
      if (t === undefined) {
        throw new MergeError(show(path), `hardlink target "${show(item.target)}" does not exist`);
      }
      if (t.type !== "leaf") {
        throw new MergeError(show(path), `hardlink target "${show(item.target)}" is a directory`);
      }
      inode = t;
    }
    const dir = this.#parent(path, path);
    const name = path[path.length - 1];
    if (name.startsWith(".wh.")) {
      const victim = name.slice(4);
      if (victim === ".wh..opq") dir.entries.clear();
      else dir.entries.delete(victim);
      return;
    }
    const old = dir.entries.get(name);
    if (old !== undefined && old.type === "dir" && inode.type === "dir") old.stat = inode.stat;
    else dir.entries.set(name, inode);
  }
}

/** Options of {@link buildImageTree}. */
export interface BuildTreeOptions {
  /** Xattr filtering (default `allowlist-only`, what `oci pull` always uses). */
  xattrs?: XattrFiltering;
}

/**
 * The merged, OCI-transformed filesystem of a stored container image. Layers are read by the
 * verity recorded in the config stream's named refs (objects are verity-checked on open in a
 * secure repository); the config itself was re-hashed by `resolveImage`.
 */
export function buildImageTree(
  repo: Repository,
  img: StoredImage,
  opts: BuildTreeOptions = {},
): Directory {
  if (!img.isContainer || img.config === undefined) {
    throw new InvalidOciDocumentError(
      "config",
      img.configDigest,
      "not a container image config (artifacts have no filesystem)",
    );
  }
  const b = new MergedTreeBuilder();
  for (const diffId of img.config.diffIds) {
    const verity = img.configRefs.get(diffId);
    if (verity === undefined) {
      throw new InvalidOciDocumentError(
        "config",
        img.configDigest,
        `stream lacks the named ref for layer "${diffId}"`,
      );
    }
    const layer = repo.readStreamObject(verity, layerStreamName(diffId), CONTENT_TYPE.OCI_LAYER);
    for (const e of layerEntries(layer.chunks())) b.apply(e);
  }
  transformForOci(b.root, opts.xattrs);
  return b.root;
}

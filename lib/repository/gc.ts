/**
 * Garbage collection (repository-format §1.9): roots are every symlink below `images/refs/`
 * and `streams/refs/` plus explicitly named first-level entries; streams are followed through
 * their object refs, stream refs and named refs (by object ID); everything else in
 * `objects/XX/` is deleted, then broken links are pruned.
 *
 * @module
 */

import * as C from "../../ffi/constants.ts";
import { isErrno } from "../../ffi/errno.ts";
import {
  DT,
  lstatAt,
  openBeneath,
  readAllAt,
  readDir,
  readlinkAt,
  unlinkAt,
} from "../../ffi/fs.ts";
import type { BorrowedFd, OwnedFd } from "../../ffi/owned_fd.ts";
import { RepositoryBusyError, RepositoryCorruptError } from "./errors.ts";
import { ImageInvalidError, imageObjectRefs } from "./image_refs.ts";
import type { LinkCategory, LinkStore } from "./link_store.ts";
import { fromHex, objectDirName, parseObjectEntry, toHex } from "./object_id.ts";
import type { ObjectStore } from "./object_store.ts";
import type { RepoDir } from "./repo_dir.ts";

/** Options of `Repository.gc`. */
export interface GcOptions {
  /** Extra roots: first-level names in `images/` or `streams/`. */
  roots?: string[];
  /** Report what would be removed without removing anything. */
  dryRun?: boolean;
}

/** What GC removed (or would remove). Field names as composefs-rs's `GcResult`. */
export interface GcReport {
  /** Unreferenced objects removed. */
  objectsRemoved: number;
  /** Their total size in bytes. */
  objectsBytes: number;
  /** Broken symlinks removed below `images/`. */
  imagesPruned: number;
  /** Broken symlinks removed below `streams/`. */
  streamsPruned: number;
  /** True for a dry run. */
  dryRun: boolean;
}

const CATEGORIES: readonly LinkCategory[] = ["images", "streams"];
type Category = LinkCategory;

/**
 * Run GC on a repository's parts. A real run takes the lock exclusively (nobody else may have
 * the repository open, §1.8) and gives it back; a dry run works under the shared lock.
 *
 * @throws {RepositoryBusyError} when another holder has the repository open (not for dry runs).
 */
export function collectGarbage(
  dir: RepoDir,
  objects: ObjectStore,
  links: LinkStore,
  opts: GcOptions,
): GcReport {
  if (opts.dryRun) dir.assertOpen();
  else {
    dir.assertWritable();
    if (!dir.tryLockExclusive()) throw new RepositoryBusyError(dir.path);
  }
  try {
    return sweep(dir, objects, links, !!opts.dryRun, opts.roots ?? []);
  } finally {
    if (!opts.dryRun) dir.lockShared();
  }
}

function sweep(
  dir: RepoDir,
  objects: ObjectStore,
  links: LinkStore,
  dryRun: boolean,
  roots: readonly string[],
): GcReport {
  const alg = dir.algorithm;
  const live = new Set<string>();

  // First-level stream links: object hex → present (streams are walked by object ID).
  const streamObjects = new Set<string>();
  const firstLevel = new Map<Category, Map<string, string | null>>();
  for (const cat of CATEGORIES) {
    const m = new Map<string, string | null>();
    firstLevel.set(cat, m);
    using catDir = links.openDirIfExists(cat);
    if (!catDir) continue;
    for (const ent of readDir(catDir)) {
      if (ent.name === "refs" && ent.type === DT.DIR) continue;
      if (ent.type !== DT.LNK) {
        throw new RepositoryCorruptError(
          `${cat}/${ent.name}`,
          "not a symlink; refusing to collect garbage",
        );
      }
      let id: Uint8Array | null = null;
      try {
        id = links.firstLevelTarget(cat, ent.name);
      } catch (e) {
        if (!(e instanceof RepositoryCorruptError)) throw e;
      }
      m.set(ent.name, id ? toHex(id) : null);
      if (id && cat === "streams") streamObjects.add(toHex(id));
    }
  }

  const imageRoots: string[] = [];
  const streamRoots: string[] = [];
  const addRoot = (cat: Category, name: string) => {
    const hex = firstLevel.get(cat)!.get(name);
    if (hex) (cat === "images" ? imageRoots : streamRoots).push(hex);
  };
  for (const cat of CATEGORIES) {
    walkRefs(links, cat, (_path, target) => {
      const base = target.split("/").pop()!;
      addRoot(cat, base);
    });
  }
  for (const name of roots) {
    for (const cat of CATEGORIES) addRoot(cat, name);
  }

  for (const hex of imageRoots) {
    live.add(hex);
    const id = fromHex(hex);
    if (!objects.hasObject(id)) continue;
    using fd = objects.openObject(id);
    let refs: Uint8Array[];
    try {
      refs = imageObjectRefs(readAllAt(fd), alg);
    } catch (e) {
      // Unreadable image: its objects cannot be known, so nothing may be deleted.
      if (e instanceof ImageInvalidError) {
        throw new RepositoryCorruptError(`images/${hex}`, e.message, { cause: e });
      }
      throw e;
    }
    for (const ref of refs) live.add(toHex(ref));
  }

  const visited = new Set<string>();
  const walk = (hex: string) => {
    if (visited.has(hex)) return;
    visited.add(hex);
    live.add(hex);
    const id = fromHex(hex);
    if (!objects.hasObject(id)) return;
    // A stream that cannot be parsed aborts GC: deleting what it references would lose data.
    const parsed = links.readStreamObject(id);
    for (const r of parsed.objectRefs) live.add(toHex(r));
    for (const r of parsed.streamRefs) {
      const h = toHex(r);
      live.add(h);
      if (streamObjects.has(h)) walk(h);
    }
    for (const r of parsed.namedRefs.values()) {
      const h = toHex(r);
      live.add(h);
      if (streamObjects.has(h)) walk(h);
    }
  };
  for (const hex of streamRoots) walk(hex);

  // Sweep objects/XX/ for 00..ff; entries must all be object names.
  let objectsRemoved = 0;
  let objectsBytes = 0;
  const removed = new Set<string>();
  const objectsDir = objects.objectsDirIfExists();
  if (objectsDir) {
    for (let b = 0; b < 256; b++) {
      const dirName = objectDirName(b);
      let sub: OwnedFd;
      try {
        sub = openBeneath(objectsDir, dirName, { flags: C.O_RDONLY | C.O_DIRECTORY });
      } catch (e) {
        if (isErrno(e, "ENOENT")) continue;
        throw e;
      }
      using _ = sub;
      for (const ent of readDir(sub)) {
        let id: Uint8Array;
        try {
          id = parseObjectEntry(dirName, ent.name, alg);
        } catch (e) {
          throw new RepositoryCorruptError(`objects/${dirName}/${ent.name}`, "not an object name", {
            cause: e,
          });
        }
        const hex = toHex(id);
        if (live.has(hex)) continue;
        const st = lstatAt(sub, ent.nameBytes);
        if (!dryRun) unlinkAt(sub, ent.nameBytes);
        removed.add(hex);
        objectsRemoved++;
        objectsBytes += st.size;
      }
    }
  }

  const objectGone = (hex: string | null | undefined) =>
    !hex || removed.has(hex) || !objectsDir || !objectExists(objectsDir, hex);

  // Prune first-level links whose object is gone, then refs whose entry is gone.
  const pruned: Record<Category, number> = { images: 0, streams: 0 };
  const prunedEntries = new Map<Category, Set<string>>();
  for (const cat of CATEGORIES) {
    const gone = new Set<string>();
    prunedEntries.set(cat, gone);
    const entries = firstLevel.get(cat)!;
    if (entries.size === 0) continue;
    using catDir = links.openDirIfExists(cat);
    if (!catDir) continue;
    for (const [name, hex] of entries) {
      if (!objectGone(hex)) continue;
      if (!dryRun) unlinkAt(catDir, name);
      gone.add(name);
      pruned[cat]++;
    }
  }
  for (const cat of CATEGORIES) {
    const entries = firstLevel.get(cat)!;
    const gone = prunedEntries.get(cat)!;
    walkRefs(links, cat, (_path, target, dir, leaf) => {
      const resolvedName = target.split("/").pop()!;
      const ok = entries.has(resolvedName) && !gone.has(resolvedName);
      if (ok) return;
      if (!dryRun) unlinkAt(dir, leaf);
      pruned[cat]++;
    });
  }

  return {
    objectsRemoved,
    objectsBytes,
    imagesPruned: pruned.images,
    streamsPruned: pruned.streams,
    dryRun,
  };
}

function objectExists(objects: BorrowedFd, hex: string): boolean {
  try {
    using sub = openBeneath(objects, hex.slice(0, 2), { flags: C.O_PATH | C.O_DIRECTORY });
    lstatAt(sub, hex.slice(2));
    return true;
  } catch (e) {
    if (isErrno(e, "ENOENT")) return false;
    throw e;
  }
}

/** Visit every symlink below `cat/refs/` (recursive); anything but dirs and symlinks aborts. */
function walkRefs(
  links: LinkStore,
  cat: Category,
  visit: (path: string, target: string, dir: BorrowedFd, leaf: Uint8Array) => void,
): void {
  using refs = links.openDirIfExists(`${cat}/refs`);
  if (!refs) return;
  const rec = (d: BorrowedFd, rel: string) => {
    for (const ent of readDir(d)) {
      const path = `${rel}/${ent.name}`;
      if (ent.type === DT.DIR) {
        using sub = openBeneath(d, ent.nameBytes, { flags: C.O_RDONLY | C.O_DIRECTORY });
        rec(sub, path);
      } else if (ent.type === DT.LNK) {
        visit(path, readlinkAt(d, ent.nameBytes), d, ent.nameBytes);
      } else {
        throw new RepositoryCorruptError(path, "not a symlink or directory; refusing to continue");
      }
    }
  };
  rec(refs, `${cat}/refs`);
}

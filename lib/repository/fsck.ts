/**
 * Repository consistency check (repository-format §1.10): meta.json, every object's digest,
 * every stream's links and references, every image's links and referenced objects.
 * Findings are collected, never thrown.
 *
 * @module
 */

import * as C from "../../ffi/constants.ts";
import { DT, openBeneath, readAllAt, readDir, readlinkAt } from "../../ffi/fs.ts";
import { measureVerity } from "../../ffi/fsverity_ioctl.ts";
import type { BorrowedFd, OwnedFd } from "../../ffi/owned_fd.ts";
import { formatAlgorithmName, kernelHashId } from "../fsverity/algorithm.ts";
import { fsverityDigestFd } from "../fsverity/digest_fd.ts";
import { ImageInvalidError, imageObjectRefs } from "./image_refs.ts";
import type { LinkStore } from "./link_store.ts";
import { checkMetadata, parseRepoMetadata } from "./meta.ts";
import { readMetaBytes } from "./meta_file.ts";
import { resolveLinkTarget } from "./names.ts";
import { idEqual, parseObjectEntry, parseObjectLinkTarget, toHex } from "./object_id.ts";
import type { ObjectStore } from "./object_store.ts";
import type { RepoDir } from "./repo_dir.ts";

/** Options of `Repository.fsck`. */
export interface FsckOptions {
  /** Skip the per-object digest check (phase 1). */
  metadataOnly?: boolean;
}

/** One finding; `type` is composefs-rs's kebab-case tag. */
export type FsckError =
  | { type: "object-invalid-name"; path: string; detail: string }
  | { type: "object-open-failed"; path: string; detail: string }
  | { type: "object-digest-mismatch"; path: string; measured: string }
  | { type: "object-verity-missing"; path: string }
  | { type: "entry-not-symlink"; path: string }
  | { type: "broken-symlink"; path: string }
  | { type: "unexpected-file-type"; path: string; detail: string }
  | { type: "stream-open-failed"; path: string; detail: string }
  | { type: "missing-object-ref"; path: string; objectId: string }
  | { type: "missing-named-ref"; path: string; refName: string; objectId: string }
  | { type: "image-open-failed"; path: string; detail: string }
  | { type: "image-invalid"; path: string; detail: string }
  | { type: "image-missing-object"; path: string; objectId: string }
  | { type: "metadata-parse-failed"; detail: string }
  | { type: "metadata-algorithm-mismatch"; expected: string; actual: string };

/** composefs-rs's `Display` form: `fsck: <type>: <path>: <detail>`. */
export function formatFsckError(e: FsckError): string {
  switch (e.type) {
    case "object-digest-mismatch":
      return `fsck: ${e.type}: ${e.path}: measured ${e.measured}`;
    case "object-verity-missing":
    case "entry-not-symlink":
    case "broken-symlink":
      return `fsck: ${e.type}: ${e.path}`;
    case "missing-object-ref":
    case "image-missing-object":
      return `fsck: ${e.type}: ${e.path}: ${e.objectId}`;
    case "missing-named-ref":
      return `fsck: ${e.type}: ${e.path}: ref ${e.refName}: ${e.objectId}`;
    case "metadata-parse-failed":
      return `fsck: ${e.type}: meta.json: ${e.detail}`;
    case "metadata-algorithm-mismatch":
      return `fsck: ${e.type}: meta.json: expected ${e.expected}, repository opened as ${e.actual}`;
    default:
      return `fsck: ${e.type}: ${e.path}: ${e.detail}`;
  }
}

/** The fsck result (counts as composefs-rs's `FsckResult`). */
export interface FsckReport {
  /** No errors. */
  ok: boolean;
  /** meta.json present. */
  hasMetadata: boolean;
  /** Objects whose digest was checked. */
  objectsChecked: number;
  /** Objects with a wrong or missing digest. */
  objectsCorrupted: number;
  /** Splitstreams checked. */
  streamsChecked: number;
  /** Splitstreams with problems. */
  streamsCorrupted: number;
  /** Images checked. */
  imagesChecked: number;
  /** Images with problems. */
  imagesCorrupted: number;
  /** Symlinks that do not resolve. */
  brokenLinks: number;
  /** Objects referenced but absent. */
  missingObjects: number;
  /** Every finding. */
  errors: FsckError[];
}

/** The CLI/varlink JSON shape (cli-oci-cstor §2.2): snake_case counts, errors as strings. */
export function fsckReportJson(r: FsckReport): Record<string, unknown> {
  return {
    ok: r.ok,
    has_metadata: r.hasMetadata,
    objects_checked: r.objectsChecked,
    objects_corrupted: r.objectsCorrupted,
    streams_checked: r.streamsChecked,
    streams_corrupted: r.streamsCorrupted,
    images_checked: r.imagesChecked,
    images_corrupted: r.imagesCorrupted,
    broken_links: r.brokenLinks,
    missing_objects: r.missingObjects,
    errors: r.errors.map(formatFsckError),
  };
}

function detail(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Run all phases on a repository's parts. */
export function checkRepository(
  dir: RepoDir,
  objects: ObjectStore,
  links: LinkStore,
  opts: FsckOptions,
): FsckReport {
  dir.assertOpen();
  const r: FsckReport = {
    ok: true,
    hasMetadata: false,
    objectsChecked: 0,
    objectsCorrupted: 0,
    streamsChecked: 0,
    streamsCorrupted: 0,
    imagesChecked: 0,
    imagesCorrupted: 0,
    brokenLinks: 0,
    missingObjects: 0,
    errors: [],
  };
  const alg = dir.algorithm;

  // Phase 0: meta.json.
  try {
    const bytes = readMetaBytes(dir.root);
    r.hasMetadata = bytes !== null;
    const meta = bytes && parseRepoMetadata(bytes);
    if (meta) checkMetadata(meta);
    if (meta && meta.algorithm !== alg) {
      r.errors.push({
        type: "metadata-algorithm-mismatch",
        expected: formatAlgorithmName(meta.algorithm),
        actual: formatAlgorithmName(alg),
      });
    }
  } catch (e) {
    r.errors.push({ type: "metadata-parse-failed", detail: detail(e) });
  }

  const objectsDir = objects.objectsDirIfExists();
  const objectExists = (id: Uint8Array): boolean => {
    if (!objectsDir) return false;
    try {
      return objects.hasObject(id);
    } catch {
      return false;
    }
  };

  // Phase 1: objects.
  if (!opts.metadataOnly && objectsDir) {
    for (const d of readDir(objectsDir)) {
      if (d.type !== DT.DIR || !/^[0-9a-f]{2}$/.test(d.name)) continue;
      let sub: OwnedFd;
      try {
        sub = openBeneath(objectsDir, d.nameBytes, { flags: C.O_RDONLY | C.O_DIRECTORY });
      } catch (e) {
        r.errors.push({ type: "object-open-failed", path: `objects/${d.name}`, detail: detail(e) });
        r.objectsCorrupted++;
        continue;
      }
      using _ = sub;
      for (const ent of readDir(sub)) {
        const path = `objects/${d.name}/${ent.name}`;
        let id: Uint8Array;
        try {
          id = parseObjectEntry(d.name, ent.name, alg);
        } catch (e) {
          r.errors.push({ type: "object-invalid-name", path, detail: detail(e) });
          r.objectsCorrupted++;
          continue;
        }
        r.objectsChecked++;
        let fd: OwnedFd;
        try {
          fd = openBeneath(sub, ent.nameBytes, { flags: C.O_RDONLY });
        } catch (e) {
          r.errors.push({ type: "object-open-failed", path, detail: detail(e) });
          r.objectsCorrupted++;
          continue;
        }
        using _f = fd;
        try {
          const m = measureVerity(fd, kernelHashId(alg));
          let measured: Uint8Array;
          if (m.kind === "measured") measured = m.digest;
          else if (!dir.insecure) {
            r.errors.push({ type: "object-verity-missing", path });
            r.objectsCorrupted++;
            continue;
          } else measured = fsverityDigestFd(fd, alg);
          if (!idEqual(measured, id)) {
            r.errors.push({ type: "object-digest-mismatch", path, measured: toHex(measured) });
            r.objectsCorrupted++;
          }
        } catch (e) {
          r.errors.push({ type: "object-open-failed", path, detail: detail(e) });
          r.objectsCorrupted++;
        }
      }
    }
  }

  // Phases 2 and 3: first-level links, their contents, then refs.
  for (const cat of ["streams", "images"] as const) {
    let catDir: OwnedFd | null;
    try {
      catDir = links.openDirIfExists(cat);
    } catch (e) {
      r.errors.push({ type: "unexpected-file-type", path: cat, detail: detail(e) });
      continue;
    }
    if (!catDir) continue;
    using _d = catDir;
    for (const ent of readDir(catDir)) {
      const path = `${cat}/${ent.name}`;
      if (ent.name === "refs" && ent.type === DT.DIR) continue;
      if (ent.type !== DT.LNK) {
        r.errors.push({ type: "entry-not-symlink", path });
        if (cat === "streams") r.streamsCorrupted++;
        else r.imagesCorrupted++;
        continue;
      }
      let id: Uint8Array;
      try {
        const target = readlinkAt(catDir, ent.nameBytes);
        if (!target.startsWith("../")) throw new Error(`unexpected target "${target}"`);
        id = parseObjectLinkTarget(target, alg);
      } catch {
        r.errors.push({ type: "broken-symlink", path });
        r.brokenLinks++;
        continue;
      }
      if (!objectExists(id)) {
        r.errors.push({ type: "broken-symlink", path });
        r.brokenLinks++;
        continue;
      }
      if (cat === "streams") {
        r.streamsChecked++;
        let bad = false;
        try {
          const parsed = links.readStreamObject(id, ent.name);
          // Named refs are reported by name; other stream refs like object refs.
          const named = new Set([...parsed.namedRefs.values()].map(toHex));
          const unnamed = parsed.streamRefs.filter((s) => !named.has(toHex(s)));
          for (const ref of [...parsed.objectRefs, ...unnamed]) {
            if (!objectExists(ref)) {
              r.errors.push({ type: "missing-object-ref", path, objectId: toHex(ref) });
              r.missingObjects++;
              bad = true;
            }
          }
          for (const [refName, nid] of parsed.namedRefs) {
            if (!objectExists(nid)) {
              r.errors.push({ type: "missing-named-ref", path, refName, objectId: toHex(nid) });
              r.missingObjects++;
              bad = true;
            }
          }
        } catch (e) {
          r.errors.push({ type: "stream-open-failed", path, detail: detail(e) });
          bad = true;
        }
        if (bad) r.streamsCorrupted++;
      } else {
        r.imagesChecked++;
        let bad = false;
        try {
          using fd = objects.openObject(id);
          for (const ref of imageObjectRefs(readAllAt(fd), alg)) {
            if (!objectExists(ref)) {
              r.errors.push({ type: "image-missing-object", path, objectId: toHex(ref) });
              r.missingObjects++;
              bad = true;
            }
          }
        } catch (e) {
          if (e instanceof ImageInvalidError) {
            r.errors.push({ type: "image-invalid", path, detail: e.detail });
          } else r.errors.push({ type: "image-open-failed", path, detail: detail(e) });
          bad = true;
        }
        if (bad) r.imagesCorrupted++;
      }
    }
    // refs/**: symlinks must resolve to an existing first-level entry.
    let refs: OwnedFd | null = null;
    try {
      refs = links.openDirIfExists(`${cat}/refs`);
    } catch (e) {
      r.errors.push({ type: "unexpected-file-type", path: `${cat}/refs`, detail: detail(e) });
    }
    if (!refs) continue;
    using _r = refs;
    const walk = (d: BorrowedFd, rel: string) => {
      for (const ent of readDir(d)) {
        const path = `${rel}/${ent.name}`;
        if (ent.type === DT.DIR) {
          using sub = openBeneath(d, ent.nameBytes, { flags: C.O_RDONLY | C.O_DIRECTORY });
          walk(sub, path);
        } else if (ent.type === DT.LNK) {
          const target = readlinkAt(d, ent.nameBytes);
          const resolved = resolveLinkTarget(path, target);
          const prefix = `${cat}/`;
          let ok = false;
          if (
            resolved && resolved.startsWith(prefix) && !resolved.slice(prefix.length).includes("/")
          ) {
            try {
              const id = links.firstLevelTarget(cat, resolved.slice(prefix.length));
              ok = id !== null && objectExists(id);
            } catch {
              ok = false;
            }
          }
          if (!ok) {
            r.errors.push({ type: "broken-symlink", path });
            r.brokenLinks++;
          }
        } else {
          r.errors.push({
            type: "unexpected-file-type",
            path,
            detail: "not a symlink or directory",
          });
        }
      }
    };
    walk(refs, `${cat}/refs`);
  }

  r.ok = r.errors.length === 0;
  return r;
}

/**
 * `meta.json` on disk (repository-format §1.2): reading it, writing it atomically (optionally
 * fs-verity sealed), and writing it for a legacy repository that predates it. Parsing lives in
 * `meta.ts`; this file does the I/O.
 *
 * @module
 */

import * as C from "../../ffi/constants.ts";
import { ERRNO, ErrnoError, isErrno } from "../../ffi/errno.ts";
import { DT, fsync, openBeneath, readAllAt, readDir, writeAll } from "../../ffi/fs.ts";
import { enableVerity, measureVerity } from "../../ffi/fsverity_ioctl.ts";
import type { BorrowedFd } from "../../ffi/owned_fd.ts";
import { TmpObject } from "../../ffi/tmp_object.ts";
import { type HashAlgorithm, kernelHashId } from "../fsverity/algorithm.ts";
import {
  OldFormatRepositoryError,
  UnsafeRepositoryEntryError,
  VerityUnsupportedError,
} from "./errors.ts";
import { META_JSON, newRepoMetadata, type RepoMetadata, serializeRepoMetadata } from "./meta.ts";
import { TMP_OBJECT_PREFIX } from "./names.ts";
import { parseObjectEntry } from "./object_id.ts";

/** meta.json mode (composefs-rs: 0644). */
const META_MODE = 0o644;

/** The bytes of `meta.json`, or null when there is none; a symlink there is refused. */
export function readMetaBytes(root: BorrowedFd): Uint8Array | null {
  let fd;
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

/**
 * Write meta.json the way objects are written (a temporary file linked once complete, so a
 * killed init never leaves a half-written one), fs-verity sealed when `verity`. Throws
 * ErrnoError EEXIST when meta.json appeared meanwhile (a concurrent init).
 */
export function writeMetaJson(
  root: BorrowedFd,
  path: string,
  meta: RepoMetadata,
  verity: boolean,
): void {
  using tmp = TmpObject.create(root, { mode: META_MODE, prefix: TMP_OBJECT_PREFIX });
  writeAll(tmp.fd, serializeRepoMetadata(meta));
  fsync(tmp.fd);
  const ro = tmp.reopenReadOnly();
  if (verity) {
    const r = enableVerity(ro, kernelHashId(meta.algorithm));
    if (r === "unsupported") throw new VerityUnsupportedError(path, " (use --insecure)");
    if (r === "busy") {
      throw new ErrnoError("ioctl(FS_IOC_ENABLE_VERITY)", ERRNO.ETXTBSY, `${path}/${META_JSON}`);
    }
  }
  tmp.link(META_JSON);
  fsync(root);
}

/**
 * Write meta.json for a pre-meta.json repository: the algorithm comes from the first object
 * name of 62 (sha256) or 126 (sha512) hex characters. Like composefs-rs (`RepoMetadata::new`)
 * the result is V1 + `v1_erofs`, so both implementations agree on the upgraded file.
 */
export function upgradeLegacy(root: BorrowedFd, abs: string): void {
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

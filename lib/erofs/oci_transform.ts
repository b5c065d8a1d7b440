/**
 * composefs-rs `transform_for_oci` (erofs-format §3.3), applied to every OCI image tree and,
 * unless `--no-propagate-usr-to-root`, to scanned directories: the root takes `/usr`'s
 * metadata, `/run` is emptied, and xattrs are filtered.
 *
 * @module
 */

import type { ByteString, Directory, Leaf, Stat } from "./tree.ts";

/** Which xattrs survive `transform_for_oci` (composefs-rs `XattrFiltering`). */
export type XattrFiltering = "allowlist-only" | "keep-user-xattrs";

/** The xattrs every mode keeps: file capabilities only (composefs-rs CONTAINER_XATTR_ALLOWLIST). */
export const CONTAINER_XATTR_ALLOWLIST: readonly string[] = ["security.capability"];

/** Parse a `--xattrs` value. */
export function parseXattrFiltering(s: string): XattrFiltering {
  if (s === "allowlist-only" || s === "keep-user-xattrs") return s;
  throw new RangeError(
    `Unknown xattr filtering mode "${s}": expected allowlist-only or keep-user-xattrs`,
  );
}

/** The tree has no `/usr` directory, whose metadata the root must take. */
export class MissingUsrError extends Error {
  /** Always `MissingUsrError`. */
  override name = "MissingUsrError";
  /** The error has no fields: `/usr` is missing or not a directory. */
  constructor() {
    super(`The image has no "/usr" directory (its metadata becomes the root's)`);
  }
}

/**
 * The root takes `/usr`'s mode, owner, mtime and xattrs; `/run` (if a directory) is emptied
 * and takes `/usr`'s mtime; then every inode's xattrs are filtered (hardlinked leaves once).
 *
 * @throws {MissingUsrError} when `/usr` is missing or not a directory.
 */
export function transformForOci(root: Directory, xattrs: XattrFiltering = "allowlist-only"): void {
  const usr = root.entries.get("usr");
  if (usr === undefined || usr.type !== "dir") throw new MissingUsrError();
  root.stat = { ...usr.stat, xattrs: new Map(usr.stat.xattrs) };
  const run = root.entries.get("run");
  if (run !== undefined && run.type === "dir") {
    run.stat.mtimeSec = usr.stat.mtimeSec;
    run.stat.mtimeNsec = usr.stat.mtimeNsec;
    run.entries.clear();
  }
  const keep = (name: ByteString) =>
    CONTAINER_XATTR_ALLOWLIST.includes(name) ||
    (xattrs === "keep-user-xattrs" && name.startsWith("user."));
  const seen = new Set<Leaf>();
  const filter = (s: Stat) => {
    for (const k of [...s.xattrs.keys()]) if (!keep(k)) s.xattrs.delete(k);
  };
  const stack: Directory[] = [root];
  while (stack.length > 0) {
    const d = stack.pop()!;
    filter(d.stat);
    for (const c of d.entries.values()) {
      if (c.type === "dir") stack.push(c);
      else if (!seen.has(c)) {
        seen.add(c);
        filter(c.stat);
      }
    }
  }
}

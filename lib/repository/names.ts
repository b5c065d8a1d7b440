/**
 * Names inside the repository: validation of stream/image/ref names and the relative symlink
 * targets of repository-format §1.4. Pure functions, no I/O.
 *
 * @module
 */

import { InvalidNameError } from "./errors.ts";

/**
 * Name prefix of a named temporary file where O_TMPFILE is unsupported: composefs-rs's, so a
 * repository only ever holds the transient names it knows (§1.1).
 */
export const TMP_OBJECT_PREFIX = ".tmp-object-";

/** Linux NAME_MAX: longest single path component in bytes. */
const NAME_MAX = 255;

/** Check one path component (a stream content id, an image hex name, a ref leaf). */
export function validateComponent(name: string, what = "name"): void {
  if (name.length === 0) throw new InvalidNameError(name, `empty ${what}`);
  if (name === "." || name === "..") throw new InvalidNameError(name, `"${name}" is not a ${what}`);
  if (name.includes("/")) throw new InvalidNameError(name, `a ${what} cannot contain "/"`);
  if (name.includes("\0")) throw new InvalidNameError(name, `a ${what} cannot contain NUL`);
  if (new TextEncoder().encode(name).length > NAME_MAX) {
    throw new InvalidNameError(name, `longer than ${NAME_MAX} bytes`);
  }
}

/** Check a first-level entry name of `streams/` or `images/` (`refs` is reserved). */
export function validateEntryName(name: string): void {
  validateComponent(name, "stream or image name");
  if (name === "refs") throw new InvalidNameError(name, `"refs" is reserved`);
}

/** Split and check a ref name `a/b/c` (relative, no empty, `.` or `..` components). */
export function refComponents(ref: string): string[] {
  if (ref.length === 0) throw new InvalidNameError(ref, "empty ref name");
  if (ref.startsWith("/")) throw new InvalidNameError(ref, "ref names are relative");
  const parts = ref.split("/");
  for (const p of parts) validateComponent(p, "ref name component");
  return parts;
}

/**
 * The symlink target written for link `linkPath` pointing at `target` (both relative to the
 * repository root), as composefs-rs's `symlink_impl`: drop the common leading components of
 * `dirname(linkPath)` and `target`, then one `..` per remaining directory component.
 */
export function relativeSymlinkTarget(linkPath: string, target: string): string {
  const dir = linkPath.split("/").slice(0, -1);
  const tgt = target.split("/");
  let common = 0;
  while (common < dir.length && common < tgt.length - 1 && dir[common] === tgt[common]) common++;
  const ups = dir.slice(common).map(() => "..");
  return [...ups, ...tgt.slice(common)].join("/");
}

/**
 * Resolve a relative symlink `target` found at `linkPath` (repository-relative) to a
 * repository-relative path; `null` when it is absolute or climbs above the root.
 */
export function resolveLinkTarget(linkPath: string, target: string): string | null {
  if (target.startsWith("/")) return null;
  const out = linkPath.split("/").slice(0, -1);
  for (const part of target.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length === 0) return null;
      out.pop();
    } else out.push(part);
  }
  return out.join("/");
}

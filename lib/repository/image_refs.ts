/**
 * Objects referenced by a composefs EROFS image: every external regular file
 * (`trusted.overlay.redirect` / metacopy, repository-format §4.8), read with the EROFS reader
 * (composefs-rs collects them the same way for GC and `image-objects`).
 *
 * @module
 */

import { digestSize, type HashAlgorithm } from "../fsverity/algorithm.ts";
import { ErofsFormatError, readErofs } from "../erofs/reader.ts";
import type { Directory } from "../erofs/tree.ts";
import { toHex } from "./object_id.ts";

/** The bytes are not a composefs EROFS image this reader accepts. */
export class ImageInvalidError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "ImageInvalidError";
  /** What the EROFS reader rejected. */
  readonly detail: string;
  /** Create the error from its structured fields. */
  constructor(detail: string, options?: ErrorOptions) {
    super(`Invalid composefs image: ${detail}`, options);
    this.detail = detail;
  }
}

/**
 * The distinct object IDs an image's external files point at, in directory-walk order (names
 * sorted bytewise). IDs of another length than `alg`'s are an {@link ImageInvalidError}.
 */
export function imageObjectRefs(image: Uint8Array, alg: HashAlgorithm): Uint8Array[] {
  let root: Directory;
  try {
    root = readErofs(image).root;
  } catch (e) {
    if (e instanceof ErofsFormatError) throw new ImageInvalidError(e.message, { cause: e });
    throw e;
  }
  const size = digestSize(alg);
  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  const walk = (dir: Directory) => {
    for (const [, inode] of dir.sortedEntries()) {
      if (inode.type === "dir") {
        walk(inode);
        continue;
      }
      if (inode.content.kind !== "regular") continue;
      const c = inode.content.content;
      if (c.kind !== "external" && c.kind !== "externalNoVerity") continue;
      if (c.digest.length !== size) {
        throw new ImageInvalidError(
          `object digest of ${c.digest.length} bytes in a ${alg} repository`,
        );
      }
      const hex = toHex(c.digest);
      if (seen.has(hex)) continue;
      seen.add(hex);
      out.push(c.digest);
    }
  };
  walk(root);
  return out;
}

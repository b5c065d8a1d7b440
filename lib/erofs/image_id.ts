/**
 * Image id: the fs-verity digest of the EROFS image bytes (spec erofs-format.md §4).
 *
 * @module
 */

import { fsverityDigest, type HashAlgorithm } from "../fsverity/mod.ts";
import type { FormatVersion } from "./format.ts";
import type { Directory } from "./tree.ts";
import { writeErofs } from "./writer.ts";

/** The fs-verity digest of an image (4 KiB blocks, no salt). */
export function imageId(image: Uint8Array, algorithm: HashAlgorithm): Uint8Array {
  return fsverityDigest(image, algorithm);
}

/** Write `root` in `version` and return its image id; the same tree differs per version. */
export function computeImageId(
  root: Directory,
  version: FormatVersion,
  algorithm: HashAlgorithm,
): Uint8Array {
  return imageId(writeErofs(root, { version }), algorithm);
}

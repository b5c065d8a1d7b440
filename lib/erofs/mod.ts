/**
 * composefs EROFS images: the tree model, the writer (V0/V1 byte-identical to C mkcomposefs
 * 1.0.8, V2 = legacy composefs-rs), the reader/fsck, dumpfiles (composefs-dump(5)), the image
 * id and the directory scan.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { imageId, parseDumpfile, readErofs, writeDumpfile, writeErofs } from "./mod.ts";
 *
 * const dump = "/ 0 40755 2 0 0 0 0.0 - - -\n";
 * const root = parseDumpfile(dump);
 * const image = writeErofs(root, { version: 1 });
 * assert.equal(
 *   imageId(image, "sha256").toHex(),
 *   "14a26c957c84f6eb774b91205476adc13196c7c33b9dd97d08d43725ecb90b63",
 * );
 * assert.equal(writeDumpfile(readErofs(image).root), dump);
 * ```
 *
 * @module
 */

export {
  bytesToByteString,
  type ByteString,
  byteStringToBytes,
  byteStringToUtf8,
  Directory,
  type FileSystem,
  type Inode,
  Leaf,
  type LeafContent,
  leafLinkCounts,
  makeStat,
  type RegularContent,
  regularSize,
  type Stat,
  utf8ToByteString,
} from "./tree.ts";
export {
  ErofsWriteError,
  metacopyValue,
  redirectPath,
  writeErofs,
  type WriteErofsOptions,
} from "./writer.ts";
export {
  ErofsFormatError,
  type ErofsImage,
  fsckErofs,
  type RawInode,
  readErofs,
  type ReadErofsOptions,
} from "./reader.ts";
export {
  DumpfileParseError,
  parseDumpfile,
  type ParseDumpfileOptions,
  writeDumpfile,
} from "./dumpfile.ts";
export { computeImageId, imageId } from "./image_id.ts";
export { scanDirectory, ScanError, type ScanOptions } from "./scan.ts";
export {
  CONTAINER_XATTR_ALLOWLIST,
  MissingUsrError,
  parseXattrFiltering,
  transformForOci,
  type XattrFiltering,
} from "./oci_transform.ts";
export { type FormatVersion, INLINE_CONTENT_MAX } from "./format.ts";
export type { HashAlgorithm } from "../fsverity/mod.ts";
export type { BorrowedFd, OwnedFd } from "../../ffi/owned_fd.ts";

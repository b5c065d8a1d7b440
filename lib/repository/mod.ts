/**
 * The composefs repository: `meta.json`, content-addressed objects, splitstreams, refs,
 * images, garbage collection and fsck, byte-compatible with composefs-rs.
 *
 * ```ts
 * import assert from "node:assert/strict";
 * import { CONTENT_TYPE, Repository, SplitstreamWriter } from "./mod.ts";
 *
 * const dir = await Deno.makeTempDir();
 * {
 *   using repo = await Repository.init(`${dir}/repo`, { algorithm: "sha512", insecure: true });
 *   const data = new TextEncoder().encode("file content ".repeat(10));
 *   const w = new SplitstreamWriter(repo.algorithm, CONTENT_TYPE.OCI_BLOB);
 *   w.writeExternal(repo.storeObject(data), data.length);
 *   repo.writeStream("my-blob", w.finish(), "my-ref");
 *   const bytes = new Uint8Array(await new Response(repo.catStream("refs/my-ref")).arrayBuffer());
 *   assert.deepEqual(bytes, data);
 *   assert.equal(repo.gc().objectsRemoved, 0);
 *   assert.ok(repo.fsck().ok);
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

export {
  type ImageEntry,
  type InitOptions,
  type InitResult,
  type ObjectImportOptions,
  type OpenOptions,
  type ParsedSplitstream,
  type RefEntry,
  Repository,
  type StoreFromFileOptions,
  type StoreMethod,
} from "./repository.ts";
export { ObjectWriter, type ObjectWriteResult } from "./object_writer.ts";
export {
  fromHex,
  InvalidObjectIdError,
  type ObjectId,
  objectPathOf,
  parseHexId,
  toHex,
  toIdString,
} from "./object_id.ts";
export {
  checkMetadata,
  effectiveErofsFormats,
  type ErofsFormats,
  type ErofsFormatVersion,
  type FeatureCheck,
  type FeatureFlags,
  IncompatibleFeaturesError,
  MetadataInvalidError,
  newRepoMetadata,
  parseRepoMetadata,
  REPO_FORMAT_VERSION,
  type RepoMetadata,
  serializeRepoMetadata,
  UnsupportedVersionError,
} from "./meta.ts";
export type { GcOptions, GcReport } from "./gc.ts";
export { ImageInvalidError, imageObjectRefs } from "./image_refs.ts";
export {
  formatFsckError,
  type FsckError,
  type FsckOptions,
  type FsckReport,
  fsckReportJson,
} from "./fsck.ts";
export {
  AlgorithmMismatchError,
  CopyNotAllowedError,
  InvalidNameError,
  MetadataMissingError,
  NotFoundError,
  ObjectDigestMismatchError,
  ObjectNotFoundError,
  OldFormatRepositoryError,
  RepositoryBusyError,
  RepositoryCorruptError,
  RepositoryExistsError,
  RepositoryPermissionError,
  RepositoryReadOnlyError,
  StreamMismatchError,
  UnsafeRepositoryEntryError,
  VerityMissingError,
  VerityUnsupportedError,
} from "./errors.ts";
export {
  CONTENT_TYPE,
  contentTypeOf,
  parseSplitstream,
  type Splitstream,
  type SplitstreamChunk,
  SplitstreamError,
  type SplitstreamErrorReason,
  SplitstreamWriter,
} from "./splitstream.ts";
export type { HashAlgorithm } from "../fsverity/algorithm.ts";
export type { BorrowedFd, OwnedFd } from "../../ffi/owned_fd.ts";

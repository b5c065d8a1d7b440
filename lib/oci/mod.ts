/**
 * OCI images in a composefs repository: pulling `oci:` layouts and `oci-archive:` files,
 * the tar → splitstream layer writer, tags, and reading images back.
 *
 * ```ts
 * import { pullImage, resolveImage } from "./mod.ts";
 * ```
 *
 * @module
 */

export { type ParsedDigest, parseDigest, sha256Digest } from "./digest.ts";
export {
  BlobDigestMismatchError,
  type BlobKind,
  BlobNotFoundError,
  BlobSizeMismatchError,
  DiffIdMismatchError,
  ImageNotFoundError,
  InvalidOciDocumentError,
  InvalidSourceError,
  InvalidTagError,
  NoMatchingPlatformError,
  UnsupportedMediaTypeError,
} from "./errors.ts";
export { LayerDecompressionError } from "./decompress.ts";
export {
  type FinalizedImage,
  finalizeImage,
  type ImageInspection,
  type ImageSummary,
  inspectImage,
  type LayerRef,
  listImages,
  listTags,
  resolveImage,
  type StoredImage,
  tagImage,
  untagImage,
} from "./image_store.ts";
export {
  type FileFromFdOptions,
  type LayerCommit,
  type LayerStats,
  LayerWriter,
  type LayerWriterOptions,
} from "./layer_writer.ts";
export { exportLayer, type LayerInfo, layerInfo } from "./layer_export.ts";
export {
  type LayoutReference,
  OciLayout,
  parseLayoutReference,
  type SelectedManifest,
} from "./layout_source.ts";
export type { Compression } from "./media_types.ts";
export type { Descriptor, ImageConfig, ImageManifest, Platform } from "./manifest.ts";
export { decodeTag, encodeTag } from "./names.ts";
export { ociFsck, type OciFsckReport } from "./oci_fsck.ts";
export { type PullEvent, pullImage, type PullOptions, type PullResult } from "./pull.ts";
export { INLINE_CONTENT_MAX } from "../erofs/format.ts";
export { TarFormatError, type TarSplitEntry, type TarSplitSink, TarSplitter } from "./tar_split.ts";

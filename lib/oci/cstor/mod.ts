/**
 * containers-storage (podman, buildah, skopeo's `containers-storage:`) as an image source:
 * store discovery as c/storage does it, the transport reference, and the zero-copy import.
 *
 * ```ts
 * import { pullFromContainersStorage } from "./mod.ts";
 * ```
 *
 * @module
 */

export { Crc64, crc64 } from "./crc64.ts";
export {
  LayerContentError,
  LayerMismatchError,
  StoreNotFoundError,
  TarSplitCorruptError,
  TarSplitCrcMismatchError,
} from "./errors.ts";
export { type CstorPullOptions, type CstorPullResult, pullFromContainersStorage } from "./pull.ts";
export {
  type CstorReference,
  CstorReferenceError,
  type ImageSelector,
  type NamedRef,
  parseCstorReference,
  type StoreSpec,
} from "./reference.ts";
export {
  CstorImageSource,
  type CstorLayer,
  type CstorLayerStream,
  type CstorOpenOptions,
} from "./source.ts";
export {
  type ResolveContext,
  resolveStoreOptions,
  StorageConfError,
  type StoreOptions,
} from "./storage_conf.ts";
export {
  AmbiguousImageError,
  type ImageRecord,
  LayerChainError,
  type LayerRecord,
  StoreMetadataError,
} from "./store_model.ts";
export type { LayerChunksOptions, LayerChunksStats } from "./layer_chunks.ts";
export { ContainersStore, type Driver, StoreLock } from "./store.ts";

/**
 * Typed errors of the containers-storage source.
 *
 * @module
 */

/** A configured store (graph root or additional image store) cannot be used. */
export class StoreNotFoundError extends Error {
  /** The error class name. */
  override name = "StoreNotFoundError";
  /** The store path. */
  readonly path: string;
  /** Why it cannot be used. */
  readonly reason: string;
  /** Build the error from its structured fields. */
  constructor(path: string, reason: string, options?: ErrorOptions) {
    super(`Containers storage "${path}" cannot be used: ${reason}`, options);
    this.path = path;
    this.reason = reason;
  }
}

/** A file's content in the layer directory does not match what tar-split recorded. */
export class LayerContentError extends Error {
  /** The error class name. */
  override name = "LayerContentError";
  /** Storage layer id. */
  readonly layerId: string;
  /** The tar member path. */
  readonly file: string;
  /** What is wrong. */
  readonly reason: string;
  /** Build the error from its structured fields. */
  constructor(layerId: string, file: string, reason: string, options?: ErrorOptions) {
    super(`Layer "${layerId}" file "${file}": ${reason}`, options);
    this.layerId = layerId;
    this.file = file;
    this.reason = reason;
  }
}

/** A file's CRC-64 differs from the one tar-split recorded: it changed behind the store's back. */
export class TarSplitCrcMismatchError extends LayerContentError {
  /** The error class name. */
  override name = "TarSplitCrcMismatchError";
  /** Recorded CRC (hex). */
  readonly expected: string;
  /** CRC of the file now (hex). */
  readonly actual: string;
  /** Build the error from its structured fields. */
  constructor(
    layerId: string,
    file: string,
    expected: string,
    actual: string,
    options?: ErrorOptions,
  ) {
    super(layerId, file, `CRC-64 is "${actual}" but tar-split recorded "${expected}"`, options);
    this.expected = expected;
    this.actual = actual;
  }
}

/** The `layers.json` diff-digests or the layer count disagree with the config's diff_ids. */
export class LayerMismatchError extends Error {
  /** The error class name. */
  override name = "LayerMismatchError";
  /** The image id. */
  readonly imageId: string;
  /** Build the error from its structured fields. */
  constructor(imageId: string, reason: string) {
    super(`Image "${imageId}": ${reason}`);
    this.imageId = imageId;
  }
}

/** A layer's `.tar-split.gz` cannot be decoded (bad gzip, bad JSON, bad entries). */
export class TarSplitCorruptError extends Error {
  /** The error class name. */
  override name = "TarSplitCorruptError";
  /** Storage layer id. */
  readonly layerId: string;
  /** Build the error from its structured fields. */
  constructor(layerId: string, reason: string, options?: ErrorOptions) {
    super(`Layer "${layerId}" has a corrupt tar-split file: ${reason}`, options);
    this.layerId = layerId;
  }
}

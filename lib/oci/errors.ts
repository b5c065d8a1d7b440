/**
 * Typed errors of OCI image handling: every failure names what was being read and the
 * expected and actual values, so a CLI user (or a varlink client) can tell what is wrong.
 *
 * @module
 */

/** Which kind of blob an error is about. */
export type BlobKind = "index" | "manifest" | "config" | "layer" | "blob";

/** A blob's length differs from its descriptor's `size` (truncated or padded blob). */
export class BlobSizeMismatchError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "BlobSizeMismatchError";
  /** What the blob is. */
  readonly kind: BlobKind;
  /** The descriptor digest. */
  readonly digest: string;
  /** Size from the descriptor. */
  readonly expected: number;
  /** Bytes actually found (a lower bound when reading stopped early). */
  readonly actual: number;
  /** Create the error from its structured fields. */
  constructor(kind: BlobKind, digest: string, expected: number, actual: number) {
    super(
      `Size mismatch for ${kind} blob "${digest}": expected ${expected} bytes, found ${actual}`,
    );
    this.kind = kind;
    this.digest = digest;
    this.expected = expected;
    this.actual = actual;
  }
}

/** A blob's sha256 differs from its descriptor digest. */
export class BlobDigestMismatchError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "BlobDigestMismatchError";
  /** What the blob is. */
  readonly kind: BlobKind;
  /** The descriptor digest. */
  readonly expected: string;
  /** The digest of the bytes read. */
  readonly actual: string;
  /** Create the error from its structured fields. */
  constructor(kind: BlobKind, expected: string, actual: string, options?: ErrorOptions) {
    super(`Digest mismatch for ${kind} blob: expected "${expected}", got "${actual}"`, options);
    this.kind = kind;
    this.expected = expected;
    this.actual = actual;
  }
}

/** The sha256 of a layer's uncompressed tar differs from the config's diff_id. */
export class DiffIdMismatchError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "DiffIdMismatchError";
  /** The layer (blob digest, or a description when there is no blob). */
  readonly layer: string;
  /** The config's diff_id. */
  readonly expected: string;
  /** sha256 of the uncompressed tar. */
  readonly actual: string;
  /** Create the error from its structured fields. */
  constructor(layer: string, expected: string, actual: string) {
    super(
      `Layer "${layer}" has diff_id "${actual}" but the config expects "${expected}"`,
    );
    this.layer = layer;
    this.expected = expected;
    this.actual = actual;
  }
}

/** A manifest, config or index that is not valid JSON or lacks required fields. */
export class InvalidOciDocumentError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "InvalidOciDocumentError";
  /** What the document is. */
  readonly kind: BlobKind;
  /** Its digest, when known. */
  readonly digest: string | undefined;
  /** Why it was rejected. */
  readonly reason: string;
  /** Create the error from its structured fields. */
  constructor(kind: BlobKind, digest: string | undefined, reason: string, options?: ErrorOptions) {
    super(`Invalid ${kind}${digest ? ` "${digest}"` : ""}: ${reason}`, options);
    this.kind = kind;
    this.digest = digest;
    this.reason = reason;
  }
}

/** A media type this implementation does not handle in that position. */
export class UnsupportedMediaTypeError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "UnsupportedMediaTypeError";
  /** The media type. */
  readonly mediaType: string;
  /** Where it was found (e.g. `layer sha256:…`). */
  readonly where: string;
  /** Create the error from its structured fields. */
  constructor(mediaType: string, where: string) {
    super(`Unsupported media type "${mediaType}" for ${where}`);
    this.mediaType = mediaType;
    this.where = where;
  }
}

/** A referenced image (tag or digest) does not exist in the source or repository. */
export class ImageNotFoundError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "ImageNotFoundError";
  /** The reference as given. */
  readonly reference: string;
  /** Where it was looked up. */
  readonly where: string;
  /** Create the error from its structured fields. */
  constructor(reference: string, where: string, options?: ErrorOptions) {
    super(`Image "${reference}" not found in ${where}`, options);
    this.reference = reference;
    this.where = where;
  }
}

/** An image index has no manifest for the wanted platform. */
export class NoMatchingPlatformError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "NoMatchingPlatformError";
  /** The wanted platform, `os/arch[/variant]`. */
  readonly platform: string;
  /** Platforms that were available. */
  readonly available: string[];
  /** Create the error from its structured fields. */
  constructor(platform: string, available: string[]) {
    super(
      `No manifest found for platform "${platform}"${
        available.length ? ` (available: ${available.join(", ")})` : ""
      }`,
    );
    this.platform = platform;
    this.available = available;
  }
}

/** A blob named by a descriptor is missing from the layout or archive. */
export class BlobNotFoundError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "BlobNotFoundError";
  /** The digest. */
  readonly digest: string;
  /** The source (layout path or archive). */
  readonly source: string;
  /** Create the error from its structured fields. */
  constructor(digest: string, source: string, options?: ErrorOptions) {
    super(`Blob "${digest}" not found in "${source}"`, options);
    this.digest = digest;
    this.source = source;
  }
}

/** A tag name that cannot be stored (empty, or starting with `@`). */
export class InvalidTagError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "InvalidTagError";
  /** The tag. */
  readonly tag: string;
  /** Why it was refused. */
  readonly reason: string;
  /** Create the error from its structured fields. */
  constructor(tag: string, reason: string) {
    super(`Invalid tag "${tag}": ${reason}`);
    this.tag = tag;
    this.reason = reason;
  }
}

/** A source reference string (`oci:…`, `oci-archive:…`) that cannot be parsed or is unsupported. */
export class InvalidSourceError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "InvalidSourceError";
  /** The reference. */
  readonly source: string;
  /** Why. */
  readonly reason: string;
  /** Create the error from its structured fields. */
  constructor(source: string, reason: string, options?: ErrorOptions) {
    super(`Invalid image source "${source}": ${reason}`, options);
    this.source = source;
    this.reason = reason;
  }
}

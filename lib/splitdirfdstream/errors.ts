/**
 * Typed errors of the splitdirfdstream codec and reconstruction. Every error has
 * structured fields; match on the class (`instanceof`) or on `name`.
 *
 * @module
 */

/**
 * Base class of every splitdirfdstream error.
 *
 * @example
 * ```ts
 * import { SplitdirfdstreamError } from "./errors.ts";
 * import { decodeChunks } from "./decoder.ts";
 * import assert from "node:assert/strict";
 * assert.throws(() => decodeChunks(new Uint8Array([9])), SplitdirfdstreamError);
 * ```
 */
export class SplitdirfdstreamError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "SplitdirfdstreamError";
}

/**
 * The stream ended inside a chunk (EOF is clean only at a type byte).
 *
 * @example
 * ```ts
 * import { TruncatedError } from "./errors.ts";
 * import { decodeChunks } from "./decoder.ts";
 * import assert from "node:assert/strict";
 * assert.throws(() => decodeChunks(new Uint8Array([0, 1, 0])), TruncatedError);
 * ```
 */
export class TruncatedError extends SplitdirfdstreamError {
  /** Error name, for matching without `instanceof`. */
  override name = "TruncatedError";
  /** Stream offset at which the unfinished chunk began. */
  readonly chunkOffset: number;
  /** How many more bytes the unfinished chunk needed. */
  readonly missing: number;
  /** Make the error; `options.cause` carries the underlying error, if any. */
  constructor(chunkOffset: number, missing: number, options?: ErrorOptions) {
    super(
      `Truncated stream: chunk at offset ${chunkOffset} is missing ${missing} byte(s)`,
      options,
    );
    this.chunkOffset = chunkOffset;
    this.missing = missing;
  }
}

/**
 * A chunk began with a type byte other than 0x00, 0x01 or 0x02.
 *
 * @example
 * ```ts
 * import { UnknownChunkTypeError } from "./errors.ts";
 * import { decodeChunks } from "./decoder.ts";
 * import assert from "node:assert/strict";
 * assert.throws(() => decodeChunks(new Uint8Array([3])), { byte: 3 });
 * assert.ok(new UnknownChunkTypeError(3, 0).message.includes("0x03"));
 * ```
 */
export class UnknownChunkTypeError extends SplitdirfdstreamError {
  /** Error name, for matching without `instanceof`. */
  override name = "UnknownChunkTypeError";
  /** The type byte found. */
  readonly byte: number;
  /** Its stream offset. */
  readonly offset: number;
  /** Make the error; `options.cause` carries the underlying error, if any. */
  constructor(byte: number, offset: number, options?: ErrorOptions) {
    super(
      `Unknown chunk type byte "0x${byte.toString(16).padStart(2, "0")}" at offset ${offset}`,
      options,
    );
    this.byte = byte;
    this.offset = offset;
  }
}

/**
 * A Metadata or InlineData body is longer than `MAX_INLINE_CHUNK_SIZE`.
 *
 * @example
 * ```ts
 * import { InlineTooLargeError } from "./errors.ts";
 * import { decodeChunks } from "./decoder.ts";
 * import assert from "node:assert/strict";
 * assert.throws(
 *   () => decodeChunks(new Uint8Array([1, 0xff, 0xff, 0xff, 0xff])),
 *   InlineTooLargeError,
 * );
 * ```
 */
export class InlineTooLargeError extends SplitdirfdstreamError {
  /** Error name, for matching without `instanceof`. */
  override name = "InlineTooLargeError";
  /** Declared (or given) body length. */
  readonly size: number;
  /** The limit. */
  readonly max: number;
  /** Make the error; `options.cause` carries the underlying error, if any. */
  constructor(size: number, max: number, options?: ErrorOptions) {
    super(`Inline chunk size ${size} exceeds maximum ${max}`, options);
    this.size = size;
    this.max = max;
  }
}

/**
 * A FileBackedData filename is longer than `MAX_FILENAME_LEN` bytes.
 *
 * @example
 * ```ts
 * import { FilenameTooLongError } from "./errors.ts";
 * import { validateFilename } from "./validate_filename.ts";
 * import assert from "node:assert/strict";
 * assert.throws(() => validateFilename("a".repeat(4097)), FilenameTooLongError);
 * ```
 */
export class FilenameTooLongError extends SplitdirfdstreamError {
  /** Error name, for matching without `instanceof`. */
  override name = "FilenameTooLongError";
  /** Length in bytes. */
  readonly length: number;
  /** The limit. */
  readonly max: number;
  /** Make the error; `options.cause` carries the underlying error, if any. */
  constructor(length: number, max: number, options?: ErrorOptions) {
    super(`Filename length ${length} exceeds maximum ${max}`, options);
    this.length = length;
    this.max = max;
  }
}

/**
 * A FileBackedData filename is unsafe or unrepresentable (empty, NUL, absolute, `..`, not UTF-8).
 *
 * @example
 * ```ts
 * import { InvalidFilenameError } from "./errors.ts";
 * import { validateFilename } from "./validate_filename.ts";
 * import assert from "node:assert/strict";
 * assert.throws(() => validateFilename("/etc/passwd"), { reason: "absolute path" });
 * assert.ok(new InvalidFilenameError("x", "y") instanceof Error);
 * ```
 */
export class InvalidFilenameError extends SplitdirfdstreamError {
  /** Error name, for matching without `instanceof`. */
  override name = "InvalidFilenameError";
  /** The filename (lossily decoded when it was not UTF-8). */
  readonly filename: string;
  /** Why it was refused, e.g. `".." component`. */
  readonly reason: string;
  /** Make the error; `options.cause` carries the underlying error, if any. */
  constructor(filename: string, reason: string, options?: ErrorOptions) {
    super(`Invalid filename "${filename}": ${reason}`, options);
    this.filename = filename;
    this.reason = reason;
  }
}

/**
 * A FileBackedData `content_len` does not fit in a JavaScript number (> 2^53 - 1).
 *
 * @example
 * ```ts
 * import { ContentLengthTooLargeError } from "./errors.ts";
 * import assert from "node:assert/strict";
 * assert.equal(new ContentLengthTooLargeError(2n ** 64n - 1n).contentLength, 2n ** 64n - 1n);
 * ```
 */
export class ContentLengthTooLargeError extends SplitdirfdstreamError {
  /** Error name, for matching without `instanceof`. */
  override name = "ContentLengthTooLargeError";
  /** The declared length. */
  readonly contentLength: bigint;
  /** Make the error; `options.cause` carries the underlying error, if any. */
  constructor(contentLength: bigint, options?: ErrorOptions) {
    super(
      `Content length ${contentLength} exceeds the largest supported ${Number.MAX_SAFE_INTEGER}`,
      options,
    );
    this.contentLength = contentLength;
  }
}

/**
 * A FileBackedData `dirfd_index` is not below the number of directory fds given.
 *
 * @example
 * ```ts
 * import { DirfdIndexOutOfRangeError } from "./errors.ts";
 * import { openChunkFile } from "./reconstruct.ts";
 * import assert from "node:assert/strict";
 * assert.throws(() => openChunkFile([], 0, "x"), DirfdIndexOutOfRangeError);
 * ```
 */
export class DirfdIndexOutOfRangeError extends SplitdirfdstreamError {
  /** Error name, for matching without `instanceof`. */
  override name = "DirfdIndexOutOfRangeError";
  /** The index in the chunk. */
  readonly index: number;
  /** How many dirfds there are. */
  readonly count: number;
  /** Make the error; `options.cause` carries the underlying error, if any. */
  constructor(index: number, count: number, options?: ErrorOptions) {
    super(`Dirfd index ${index} out of range (have ${count} dirfds)`, options);
    this.index = index;
    this.count = count;
  }
}

/**
 * A referenced file had fewer bytes than its chunk's `content_len` (composefs-rs: ExternalTooShort).
 *
 * @example
 * ```ts
 * import { FileShorterThanDeclaredError } from "./errors.ts";
 * import assert from "node:assert/strict";
 * const e = new FileShorterThanDeclaredError("ab/cd", 10, 3);
 * assert.equal(e.declared - e.actual, 7);
 * ```
 */
export class FileShorterThanDeclaredError extends SplitdirfdstreamError {
  /** Error name, for matching without `instanceof`. */
  override name = "FileShorterThanDeclaredError";
  /** The file. */
  readonly filename: string;
  /** `content_len` of the chunk. */
  readonly declared: number;
  /** Bytes read before EOF. */
  readonly actual: number;
  /** Make the error; `options.cause` carries the underlying error, if any. */
  constructor(filename: string, declared: number, actual: number, options?: ErrorOptions) {
    super(
      `File "${filename}" is shorter than declared length ${declared} (got ${actual})`,
      options,
    );
    this.filename = filename;
    this.declared = declared;
    this.actual = actual;
  }
}

/**
 * A referenced file could not be opened safely beneath its directory: it escapes it
 * (symlink, `..` through a symlink, mount crossing), does not exist, or is not a regular
 * file. The errno, when there is one, is in `cause`.
 *
 * @example
 * ```ts
 * import { FileOpenError } from "./errors.ts";
 * import assert from "node:assert/strict";
 * assert.equal(new FileOpenError("x", 0, "ELOOP").reason, "ELOOP");
 * ```
 */
export class FileOpenError extends SplitdirfdstreamError {
  /** Error name, for matching without `instanceof`. */
  override name = "FileOpenError";
  /** The file. */
  readonly filename: string;
  /** Index of its directory fd. */
  readonly dirfdIndex: number;
  /** Why, e.g. `ELOOP` or `not a regular file`. */
  readonly reason: string;
  /** Make the error; `options.cause` carries the underlying error, if any. */
  constructor(filename: string, dirfdIndex: number, reason: string, options?: ErrorOptions) {
    super(`Cannot open "${filename}" beneath dirfd ${dirfdIndex}: ${reason}`, options);
    this.filename = filename;
    this.dirfdIndex = dirfdIndex;
    this.reason = reason;
  }
}

/**
 * More fds than fit in one frame were to be sent with `more: false`; retry with `more: true`.
 *
 * @example
 * ```ts
 * import { FdLimitExceededError } from "./errors.ts";
 * import { splitFdsIntoFrames } from "./transport.ts";
 * import assert from "node:assert/strict";
 * assert.throws(
 *   () => splitFdsIntoFrames(new Array(241).fill(0), 0n, false),
 *   FdLimitExceededError,
 * );
 * ```
 */
export class FdLimitExceededError extends SplitdirfdstreamError {
  /** Error name, for matching without `instanceof`. */
  override name = "FdLimitExceededError";
  /** Total fds. */
  readonly fdCount: number;
  /** The per-frame cap. */
  readonly maxPerFrame: number;
  /** Make the error; `options.cause` carries the underlying error, if any. */
  constructor(fdCount: number, maxPerFrame: number, options?: ErrorOptions) {
    super(
      `Fd count ${fdCount} exceeds per-frame limit ${maxPerFrame}; retry with more=true`,
      options,
    );
    this.fdCount = fdCount;
    this.maxPerFrame = maxPerFrame;
  }
}

/**
 * A received GetLayer fd array does not have the shape `[pipe, dirfds × dir_count, lifetime…]`.
 *
 * @example
 * ```ts
 * import { InvalidFdLayoutError } from "./errors.ts";
 * import { splitLayerFds } from "./transport.ts";
 * import assert from "node:assert/strict";
 * assert.throws(() => splitLayerFds([1, 2], 1), InvalidFdLayoutError);
 * ```
 */
export class InvalidFdLayoutError extends SplitdirfdstreamError {
  /** Error name, for matching without `instanceof`. */
  override name = "InvalidFdLayoutError";
  /** Number of fds received. */
  readonly fdCount: number;
  /** `dir_count` of the reply. */
  readonly dirCount: number;
  /** Make the error; `options.cause` carries the underlying error, if any. */
  constructor(fdCount: number, dirCount: number, options?: ErrorOptions) {
    super(
      `Received ${fdCount} fd(s) but dir_count ${dirCount} needs at least ${dirCount + 2}`,
      options,
    );
    this.fdCount = fdCount;
    this.dirCount = dirCount;
  }
}

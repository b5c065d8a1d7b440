/**
 * splitdirfdstream: composefs's layer transport format. A byte stream (a layer tar) is
 * sent as a mix of inline bytes and references to whole files that the receiver opens
 * itself beneath an out-of-band, ordered array of directory fds `dirfds[0..D]`, so the bulk
 * of a layer never travels through the pipe. Byte-compatible with composefs-rs
 * (`composefs-splitdirfdstream` 0.9.0).
 *
 * ## Wire format
 *
 * A sequence of chunks with no header or footer. All integers are little-endian. Each chunk
 * begins with a single type byte:
 *
 * | Type byte | Chunk          | Remaining header                                                  | Body                         |
 * |-----------|----------------|-------------------------------------------------------------------|------------------------------|
 * | `0x00`    | Metadata       | `u32 LE` — body length                                            | `length` bytes               |
 * | `0x01`    | InlineData     | `u32 LE` — body length                                            | `length` bytes               |
 * | `0x02`    | FileBackedData | `u64 LE` content_length, `u32 LE` dirfd_index, `u32 LE` name_len | `name_len` bytes of filename |
 *
 * - The stream ends at a clean EOF right before a type byte; EOF anywhere inside a chunk is
 *   {@link TruncatedError}; any other type byte is {@link UnknownChunkTypeError}.
 * - Writers never emit an empty Metadata chunk, but do emit a zero-length InlineData chunk
 *   (an empty file the consumer could not open must still be transported).
 * - FileBackedData means: the first `content_length` bytes, from offset 0, of `filename`
 *   opened beneath `dirfds[dirfd_index]`. It always names a whole file (so it can be
 *   reflinked); the explicit length makes the stream self-framing, so a file that changes
 *   under the reader cannot shift entry boundaries.
 * - Concatenating all chunk payloads gives the original stream (for a layer: the
 *   uncompressed tar, whose sha256 is the diff_id — verify it, the format has no checksum).
 *
 * ## Limits
 *
 * | Constant | Value | Purpose |
 * |----------|-------|---------|
 * | {@link MAX_INLINE_CHUNK_SIZE} | 256 MiB | Bounds memory for one Metadata or InlineData body ({@link InlineTooLargeError}). |
 * | {@link MAX_FILENAME_LEN} | 4096 bytes | Bounds a FileBackedData filename ({@link FilenameTooLongError}). |
 * | {@link MAX_FDS_PER_FRAME} | 240 | fds per varlink frame, below the kernel's 253 per `sendmsg`. |
 *
 * A `content_length` above 2^53 − 1 is {@link ContentLengthTooLargeError}; filenames that
 * are not UTF-8 are {@link InvalidFilenameError} (`"not UTF-8"`).
 *
 * ## Safety
 *
 * The decoder checks structure only. Filenames are attacker-controlled: every consumer must
 * pass them through {@link validateFilename} (no `..` component, not absolute, no NUL, not
 * empty, ≤ 4096 bytes) and open them beneath their dirfd; {@link reconstruct} and
 * {@link openChunkFile} do both, with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)`, refuse non-regular files, and `pread` into
 * the reader's fixed-size buffer (never sized from `content_length`).
 *
 * ## API
 *
 * | Item | Role |
 * |------|------|
 * | {@link Chunk} | `metadata` / `inlineData` / `fileBackedData` |
 * | {@link SplitdirfdstreamEncoderStream}, {@link encodeChunk}, {@link encodeChunks} | chunks → bytes |
 * | {@link SplitdirfdstreamDecoderStream}, {@link ChunkDecoder}, {@link decodeChunks} | bytes → chunks |
 * | {@link reconstruct}, {@link openChunkFile} | chunks + dirfds → the original bytes |
 * | {@link validateFilename} | the path-safety predicate |
 * | {@link produceFromTar} | tar + its extracted directory → chunks (producer side) |
 * | {@link splitFdsIntoFrames}, {@link buildLayerFdLayout}, {@link splitLayerFds}, {@link seedFromId} | GetLayer fd layout and frames |
 *
 * @example
 * ```ts
 * import {
 *   decodeChunks,
 *   encodeChunks,
 *   MAX_INLINE_CHUNK_SIZE,
 * } from "./mod.ts";
 * import assert from "node:assert/strict";
 * const bytes = encodeChunks([
 *   { type: "metadata", data: new TextEncoder().encode("tar header") },
 *   { type: "fileBackedData", contentLength: 5, dirfdIndex: 0, filename: "ab/cdef" },
 * ]);
 * assert.equal(bytes[0], 0x00);
 * assert.equal(decodeChunks(bytes).length, 2);
 * assert.equal(MAX_INLINE_CHUNK_SIZE, 256 * 1024 * 1024);
 * ```
 *
 * @module
 */

export type { Chunk } from "./chunk.ts";
export {
  CHUNK_FILE_BACKED_DATA,
  CHUNK_INLINE_DATA,
  CHUNK_METADATA,
  MAX_FDS_PER_FRAME,
  MAX_FILENAME_LEN,
  MAX_INLINE_CHUNK_SIZE,
} from "./constants.ts";
export {
  ContentLengthTooLargeError,
  DirfdIndexOutOfRangeError,
  FdLimitExceededError,
  FilenameTooLongError,
  FileOpenError,
  FileShorterThanDeclaredError,
  InlineTooLargeError,
  InvalidFdLayoutError,
  InvalidFilenameError,
  SplitdirfdstreamError,
  TruncatedError,
  UnknownChunkTypeError,
} from "./errors.ts";
export { encodeChunk, encodeChunks, SplitdirfdstreamEncoderStream } from "./encoder.ts";
export { ChunkDecoder, decodeChunks, SplitdirfdstreamDecoderStream } from "./decoder.ts";
export { validateFilename } from "./validate_filename.ts";
export { openChunkFile, reconstruct, RECONSTRUCT_READ_SIZE } from "./reconstruct.ts";
export {
  produceFromTar,
  type ProduceFromTarOptions,
  ProducerFileError,
} from "./produce_from_tar.ts";
export {
  buildLayerFdLayout,
  computeNFrames,
  type LayerFdLayout,
  type LayerFdLayoutInput,
  type ReceivedLayerFds,
  seedFromId,
  splitFdsIntoFrames,
  splitLayerFds,
} from "./transport.ts";

/**
 * The decoded form of one splitdirfdstream chunk.
 *
 * @module
 */

/**
 * One chunk of a splitdirfdstream.
 *
 * - `metadata`: raw stream bytes (tar headers, padding), copied verbatim.
 * - `inlineData`: file content sent inline; `data.length` is also the file's size.
 * - `fileBackedData`: the first `contentLength` bytes of `filename`, opened beneath
 *   `dirfds[dirfdIndex]`. The decoder checks only structure: validate `filename` with
 *   `validateFilename` before using it (`reconstruct` does).
 *
 * A decoded `data` may be a view into an input buffer of the decoder, shared with
 * neighbouring chunks: treat it as read-only and never transfer its `ArrayBuffer` (for
 * example by enqueueing it into a `type: "bytes"` stream); copy it first if you must.
 */
export type Chunk =
  | { type: "metadata"; data: Uint8Array }
  | { type: "inlineData"; data: Uint8Array }
  | { type: "fileBackedData"; contentLength: number; dirfdIndex: number; filename: string };

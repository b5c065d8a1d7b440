/**
 * Chunks → splitdirfdstream bytes.
 *
 * @module
 */

import { concatBytes } from "../bytes.ts";
import type { Chunk } from "./chunk.ts";
import {
  CHUNK_FILE_BACKED_DATA,
  CHUNK_INLINE_DATA,
  CHUNK_METADATA,
  FILE_BACKED_HEADER_SIZE,
  INLINE_HEADER_SIZE,
  MAX_INLINE_CHUNK_SIZE,
} from "./constants.ts";
import { InlineTooLargeError } from "./errors.ts";
import { validateFilename } from "./validate_filename.ts";

/**
 * Bodies up to this size are copied behind their header into one output buffer; larger
 * ones are passed on as a separate (uncopied) buffer. One write per small chunk keeps pipe
 * syscalls few; not copying large bodies keeps the encoder's cost independent of their size.
 */
const COALESCE_LIMIT = 64 * 1024;

/** Largest u32 (dirfd_index field). */
const U32_MAX = 0xffff_ffff;

function inlineParts(type: number, data: Uint8Array): Uint8Array[] {
  if (data.length > MAX_INLINE_CHUNK_SIZE) {
    throw new InlineTooLargeError(data.length, MAX_INLINE_CHUNK_SIZE);
  }
  if (data.length <= COALESCE_LIMIT) {
    const out = new Uint8Array(INLINE_HEADER_SIZE + data.length);
    out[0] = type;
    new DataView(out.buffer).setUint32(1, data.length, true);
    out.set(data, INLINE_HEADER_SIZE);
    return [out];
  }
  const header = new Uint8Array(INLINE_HEADER_SIZE);
  header[0] = type;
  new DataView(header.buffer).setUint32(1, data.length, true);
  return [header, data];
}

/**
 * Encode one chunk as the byte buffers to write, in order: none for an empty Metadata
 * chunk (writers drop those), otherwise one or two buffers (a large body is not copied).
 *
 * FileBackedData filenames are validated first, as composefs-rs writers do.
 *
 * @throws {InlineTooLargeError} a body longer than `MAX_INLINE_CHUNK_SIZE`.
 * @throws {InvalidFilenameError} / {FilenameTooLongError} from `validateFilename`.
 * @throws {RangeError} `contentLength` or `dirfdIndex` not a non-negative safe integer
 *   (dirfdIndex ≤ 2^32 - 1).
 *
 * @example
 * ```ts
 * import { encodeChunk } from "./encoder.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(encodeChunk({ type: "metadata", data: new Uint8Array() }), []);
 * const [bytes] = encodeChunk({ type: "fileBackedData", contentLength: 1, dirfdIndex: 2, filename: "f" });
 * assert.deepEqual(bytes, new Uint8Array([2, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0x66]));
 * ```
 */
export function encodeChunk(chunk: Chunk): Uint8Array[] {
  switch (chunk.type) {
    case "metadata":
      return chunk.data.length === 0 ? [] : inlineParts(CHUNK_METADATA, chunk.data);
    case "inlineData":
      return inlineParts(CHUNK_INLINE_DATA, chunk.data);
    case "fileBackedData": {
      const { contentLength, dirfdIndex, filename } = chunk;
      if (!Number.isSafeInteger(contentLength) || contentLength < 0) {
        throw new RangeError(`Invalid content length: ${contentLength}`);
      }
      if (!Number.isInteger(dirfdIndex) || dirfdIndex < 0 || dirfdIndex > U32_MAX) {
        throw new RangeError(`Invalid dirfd index: ${dirfdIndex}`);
      }
      const name = validateFilename(filename);
      const out = new Uint8Array(FILE_BACKED_HEADER_SIZE + name.length);
      const dv = new DataView(out.buffer);
      out[0] = CHUNK_FILE_BACKED_DATA;
      dv.setBigUint64(1, BigInt(contentLength), true);
      dv.setUint32(9, dirfdIndex, true);
      dv.setUint32(13, name.length, true);
      out.set(name, FILE_BACKED_HEADER_SIZE);
      return [out];
    }
    default: {
      const never: never = chunk;
      throw new TypeError(`Unknown chunk type: ${JSON.stringify((never as Chunk).type)}`);
    }
  }
}

/**
 * Encode a whole sequence of chunks into one buffer (tests, small streams).
 *
 * @example
 * ```ts
 * import { encodeChunks } from "./encoder.ts";
 * import assert from "node:assert/strict";
 * const bytes = encodeChunks([{ type: "metadata", data: new Uint8Array([7]) }]);
 * assert.deepEqual(bytes, new Uint8Array([0x00, 1, 0, 0, 0, 7]));
 * ```
 */
export function encodeChunks(chunks: Iterable<Chunk>): Uint8Array<ArrayBuffer> {
  const parts: Uint8Array[] = [];
  for (const c of chunks) parts.push(...encodeChunk(c));
  return concatBytes(parts);
}

/**
 * A `TransformStream` from {@link Chunk}s to splitdirfdstream bytes.
 *
 * Empty Metadata chunks produce no bytes; zero-length InlineData chunks are written. Bodies
 * larger than 64 KiB are passed through without copying. Invalid chunks error the stream
 * (see {@link encodeChunk}).
 *
 * @example
 * ```ts
 * import { SplitdirfdstreamEncoderStream } from "./encoder.ts";
 * import assert from "node:assert/strict";
 * const bytes = await new Response(
 *   ReadableStream.from([{ type: "inlineData" as const, data: new Uint8Array() }])
 *     .pipeThrough(new SplitdirfdstreamEncoderStream()),
 * ).bytes();
 * assert.deepEqual(bytes, new Uint8Array([0x01, 0, 0, 0, 0]));
 * ```
 */
export class SplitdirfdstreamEncoderStream extends TransformStream<Chunk, Uint8Array> {
  constructor() {
    super({
      transform(chunk, controller) {
        for (const part of encodeChunk(chunk)) controller.enqueue(part);
      },
    });
  }
}

/**
 * splitdirfdstream bytes → chunks: an incremental, allocation-bounded parser.
 *
 * @module
 */

import type { Chunk } from "./chunk.ts";
import {
  CHUNK_FILE_BACKED_DATA,
  CHUNK_INLINE_DATA,
  CHUNK_METADATA,
  FILE_BACKED_HEADER_SIZE,
  INLINE_HEADER_SIZE,
  MAX_FILENAME_LEN,
  MAX_INLINE_CHUNK_SIZE,
} from "./constants.ts";
import {
  ContentLengthTooLargeError,
  FilenameTooLongError,
  InlineTooLargeError,
  InvalidFilenameError,
  TruncatedError,
  UnknownChunkTypeError,
} from "./errors.ts";

const utf8Strict = new TextDecoder("utf-8", { fatal: true });
const utf8Lossy = new TextDecoder("utf-8");
/** High 32 bits of `Number.MAX_SAFE_INTEGER` (2^53 - 1): a larger high word does not fit. */
const MAX_SAFE_HIGH = 0x1f_ffff;

/** Decode a filename: plain ASCII (object paths, most layer paths) without TextDecoder. */
function decodeName(body: Uint8Array): string {
  let ascii = true;
  for (let i = 0; i < body.length; i++) {
    if (body[i] >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii && body.length <= 256) {
    return String.fromCharCode.apply(null, body as unknown as number[]);
  }
  try {
    return utf8Strict.decode(body);
  } catch (e) {
    throw new InvalidFilenameError(utf8Lossy.decode(body), "not UTF-8", { cause: e });
  }
}

/**
 * Incremental decoder: feed byte buffers split at any boundary with {@link push}, then call
 * {@link finish}. Chunks come out as soon as they are complete, identically however the
 * input was split.
 *
 * Memory is bounded by one chunk body (≤ `MAX_INLINE_CHUNK_SIZE`, and never more than the
 * bytes actually received): a body that arrives whole inside one input buffer is emitted as
 * a view of it without copying; a body spread over several inputs is gathered and copied
 * once. Only structure is checked: FileBackedData filenames must still go through
 * `validateFilename` before use.
 *
 * After an error the decoder is unusable (every later call throws the same error).
 *
 * @example
 * ```ts
 * import { ChunkDecoder } from "./decoder.ts";
 * import assert from "node:assert/strict";
 * const d = new ChunkDecoder();
 * const out: unknown[] = [];
 * d.push(new Uint8Array([0x00, 2, 0]), (c) => out.push(c));
 * d.push(new Uint8Array([0, 0, 9, 8]), (c) => out.push(c));
 * d.finish();
 * assert.deepEqual(out, [{ type: "metadata", data: new Uint8Array([9, 8]) }]);
 * ```
 */
export class ChunkDecoder {
  /** Stream offset of the first byte of the next `push`. */
  #offset = 0;
  /** Stream offset of the chunk being parsed. */
  #chunkStart = 0;
  /** Header bytes gathered so far (type byte included). */
  #hdr = new Uint8Array(FILE_BACKED_HEADER_SIZE);
  #hdrView = new DataView(this.#hdr.buffer);
  #hdrFill = 0;
  #hdrNeed = 0;
  /** True while reading a body (inline data or filename). */
  #inBody = false;
  #type = 0;
  #bodyLen = 0;
  #bodyFill = 0;
  #pieces: Uint8Array[] = [];
  #contentLength = 0;
  #dirfdIndex = 0;
  #failed: Error | undefined;

  /** Total bytes consumed so far. */
  get offset(): number {
    return this.#offset;
  }

  /** Decode `input`, calling `emit` for every chunk completed by it. */
  push(input: Uint8Array, emit: (chunk: Chunk) => void): void {
    if (this.#failed) throw this.#failed;
    try {
      this.#push(input, emit);
    } catch (e) {
      this.#failed = e as Error;
      throw e;
    }
    this.#offset += input.length;
  }

  /**
   * Declare end of input.
   *
   * @throws {TruncatedError} when the input stopped inside a chunk (`missing` is a lower
   *   bound if the header itself was cut).
   */
  finish(): void {
    if (this.#failed) throw this.#failed;
    if (this.#inBody) {
      this.#failed = new TruncatedError(this.#chunkStart, this.#bodyLen - this.#bodyFill);
    } else if (this.#hdrFill > 0) {
      this.#failed = new TruncatedError(this.#chunkStart, this.#hdrNeed - this.#hdrFill);
    }
    if (this.#failed) throw this.#failed;
  }

  #push(input: Uint8Array, emit: (chunk: Chunk) => void): void {
    const n = input.length;
    let pos = 0;
    let view: DataView | undefined;
    while (pos < n) {
      if (!this.#inBody) {
        if (this.#hdrFill === 0) {
          this.#chunkStart = this.#offset + pos;
          const type = input[pos];
          if (type === CHUNK_METADATA || type === CHUNK_INLINE_DATA) {
            this.#hdrNeed = INLINE_HEADER_SIZE;
          } else if (type === CHUNK_FILE_BACKED_DATA) {
            this.#hdrNeed = FILE_BACKED_HEADER_SIZE;
          } else {
            throw new UnknownChunkTypeError(type, this.#chunkStart);
          }
          this.#type = type;
        }
        if (this.#hdrFill === 0 && n - pos >= this.#hdrNeed) {
          // Fast path: the whole header is in this input; read it in place.
          view ??= new DataView(input.buffer, input.byteOffset, input.byteLength);
          this.#startBody(view, pos);
          pos += this.#hdrNeed;
        } else {
          const take = Math.min(this.#hdrNeed - this.#hdrFill, n - pos);
          this.#hdr.set(input.subarray(pos, pos + take), this.#hdrFill);
          this.#hdrFill += take;
          pos += take;
          if (this.#hdrFill < this.#hdrNeed) return;
          this.#hdrFill = 0;
          this.#startBody(this.#hdrView, 0);
        }
        if (this.#bodyLen === 0) this.#emit(new Uint8Array(0), emit);
        continue;
      }
      const need = this.#bodyLen - this.#bodyFill;
      const avail = n - pos;
      if (this.#bodyFill === 0 && avail >= need) {
        // Fast path: the whole body is inside this input; hand out a view, no copy.
        this.#emit(input.subarray(pos, pos + need), emit);
        pos += need;
        continue;
      }
      const take = Math.min(need, avail);
      this.#pieces.push(input.subarray(pos, pos + take));
      this.#bodyFill += take;
      pos += take;
      if (this.#bodyFill === this.#bodyLen) {
        const body = new Uint8Array(this.#bodyLen);
        let off = 0;
        for (const p of this.#pieces) {
          body.set(p, off);
          off += p.length;
        }
        this.#pieces = [];
        this.#emit(body, emit);
      }
    }
  }

  /** Parse a complete header at `base` of `dv` and switch to body mode (limits checked first). */
  #startBody(dv: DataView, base: number): void {
    if (this.#type === CHUNK_FILE_BACKED_DATA) {
      // u64 content_len as two u32 halves: no BigInt on the hot path.
      const lo = dv.getUint32(base + 1, true);
      const hi = dv.getUint32(base + 5, true);
      const nameLen = dv.getUint32(base + 13, true);
      if (nameLen > MAX_FILENAME_LEN) throw new FilenameTooLongError(nameLen, MAX_FILENAME_LEN);
      if (hi > MAX_SAFE_HIGH) {
        throw new ContentLengthTooLargeError((BigInt(hi) << 32n) | BigInt(lo));
      }
      this.#contentLength = hi * 2 ** 32 + lo;
      this.#dirfdIndex = dv.getUint32(base + 9, true);
      this.#bodyLen = nameLen;
    } else {
      const len = dv.getUint32(base + 1, true);
      if (len > MAX_INLINE_CHUNK_SIZE) throw new InlineTooLargeError(len, MAX_INLINE_CHUNK_SIZE);
      this.#bodyLen = len;
    }
    this.#bodyFill = 0;
    this.#inBody = true;
  }

  #emit(body: Uint8Array, emit: (chunk: Chunk) => void): void {
    this.#inBody = false;
    if (this.#type === CHUNK_METADATA) {
      emit({ type: "metadata", data: body });
    } else if (this.#type === CHUNK_INLINE_DATA) {
      emit({ type: "inlineData", data: body });
    } else {
      const filename = decodeName(body);
      emit({
        type: "fileBackedData",
        contentLength: this.#contentLength,
        dirfdIndex: this.#dirfdIndex,
        filename,
      });
    }
  }
}

/**
 * Decode a complete in-memory stream.
 *
 * @throws the errors of {@link ChunkDecoder}.
 *
 * @example
 * ```ts
 * import { decodeChunks } from "./decoder.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(decodeChunks(new Uint8Array([0x01, 0, 0, 0, 0])), [
 *   { type: "inlineData", data: new Uint8Array() },
 * ]);
 * assert.throws(() => decodeChunks(new Uint8Array([0x01, 0])), { name: "TruncatedError" });
 * ```
 */
export function decodeChunks(bytes: Uint8Array): Chunk[] {
  const out: Chunk[] = [];
  const d = new ChunkDecoder();
  d.push(bytes, (c) => out.push(c));
  d.finish();
  return out;
}

/**
 * A `TransformStream` from splitdirfdstream bytes to {@link Chunk}s.
 *
 * Input may be split at any byte boundary. The stream errors with a typed
 * `SplitdirfdstreamError` on malformed input, including `TruncatedError` when the input
 * ends inside a chunk; a clean end is only possible right before a type byte.
 *
 * @example
 * ```ts
 * import { SplitdirfdstreamDecoderStream } from "./decoder.ts";
 * import assert from "node:assert/strict";
 * const chunks = await Array.fromAsync(
 *   ReadableStream.from([new Uint8Array([0x00, 1, 0]), new Uint8Array([0, 0, 42])])
 *     .pipeThrough(new SplitdirfdstreamDecoderStream()),
 * );
 * assert.deepEqual(chunks, [{ type: "metadata", data: new Uint8Array([42]) }]);
 * ```
 */
export class SplitdirfdstreamDecoderStream extends TransformStream<Uint8Array, Chunk> {
  constructor() {
    const decoder = new ChunkDecoder();
    super({
      transform(bytes, controller) {
        decoder.push(bytes, (c) => controller.enqueue(c));
      },
      flush() {
        decoder.finish();
      },
    });
  }
}

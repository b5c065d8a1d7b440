/**
 * zstd decompression as a Web Streams transform, for `application/vnd.oci.image.layer.v1.tar+zstd`
 * layers (DESIGN decision 6: gzip uses the platform's `DecompressionStream`, zstd uses libzstd).
 *
 * @module
 */

import { ZstdDecompressor, ZstdError } from "../../ffi/libzstd.ts";

/** Options of {@link ZstdDecompressStream}. */
export interface ZstdDecompressStreamOptions {
  /** Size of each output chunk (the decompressor's reused buffer); default libzstd's 128 KiB. */
  outputChunkSize?: number;
}

/**
 * Decompress a zstd stream (any number of frames). Memory stays bounded whatever the
 * compression ratio: the input chunk is decompressed one output chunk at a time, only as
 * fast as the readable side is read (back-pressure), and the write of an input chunk
 * completes once all of its output has been taken. A stream that ends inside a frame errors
 * with {@link ZstdError}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ZstdDecompressStream } from "./zstd_stream.ts";
 *
 * // "hi\n" as one zstd frame with a checksum (`printf 'hi\n' | zstd -c`).
 * const frame = new Uint8Array([
 *   0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x58, 0x19, 0x00, 0x00, 0x68, 0x69, 0x0a, 0x34, 0x3d, 0x50, 0x92,
 * ]);
 * const text = await new Response(
 *   ReadableStream.from([frame]).pipeThrough(new ZstdDecompressStream()),
 * ).text();
 * assert.equal(text, "hi\n");
 * ```
 */
export class ZstdDecompressStream implements TransformStream<Uint8Array, Uint8Array> {
  /** Decompressed bytes. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Compressed bytes. */
  readonly writable: WritableStream<Uint8Array>;

  /** Create the transform; it owns a libzstd context until the stream ends. */
  constructor(options: ZstdDecompressStreamOptions = {}) {
    const dec = new ZstdDecompressor(options.outputChunkSize);
    let pending: {
      gen: Generator<Uint8Array, void, undefined>;
      done: () => void;
      fail: (e: unknown) => void;
    } | null = null;
    let wake: (() => void) | null = null;
    let closed = false;
    let failure: unknown = null;
    let controller!: ReadableStreamDefaultController<Uint8Array>;

    const poke = () => {
      const w = wake;
      wake = null;
      w?.();
    };
    const fail = (e: unknown) => {
      if (failure !== null) return;
      failure = e;
      pending?.fail(e);
      pending = null;
      dec[Symbol.dispose]();
      poke();
    };

    this.readable = new ReadableStream<Uint8Array>({
      start(c) {
        controller = c;
      },
      async pull(c) {
        for (;;) {
          if (failure !== null) throw failure;
          if (pending !== null) {
            let r: IteratorResult<Uint8Array, void>;
            try {
              r = pending.gen.next();
            } catch (e) {
              fail(e);
              throw e;
            }
            if (!r.done) {
              c.enqueue(r.value.slice());
              return;
            }
            const p = pending;
            pending = null;
            p.done();
            continue;
          }
          if (closed) return;
          await new Promise<void>((resolve) => (wake = resolve));
        }
      },
      cancel(reason) {
        fail(reason ?? new Error("ZstdDecompressStream readable was cancelled"));
      },
    });

    this.writable = new WritableStream<Uint8Array>({
      write(chunk) {
        if (failure !== null) throw failure;
        return new Promise<void>((resolve, reject) => {
          pending = { gen: dec.decompress(chunk), done: resolve, fail: reject };
          poke();
        });
      },
      close() {
        if (failure !== null) throw failure;
        let truncated = false;
        try {
          truncated = !dec.atFrameBoundary && dec.sawInput;
        } finally {
          dec[Symbol.dispose]();
        }
        if (truncated) {
          const e = new ZstdError("stream", "input ends inside a frame (truncated)");
          failure = e;
          controller.error(e);
          throw e;
        }
        closed = true;
        controller.close();
        poke();
      },
      abort(reason) {
        fail(reason);
        controller.error(reason);
      },
    });
  }
}

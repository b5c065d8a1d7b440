/**
 * Layer decompression by media type: identity, gzip (the platform's DecompressionStream)
 * or zstd (libzstd through {@link ZstdDecompressStream}); DESIGN decision 6.
 *
 * @module
 */

import { ZstdDecompressStream } from "../compress/zstd_stream.ts";
import type { Compression } from "./media_types.ts";

/**
 * Largest compressed chunk handed to `DecompressionStream` at once. It emits the whole output
 * of an input chunk in one go, and deflate expands up to ~1032:1, so a 1 MiB chunk of a
 * compressed all-zero file would become a 1 GiB buffer; 16 KiB bounds that to ~16 MiB.
 */
const GZIP_INPUT_CHUNK = 16 * 1024;

/** Split chunks into pieces of at most `max` bytes (views, no copies). */
function rechunk(max: number): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream({
    transform(chunk, controller) {
      for (let o = 0; o < chunk.length; o += max) controller.enqueue(chunk.subarray(o, o + max));
    },
  });
}

/** A layer's bytes could not be decompressed (corrupt or truncated compressed data). */
export class LayerDecompressionError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "LayerDecompressionError";
  /** The layer blob digest. */
  readonly layer: string;
  /** The compression. */
  readonly compression: Compression;
  /** Create the error from its structured fields. */
  constructor(layer: string, compression: Compression, options?: ErrorOptions) {
    super(`Cannot decompress ${compression} layer "${layer}"`, options);
    this.layer = layer;
    this.compression = compression;
  }
}

/** Decompress `input` according to `compression`; errors stay errors of the returned stream. */
export function decompress(
  input: ReadableStream<Uint8Array>,
  compression: Compression,
): ReadableStream<Uint8Array> {
  switch (compression) {
    case "none":
      return input;
    case "gzip":
      return input.pipeThrough(rechunk(GZIP_INPUT_CHUNK)).pipeThrough(
        new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
      );
    case "zstd":
      return input.pipeThrough(new ZstdDecompressStream());
  }
}

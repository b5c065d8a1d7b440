/**
 * Layer decompression by media type: identity, gzip (the platform's DecompressionStream)
 * or zstd (libzstd through {@link ZstdDecompressStream}); DESIGN decision 6.
 *
 * @module
 */

import { ZstdDecompressStream } from "../compress/zstd_stream.ts";
import type { Compression } from "./media_types.ts";

/** A layer's bytes could not be decompressed (corrupt or truncated compressed data). */
export class LayerDecompressionError extends Error {
  override name = "LayerDecompressionError";
  /** The layer blob digest. */
  readonly layer: string;
  /** The compression. */
  readonly compression: Compression;
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
      return input.pipeThrough(
        new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
      );
    case "zstd":
      return input.pipeThrough(new ZstdDecompressStream());
  }
}

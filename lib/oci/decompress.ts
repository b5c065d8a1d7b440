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

/** Report consumed output to the gzip worker in steps of this many bytes. */
const CONSUMED_REPORT = 1024 * 1024;

/**
 * "auto" offload threshold on the first input chunk. Layer blobs are read in 1 MiB chunks,
 * so a first chunk this big means a layer of at least 1 MiB, where overlapping gunzip with
 * storing on the second core pays (pull of a 65 MB layer: ≈20% faster).
 */
const OFFLOAD_MIN_CHUNK = 1024 * 1024;

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

/** Options of {@link decompress}. */
export interface DecompressOptions {
  /**
   * Gunzip in a Worker (the other core) instead of on the calling thread: `true` always,
   * `false` never, default "auto": when the first input chunk has at least
   * {@link OFFLOAD_MIN_CHUNK} bytes (a big layer; starting a Worker costs tens of ms).
   */
  offload?: boolean | "auto";
}

/** Messages from gzip_worker.ts. */
type WorkerMsg =
  | { type: "want" }
  | { type: "out"; chunk: Uint8Array }
  | { type: "done" }
  | { type: "error"; message: string };

/**
 * Gunzip `input` in a Worker (gzip_worker.ts). Errors of `input` reach the reader unchanged;
 * a decompression error becomes a `TypeError` like DecompressionStream's own. Cancelling the
 * returned stream cancels `input` and stops the Worker.
 */
export function gunzipInWorker(input: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const reader = input.getReader();
  const worker = new Worker(new URL("./gzip_worker.ts", import.meta.url), { type: "module" });
  const queue: Uint8Array[] = [];
  let finished = false;
  let failure: { e: unknown } | null = null;
  let wake: (() => void) | null = null;
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    worker.terminate();
  };
  // Consumed bytes not yet reported to the worker: one message per chunk costs more than the
  // chunk's processing, so reports are batched (the worker runs ahead by up to 4 MiB).
  let unreported = 0;
  const report = () => {
    if (unreported === 0 || stopped) return;
    worker.postMessage({ type: "consumed", bytes: unreported });
    unreported = 0;
  };
  const notify = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const fail = (e: unknown) => {
    failure ??= { e };
    stop();
    notify();
  };
  const feed = async () => {
    try {
      const r = await reader.read();
      if (stopped) return;
      if (r.done) {
        worker.postMessage({ type: "end" });
        return;
      }
      let chunk = r.value;
      // Transfer whole buffers; a view into a bigger (shared) buffer is copied first.
      if (chunk.byteOffset !== 0 || chunk.byteLength !== chunk.buffer.byteLength) {
        chunk = chunk.slice();
      }
      worker.postMessage({ type: "data", chunk }, [chunk.buffer as ArrayBuffer]);
    } catch (e) {
      fail(e);
    }
  };
  worker.onmessage = (ev: MessageEvent<WorkerMsg>) => {
    const m = ev.data;
    if (m.type === "want") feed();
    else if (m.type === "out") {
      queue.push(m.chunk);
      notify();
    } else if (m.type === "done") {
      finished = true;
      stop();
      notify();
    } else fail(new TypeError(m.message));
  };
  worker.onerror = (ev: ErrorEvent) => {
    ev.preventDefault();
    fail(new Error(`Gzip worker failed: ${ev.message}`));
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (queue.length === 0) report();
      while (queue.length === 0 && !finished && !failure) {
        await new Promise<void>((r) => (wake = r));
      }
      if (queue.length > 0) {
        const chunk = queue.shift()!;
        unreported += chunk.length;
        if (unreported >= CONSUMED_REPORT) report();
        controller.enqueue(chunk);
      } else if (failure) {
        reader.cancel().catch(() => {});
        controller.error(failure.e);
      } else controller.close();
    },
    cancel(reason) {
      stop();
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/** Gunzip on the calling thread. */
function gunzipHere(input: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  return input.pipeThrough(rechunk(GZIP_INPUT_CHUNK)).pipeThrough(
    new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
  );
}

/** Gunzip in a Worker when the first chunk says the input is big, else on this thread. */
function gunzipAuto(input: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  let inner: ReadableStreamDefaultReader<Uint8Array> | undefined;
  const reader = input.getReader();
  return new ReadableStream<Uint8Array>({
    async start() {
      const first = await reader.read().catch((e) => ({ error: e }));
      reader.releaseLock();
      // Put the peeked chunk (or the error) back in front of the rest of the input.
      const rest = new ReadableStream<Uint8Array>({
        start(c) {
          if ("error" in first) return c.error(first.error);
          if (!first.done) c.enqueue(first.value);
          c.close();
        },
      });
      const whole = "error" in first || first.done ? rest : concatStreams(rest, input);
      const big = !("error" in first) && !first.done && first.value.length >= OFFLOAD_MIN_CHUNK;
      inner = (big ? gunzipInWorker(whole) : gunzipHere(whole)).getReader();
    },
    async pull(controller) {
      const r = await inner!.read();
      if (r.done) controller.close();
      else controller.enqueue(r.value);
    },
    cancel(reason) {
      return inner ? inner.cancel(reason) : input.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/** `a` then `b` as one stream (`a` must not need cancelling: it is fully buffered). */
function concatStreams(
  a: ReadableStream<Uint8Array>,
  b: ReadableStream<Uint8Array>,
): ReadableStream<Uint8Array> {
  const ra = a.getReader();
  let rb: ReadableStreamDefaultReader<Uint8Array> | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!rb) {
        const r = await ra.read();
        if (!r.done) {
          controller.enqueue(r.value);
          return;
        }
        rb = b.getReader();
      }
      const r = await rb.read();
      if (r.done) controller.close();
      else controller.enqueue(r.value);
    },
    cancel(reason) {
      return (rb ?? b).cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/** Decompress `input` according to `compression`; errors stay errors of the returned stream. */
export function decompress(
  input: ReadableStream<Uint8Array>,
  compression: Compression,
  opts: DecompressOptions = {},
): ReadableStream<Uint8Array> {
  switch (compression) {
    case "none":
      return input;
    case "gzip": {
      const offload = opts.offload ?? "auto";
      if (offload === true) return gunzipInWorker(input);
      if (offload === false) return gunzipHere(input);
      return gunzipAuto(input);
    }
    case "zstd":
      return input.pipeThrough(new ZstdDecompressStream());
  }
}

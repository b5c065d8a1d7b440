/**
 * Streaming zstd through libzstd: the only `Deno.dlopen("libzstd.so.1")` in the project
 * (DESIGN decision 6).
 *
 * The compressor is driven exactly like composefs-rs's `zstd::stream::write::Encoder::new(_, 0)`
 * (repository-format §3.7): `ZSTD_createCCtx`, `ZSTD_CCtx_setParameter(ZSTD_c_compressionLevel,
 * level)`, `ZSTD_compressStream2(ZSTD_e_continue)` per write, `ZSTD_e_end` until it returns 0.
 * That is what makes splitstream bytes (and so their object IDs) identical to composefs-rs.
 *
 * @module
 */

const SYMBOLS = {
  // unsigned ZSTD_versionNumber(void);
  ZSTD_versionNumber: { parameters: [], result: "u32" },
  // unsigned ZSTD_isError(size_t code);
  ZSTD_isError: { parameters: ["usize"], result: "u32" },
  // const char *ZSTD_getErrorName(size_t code);
  ZSTD_getErrorName: { parameters: ["usize"], result: "pointer" },
  // ZSTD_CCtx *ZSTD_createCCtx(void);
  ZSTD_createCCtx: { parameters: [], result: "pointer" },
  // size_t ZSTD_freeCCtx(ZSTD_CCtx *cctx);
  ZSTD_freeCCtx: { parameters: ["pointer"], result: "usize" },
  // size_t ZSTD_CCtx_setParameter(ZSTD_CCtx *cctx, ZSTD_cParameter param, int value);
  ZSTD_CCtx_setParameter: { parameters: ["pointer", "i32", "i32"], result: "usize" },
  // size_t ZSTD_compressStream2(ZSTD_CCtx *cctx, ZSTD_outBuffer *output, ZSTD_inBuffer *input,
  //                             ZSTD_EndDirective endOp);
  ZSTD_compressStream2: {
    parameters: ["pointer", "buffer", "buffer", "i32"],
    result: "usize",
  },
  // size_t ZSTD_CStreamOutSize(void);
  ZSTD_CStreamOutSize: { parameters: [], result: "usize" },
  // ZSTD_DCtx *ZSTD_createDCtx(void);
  ZSTD_createDCtx: { parameters: [], result: "pointer" },
  // size_t ZSTD_freeDCtx(ZSTD_DCtx *dctx);
  ZSTD_freeDCtx: { parameters: ["pointer"], result: "usize" },
  // size_t ZSTD_decompressStream(ZSTD_DCtx *zds, ZSTD_outBuffer *output, ZSTD_inBuffer *input);
  ZSTD_decompressStream: { parameters: ["pointer", "buffer", "buffer"], result: "usize" },
  // size_t ZSTD_DStreamOutSize(void);
  ZSTD_DStreamOutSize: { parameters: [], result: "usize" },
} as const;

type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** ZSTD_c_compressionLevel (zstd.h `ZSTD_cParameter`). */
const ZSTD_C_COMPRESSION_LEVEL = 100;
/** ZSTD_EndDirective values (zstd.h). */
const ZSTD_E_CONTINUE = 0;
const ZSTD_E_END = 2;

let lib: Symbols | undefined;

function zstd(): Symbols {
  lib ??= Deno.dlopen("libzstd.so.1", SYMBOLS).symbols;
  return lib;
}

/** libzstd's version as `major*10000 + minor*100 + patch` (e.g. 10504). */
export function zstdVersionNumber(): number {
  return zstd().ZSTD_versionNumber();
}

/** A libzstd error (corrupt or truncated input, allocation failure, ...). */
export class ZstdError extends Error {
  /** Error name. */
  override name = "ZstdError";
  /** The libzstd function that failed, or `"stream"` for stream-level problems. */
  readonly func: string;
  /** libzstd's error name (`ZSTD_getErrorName`), or a description. */
  readonly detail: string;

  /** `func` failed with libzstd's `detail`. */
  constructor(func: string, detail: string, options?: ErrorOptions) {
    super(`zstd ${func} failed: ${detail}`, options);
    this.func = func;
    this.detail = detail;
  }
}

function checkZ(rc: bigint, func: string): bigint {
  const z = zstd();
  if (z.ZSTD_isError(rc) !== 0) {
    const p = z.ZSTD_getErrorName(rc);
    const detail = p === null ? `code ${rc}` : new Deno.UnsafePointerView(p).getCString();
    throw new ZstdError(func, detail);
  }
  return rc;
}

/** Raw address of a view's first byte (0 for an empty view; libzstd never reads it then). */
function addr(b: Uint8Array): bigint {
  if (b.length === 0) return 0n;
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b as Uint8Array<ArrayBuffer>)));
}

/** `ZSTD_inBuffer`/`ZSTD_outBuffer`: `{ void *ptr; size_t size; size_t pos; }` (24 bytes). */
class ZBuffer {
  readonly words = new BigUint64Array(3);
  /** The struct's bytes, for a `buffer` parameter. */
  readonly bytes = new Uint8Array(this.words.buffer);
  #target: Uint8Array | null = null;

  /** Point the struct at `b` (kept referenced so its backing store stays alive). */
  set(b: Uint8Array): void {
    this.#target = b;
    this.words[0] = addr(b);
    this.words[1] = BigInt(b.length);
    this.words[2] = 0n;
  }

  get pos(): number {
    return Number(this.words[2]);
  }

  set pos(v: number) {
    this.words[2] = BigInt(v);
  }

  get size(): number {
    return this.#target?.length ?? 0;
  }

  release(): void {
    this.#target = null;
    this.words.fill(0n);
  }
}

const cctxFinalizer = new FinalizationRegistry<Deno.PointerObject>((p) => {
  zstd().ZSTD_freeCCtx(p);
});
const dctxFinalizer = new FinalizationRegistry<Deno.PointerObject>((p) => {
  zstd().ZSTD_freeDCtx(p);
});

/**
 * A streaming zstd compressor (one frame). Compressed output is handed to `sink` as fresh
 * copies. Dispose frees the context.
 */
export class ZstdCompressor implements Disposable {
  #ctx: Deno.PointerObject | null;
  #in = new ZBuffer();
  #out = new ZBuffer();
  #outBuf: Uint8Array;
  #ended = false;

  /** Create a compressor at `level` (0 = libzstd's default, level 3, as composefs-rs uses). */
  constructor(level = 0) {
    const z = zstd();
    const ctx = z.ZSTD_createCCtx();
    if (ctx === null) throw new ZstdError("ZSTD_createCCtx", "allocation failed");
    try {
      checkZ(
        z.ZSTD_CCtx_setParameter(ctx, ZSTD_C_COMPRESSION_LEVEL, level),
        "ZSTD_CCtx_setParameter",
      );
    } catch (e) {
      z.ZSTD_freeCCtx(ctx);
      throw e;
    }
    this.#ctx = ctx;
    cctxFinalizer.register(this, ctx, this);
    this.#outBuf = new Uint8Array(Number(z.ZSTD_CStreamOutSize()));
    this.#out.set(this.#outBuf);
  }

  /** Compress `data` (`ZSTD_e_continue`); empty input is a no-op, as in composefs-rs. */
  write(data: Uint8Array, sink: (compressed: Uint8Array) => void): void {
    if (data.length === 0) return;
    const ctx = this.#live();
    const z = zstd();
    this.#in.set(data);
    try {
      while (this.#in.pos < data.length) {
        checkZ(
          z.ZSTD_compressStream2(ctx, this.#out.bytes, this.#in.bytes, ZSTD_E_CONTINUE),
          "ZSTD_compressStream2",
        );
        this.#drain(sink);
      }
    } finally {
      this.#in.release();
    }
  }

  /** Finish the frame (`ZSTD_e_end` until libzstd reports 0 bytes left to flush). */
  end(sink: (compressed: Uint8Array) => void): void {
    const ctx = this.#live();
    const z = zstd();
    this.#in.set(new Uint8Array(0));
    try {
      for (;;) {
        const left = checkZ(
          z.ZSTD_compressStream2(ctx, this.#out.bytes, this.#in.bytes, ZSTD_E_END),
          "ZSTD_compressStream2",
        );
        this.#drain(sink);
        if (left === 0n) break;
      }
    } finally {
      this.#in.release();
    }
    this.#ended = true;
  }

  #drain(sink: (compressed: Uint8Array) => void): void {
    const n = this.#out.pos;
    if (n > 0) {
      this.#out.pos = 0;
      sink(this.#outBuf.slice(0, n));
    }
  }

  #live(): Deno.PointerObject {
    if (this.#ctx === null) throw new TypeError("ZstdCompressor is disposed");
    if (this.#ended) throw new TypeError("ZstdCompressor frame is already ended");
    return this.#ctx;
  }

  /** Free the context; idempotent. */
  [Symbol.dispose](): void {
    if (this.#ctx !== null) {
      cctxFinalizer.unregister(this);
      zstd().ZSTD_freeCCtx(this.#ctx);
      this.#ctx = null;
    }
  }
}

/** Compress `data` into one complete frame with composefs-rs's streaming parameters. */
export function zstdCompress(data: Uint8Array, level = 0): Uint8Array {
  using c = new ZstdCompressor(level);
  const parts: Uint8Array[] = [];
  const sink = (b: Uint8Array) => parts.push(b);
  c.write(data, sink);
  c.end(sink);
  return concat(parts);
}

/**
 * A streaming zstd decompressor (any number of frames, skippable frames, checksums).
 * Dispose frees the context.
 */
export class ZstdDecompressor implements Disposable {
  #ctx: Deno.PointerObject | null;
  #in = new ZBuffer();
  #out = new ZBuffer();
  #outBuf: Uint8Array;
  #last = 0n;
  #sawInput = false;
  #busy = false;

  /** Create a decompressor; `outSize` is the size of the reused output buffer. */
  constructor(outSize?: number) {
    const z = zstd();
    const ctx = z.ZSTD_createDCtx();
    if (ctx === null) throw new ZstdError("ZSTD_createDCtx", "allocation failed");
    this.#ctx = ctx;
    dctxFinalizer.register(this, ctx, this);
    this.#outBuf = new Uint8Array(outSize ?? Number(z.ZSTD_DStreamOutSize()));
  }

  /**
   * True when the input so far ends exactly at a frame boundary (the last
   * `ZSTD_decompressStream` returned 0), i.e. the stream is not truncated. False before any
   * input.
   */
  get atFrameBoundary(): boolean {
    return this.#sawInput && this.#last === 0n;
  }

  /** True once any non-empty input was given. */
  get sawInput(): boolean {
    return this.#sawInput;
  }

  /**
   * Decompress `input`, yielding the output piece by piece. Each yielded view points into a
   * reused buffer and is only valid until the generator resumes: copy it to keep it.
   */
  *decompress(input: Uint8Array): Generator<Uint8Array, void, undefined> {
    this.#live();
    // Every earlier call ran until libzstd had nothing buffered, so empty input has no work.
    if (input.length === 0) return;
    if (this.#busy) throw new TypeError("ZstdDecompressor is already decompressing");
    this.#busy = true;
    const z = zstd();
    this.#in.set(input);
    if (input.length > 0) this.#sawInput = true;
    try {
      for (;;) {
        this.#out.set(this.#outBuf);
        // Re-checked every step: the context may have been disposed while suspended.
        this.#last = checkZ(
          z.ZSTD_decompressStream(this.#live(), this.#out.bytes, this.#in.bytes),
          "ZSTD_decompressStream",
        );
        const n = this.#out.pos;
        const full = n === this.#outBuf.length;
        if (n > 0) yield this.#outBuf.subarray(0, n);
        // Input used up and either the output did not fill (nothing buffered inside) or a
        // frame just ended fully flushed (0): calling again would start a new frame.
        if (this.#in.pos >= input.length && (!full || this.#last === 0n)) break;
      }
    } finally {
      this.#in.release();
      this.#out.release();
      this.#busy = false;
    }
  }

  #live(): Deno.PointerObject {
    if (this.#ctx === null) throw new TypeError("ZstdDecompressor is disposed");
    return this.#ctx;
  }

  /** Free the context; idempotent. */
  [Symbol.dispose](): void {
    if (this.#ctx !== null) {
      dctxFinalizer.unregister(this);
      zstd().ZSTD_freeDCtx(this.#ctx);
      this.#ctx = null;
    }
  }
}

/**
 * Decompress a complete zstd input (one or more frames) into one buffer. Throws
 * {@link ZstdError} on corrupt or truncated input, or when the output would exceed `maxSize`.
 */
export function zstdDecompress(input: Uint8Array, maxSize = Number.MAX_SAFE_INTEGER): Uint8Array {
  using d = new ZstdDecompressor();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const piece of d.decompress(input)) {
    total += piece.length;
    if (total > maxSize) {
      throw new ZstdError("stream", `decompressed size exceeds the limit of ${maxSize} bytes`);
    }
    parts.push(piece.slice());
  }
  if (input.length > 0 && !d.atFrameBoundary) {
    throw new ZstdError("stream", "input ends inside a frame (truncated)");
  }
  return concat(parts);
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * The splitstream file format (repository-format §3), byte-compatible with composefs-rs: a
 * 32-byte header, an 80-byte info section, the stream-ref and object-ref arrays, the
 * zstd-compressed named refs and the zstd-compressed chunk stream. Format only: no I/O.
 *
 * @module
 */

import { concatBytes } from "../bytes.ts";
import { ZstdCompressor, zstdDecompress, ZstdDecompressor, ZstdError } from "../../ffi/libzstd.ts";
import {
  algorithmFromKernelId,
  digestSize,
  type HashAlgorithm,
  kernelHashId,
  LG_BLOCK_SIZE,
} from "../fsverity/algorithm.ts";

/** `"SplitStream"`: the file magic (§3.1). */
const MAGIC = new TextEncoder().encode("SplitStream");
/** The only format version. */
const VERSION = 0;
/** Header size; the info section follows it directly as written. */
const HEADER_SIZE = 32;
/** Info section size as written; readers accept larger ones and ignore the extra bytes. */
const INFO_SIZE = 80;
/** Sanity cap on the decompressed named-refs section (a handful of short records in practice). */
const MAX_NAMED_REFS_BYTES = 64 * 1024 * 1024;

/** The u64 content type tag: 8 ASCII bytes read as a little-endian integer (§3.10). */
export function contentTypeOf(tag: string): bigint {
  const b = new TextEncoder().encode(tag);
  if (b.length !== 8) throw new RangeError(`Content type tag "${tag}" is not 8 bytes`);
  return new DataView(b.buffer).getBigUint64(0, true);
}

/** Content types composefs-rs's OCI code uses (§3.10); 0 is the generic/test type. */
export const CONTENT_TYPE: {
  readonly OCI_LAYER: bigint;
  readonly OCI_CONFIG: bigint;
  readonly OCI_MANIFEST: bigint;
  readonly OCI_BLOB: bigint;
} = {
  /** OCI tar layer (`ocilayer`). */
  OCI_LAYER: contentTypeOf("ocilayer"),
  /** OCI image config (`ociconfg`). */
  OCI_CONFIG: contentTypeOf("ociconfg"),
  /** OCI image manifest (`ocimanif`). */
  OCI_MANIFEST: contentTypeOf("ocimanif"),
  /** OCI non-tar blob (`oci_blob`). */
  OCI_BLOB: contentTypeOf("oci_blob"),
};

/** Why a splitstream was rejected. */
export type SplitstreamErrorReason =
  | "truncated" // shorter than the header, or a section range past the end of the file
  | "bad-magic" // neither the current nor the old header layout carries "SplitStream"
  | "bad-version" // header version is not 0
  | "algorithm-mismatch" // header algorithm differs from the repository's
  | "bad-block-size" // lg_blocksize is not 12
  | "bad-range" // a FileRange with end < start or beyond 2^53
  | "bad-info" // info section shorter than 80 bytes or stream_size beyond 2^53
  | "content-type-mismatch" // not the content type the caller expects
  | "bad-refs" // a reference array whose length is not a multiple of the digest size
  | "bad-named-ref" // malformed named-ref record
  | "zstd-corrupt" // a compressed section is not valid (or is truncated) zstd
  | "bad-chunk" // chunk stream ends inside a chunk header or inline data
  | "index-out-of-range"; // external chunk or named ref indexes past its array

/** A malformed splitstream; `reason` says which check failed. */
export class SplitstreamError extends Error {
  /** Error name. */
  override name = "SplitstreamError";
  /** Which check failed. */
  readonly reason: SplitstreamErrorReason;

  /** A failed check (`reason`) with a human-readable `detail`. */
  constructor(reason: SplitstreamErrorReason, detail: string, options?: ErrorOptions) {
    super(`Malformed splitstream (${reason}): ${detail}`, options);
    this.reason = reason;
  }
}

/** One chunk of the reconstructed stream: inline bytes or a whole external object. */
export type SplitstreamChunk = { inline: Uint8Array } | { external: Uint8Array };

/** An insertion-ordered set of digests; re-adding returns the first index (`UniqueVec`). */
class UniqueIds {
  readonly items: Uint8Array[] = [];
  #index = new Map<string, number>();

  add(id: Uint8Array): number {
    const key = id.toHex();
    let i = this.#index.get(key);
    if (i === undefined) {
      i = this.items.length;
      this.items.push(id.slice());
      this.#index.set(key, i);
    }
    return i;
  }
}

/** Byte-wise comparison of UTF-8 encodings (Rust `str` ordering), not UTF-16 order. */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/**
 * Builds a splitstream file in memory, applying composefs-rs's writer rules (§3.5, §3.6)
 * exactly: all inline bytes between two external references form one chunk; external refs
 * are never merged; refs arrays are insertion-ordered and de-duplicated; named refs are
 * sorted by name byte-wise. The chunk stream is compressed as chunks complete, so the writer
 * holds the compressed stream plus only the current run of inline bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSplitstream, SplitstreamWriter } from "./splitstream.ts";
 *
 * using w = new SplitstreamWriter("sha256", 0n);
 * w.writeInline(new TextEncoder().encode("hello"));
 * const bytes = w.finish();
 * assert.equal(bytes.length, 143);
 * const s = parseSplitstream(bytes, "sha256");
 * assert.equal(s.streamSize, 5);
 * assert.deepEqual([...s.chunks()], [{ inline: new TextEncoder().encode("hello") }]);
 * ```
 */
export class SplitstreamWriter implements Disposable {
  /** The repository's hash algorithm (sizes of all IDs). */
  readonly algorithm: HashAlgorithm;
  /** The content type tag written into the info section. */
  readonly contentType: bigint;
  readonly #ds: number;
  #streamRefs = new UniqueIds();
  #objectRefs = new UniqueIds();
  #named = new Map<string, number>();
  #compressor: ZstdCompressor;
  #compressed: Uint8Array[] = [];
  #pending = new Uint8Array(4096);
  #pendingLen = 0;
  #streamSize = 0;
  #finished = false;
  #sink = (b: Uint8Array) => {
    this.#compressed.push(b);
  };

  /** Start a splitstream for a repository using `alg`, tagged with `contentType`. */
  constructor(alg: HashAlgorithm, contentType: bigint = 0n) {
    if (contentType < 0n || contentType >= 1n << 64n) {
      throw new RangeError(`Content type ${contentType} does not fit in a u64`);
    }
    this.algorithm = alg;
    this.contentType = contentType;
    this.#ds = digestSize(alg);
    this.#compressor = new ZstdCompressor(0);
  }

  /** Σ inline bytes + Σ external sizes so far (the info section's `stream_size`). */
  get streamSize(): number {
    return this.#streamSize;
  }

  /** The stream-ref array so far (copies of the IDs, in index order). */
  get streamRefs(): readonly Uint8Array[] {
    return this.#streamRefs.items;
  }

  /** The object-ref array so far (copies of the IDs, in index order). */
  get objectRefs(): readonly Uint8Array[] {
    return this.#objectRefs.items;
  }

  /** Append bytes stored in the stream itself (copied; empty writes add nothing). */
  writeInline(bytes: Uint8Array): void {
    this.#check();
    if (bytes.length === 0) return;
    const need = this.#pendingLen + bytes.length;
    if (need > this.#pending.length) {
      let cap = this.#pending.length * 2;
      while (cap < need) cap *= 2;
      const grown = new Uint8Array(cap);
      grown.set(this.#pending.subarray(0, this.#pendingLen));
      this.#pending = grown;
    }
    this.#pending.set(bytes, this.#pendingLen);
    this.#pendingLen = need;
    this.#streamSize += bytes.length;
  }

  /**
   * Append a reference to an object the caller has already stored: its content (`size` bytes)
   * is part of the reconstructed stream.
   */
  writeExternal(objectId: Uint8Array, size: number): void {
    this.#check();
    this.#checkId(objectId, "Object ID");
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`Invalid size ${size}`);
    this.#flushInline();
    const idx = this.#objectRefs.add(objectId);
    const rec = new Uint8Array(8);
    new DataView(rec.buffer).setBigInt64(0, BigInt(idx), true);
    this.#compressor.write(rec, this.#sink);
    this.#streamSize += size;
  }

  /** Add `streamId` to the stream-ref array (de-duplicated); returns its index. */
  addStreamRef(streamId: Uint8Array): number {
    this.#check();
    this.#checkId(streamId, "Stream ID");
    return this.#streamRefs.add(streamId);
  }

  /**
   * Name a referenced stream (also adds it to the stream refs). Adding a name again
   * re-points it; the earlier stream ref stays in the array, as in composefs-rs.
   */
  addNamedRef(name: string, streamId: Uint8Array): void {
    this.#check();
    if (name.includes("\0")) throw new RangeError(`Named ref "${name}" contains NUL`);
    this.#checkId(streamId, "Stream ID");
    this.#named.set(name, this.#streamRefs.add(streamId));
  }

  /** The complete splitstream file; the writer is finished (and its context freed) after. */
  finish(): Uint8Array {
    this.#check();
    this.#flushInline();
    this.#compressor.end(this.#sink);
    this.#finished = true;
    this.#compressor[Symbol.dispose]();
    const stream = concatBytes(this.#compressed);
    this.#compressed = [];

    const enc = new TextEncoder();
    const names = [...this.#named].map(([n, i]) => [enc.encode(n), i] as const);
    names.sort((a, b) => compareBytes(a[0], b[0]));
    const records: Uint8Array[] = [];
    for (const [n, i] of names) {
      records.push(enc.encode(`${i}:`), n, new Uint8Array(1));
    }
    using nc = new ZstdCompressor(0);
    const namedParts: Uint8Array[] = [];
    const namedSink = (b: Uint8Array) => namedParts.push(b);
    for (const r of records) nc.write(r, namedSink);
    nc.end(namedSink);
    const named = concatBytes(namedParts);

    const ds = this.#ds;
    const streamRefsStart = HEADER_SIZE + INFO_SIZE;
    const objectRefsStart = streamRefsStart + this.#streamRefs.items.length * ds;
    const namedStart = objectRefsStart + this.#objectRefs.items.length * ds;
    const streamStart = namedStart + named.length;
    const total = streamStart + stream.length;

    const out = new Uint8Array(total);
    const v = new DataView(out.buffer);
    out.set(MAGIC, 0);
    out[11] = VERSION;
    v.setUint16(12, 0, true); // flags
    out[14] = kernelHashId(this.algorithm);
    out[15] = LG_BLOCK_SIZE;
    const range = (off: number, start: number, end: number) => {
      v.setBigUint64(off, BigInt(start), true);
      v.setBigUint64(off + 8, BigInt(end), true);
    };
    range(16, HEADER_SIZE, HEADER_SIZE + INFO_SIZE);
    range(32, streamRefsStart, objectRefsStart);
    range(48, objectRefsStart, namedStart);
    range(64, streamStart, total);
    range(80, namedStart, streamStart);
    v.setBigUint64(96, this.contentType, true);
    v.setBigUint64(104, BigInt(this.#streamSize), true);
    this.#streamRefs.items.forEach((id, i) => out.set(id, streamRefsStart + i * ds));
    this.#objectRefs.items.forEach((id, i) => out.set(id, objectRefsStart + i * ds));
    out.set(named, namedStart);
    out.set(stream, streamStart);
    return out;
  }

  /** Free the compression context (finish() does too); idempotent. */
  [Symbol.dispose](): void {
    this.#finished = true;
    this.#compressor[Symbol.dispose]();
  }

  #flushInline(): void {
    const n = this.#pendingLen;
    if (n === 0) return;
    const rec = new Uint8Array(8);
    new DataView(rec.buffer).setBigInt64(0, -BigInt(n), true);
    this.#compressor.write(rec, this.#sink);
    this.#compressor.write(this.#pending.subarray(0, n), this.#sink);
    this.#pendingLen = 0;
    // Don't keep a huge buffer alive after one large run of inline bytes.
    if (this.#pending.length > 1 << 20) this.#pending = new Uint8Array(4096);
  }

  #check(): void {
    if (this.#finished) throw new TypeError("SplitstreamWriter is already finished");
  }

  #checkId(id: Uint8Array, what: string): void {
    if (id.length !== this.#ds) {
      throw new RangeError(`${what} has ${id.length} bytes, ${this.algorithm} needs ${this.#ds}`);
    }
  }
}

/** A parsed splitstream; chunks are decoded lazily from the compressed stream section. */
export interface Splitstream {
  /** The content type tag. */
  readonly contentType: bigint;
  /** Length of the reconstructed stream as recorded by the writer. */
  readonly streamSize: number;
  /** Referenced streams (digests), in index order. */
  readonly streamRefs: Uint8Array[];
  /** Referenced objects (digests), in index order. */
  readonly objectRefs: Uint8Array[];
  /** Named refs: name → stream ID (an element of `streamRefs`). */
  readonly namedRefs: Map<string, Uint8Array>;
  /**
   * Decode the chunk stream. Each call starts over; iteration throws
   * {@link SplitstreamError} (`zstd-corrupt`, `bad-chunk`, `index-out-of-range`) on bad data.
   */
  chunks(): Iterable<SplitstreamChunk>;
}

/** `[start, end)` of a section, validated against the file. */
function readRange(v: DataView, off: number, fileLen: number, what: string): [number, number] {
  const start = v.getBigUint64(off, true);
  const end = v.getBigUint64(off + 8, true);
  if (end < start) throw new SplitstreamError("bad-range", `${what} range ends before it starts`);
  if (end > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new SplitstreamError("bad-range", `${what} range end ${end} is out of range`);
  }
  if (end > BigInt(fileLen)) {
    throw new SplitstreamError(
      "truncated",
      `${what} range [${start}, ${end}) is past the end of the file (${fileLen} bytes)`,
    );
  }
  return [Number(start), Number(end)];
}

function splitIds(bytes: Uint8Array, ds: number, what: string): Uint8Array[] {
  if (bytes.length % ds !== 0) {
    throw new SplitstreamError(
      "bad-refs",
      `${what} length ${bytes.length} is not a multiple of ${ds}`,
    );
  }
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += ds) out.push(bytes.slice(i, i + ds));
  return out;
}

function parseNamedRefs(section: Uint8Array, streamRefs: Uint8Array[]): Map<string, Uint8Array> {
  let raw: Uint8Array;
  try {
    raw = zstdDecompress(section, MAX_NAMED_REFS_BYTES);
  } catch (e) {
    if (e instanceof ZstdError) {
      throw new SplitstreamError("zstd-corrupt", `named refs: ${e.detail}`, { cause: e });
    }
    throw e;
  }
  const refs = new Map<string, Uint8Array>();
  const dec = new TextDecoder("utf-8", { fatal: true });
  let off = 0;
  while (off < raw.length) {
    const nul = raw.indexOf(0, off);
    if (nul < 0) throw new SplitstreamError("bad-named-ref", "record without NUL terminator");
    let rec: string;
    try {
      rec = dec.decode(raw.subarray(off, nul));
    } catch (e) {
      throw new SplitstreamError("bad-named-ref", "record is not UTF-8", { cause: e });
    }
    off = nul + 1;
    const colon = rec.indexOf(":");
    if (colon < 0) throw new SplitstreamError("bad-named-ref", `record "${rec}" has no ":"`);
    const idxText = rec.slice(0, colon);
    // Rust `usize::from_str`: optional "+", decimal digits.
    if (!/^\+?[0-9]+$/.test(idxText)) {
      throw new SplitstreamError("bad-named-ref", `record "${rec}" has a bad index`);
    }
    const idx = Number(idxText);
    if (!(idx < streamRefs.length)) {
      throw new SplitstreamError(
        "index-out-of-range",
        `named ref "${
          rec.slice(colon + 1)
        }" points at stream ref ${idxText} of ${streamRefs.length}`,
      );
    }
    refs.set(rec.slice(colon + 1), streamRefs[idx]);
  }
  return refs;
}

/**
 * Parse a splitstream file for a repository using `alg`; with `expectedContentType`, a
 * different content type is rejected. Accepts the pre-`repr(C)` header layout too (§3.1).
 * Every malformation raises {@link SplitstreamError}.
 */
export function parseSplitstream(
  bytes: Uint8Array,
  alg: HashAlgorithm,
  expectedContentType?: bigint,
): Splitstream {
  if (bytes.length < HEADER_SIZE) {
    throw new SplitstreamError("truncated", `${bytes.length} bytes is shorter than the header`);
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magicAt = (off: number) => MAGIC.every((b, i) => bytes[off + i] === b);
  let version: number, algId: number, lg: number, infoOff: number;
  if (magicAt(0)) {
    [version, algId, lg, infoOff] = [bytes[11], bytes[14], bytes[15], 16];
  } else if (magicAt(18)) {
    // Old layout (composefs-rs without repr(C), bootc <= 1.15): info, flags, magic, ...
    [version, algId, lg, infoOff] = [bytes[29], bytes[30], bytes[31], 0];
  } else {
    throw new SplitstreamError("bad-magic", 'no "SplitStream" magic');
  }
  if (version !== VERSION) throw new SplitstreamError("bad-version", `version ${version}`);
  const fileAlg = algorithmFromKernelId(algId);
  if (fileAlg !== alg) {
    throw new SplitstreamError(
      "algorithm-mismatch",
      `stream uses ${fileAlg ?? `unknown algorithm ${algId}`}, repository uses ${alg}`,
    );
  }
  if (lg !== LG_BLOCK_SIZE) throw new SplitstreamError("bad-block-size", `lg_blocksize ${lg}`);

  const len = bytes.length;
  const [infoStart, infoEnd] = readRange(v, infoOff, len, "info");
  if (infoEnd - infoStart < INFO_SIZE) {
    throw new SplitstreamError("bad-info", `info section is ${infoEnd - infoStart} bytes`);
  }
  const streamRefsR = readRange(v, infoStart, len, "stream_refs");
  const objectRefsR = readRange(v, infoStart + 16, len, "object_refs");
  const streamR = readRange(v, infoStart + 32, len, "stream");
  const namedR = readRange(v, infoStart + 48, len, "named_refs");
  const contentType = v.getBigUint64(infoStart + 64, true);
  const streamSizeBig = v.getBigUint64(infoStart + 72, true);
  if (streamSizeBig > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new SplitstreamError("bad-info", `stream_size ${streamSizeBig} is out of range`);
  }
  const streamSize = Number(streamSizeBig);
  if (expectedContentType !== undefined && contentType !== expectedContentType) {
    throw new SplitstreamError(
      "content-type-mismatch",
      `content type 0x${contentType.toString(16)}, expected 0x${expectedContentType.toString(16)}`,
    );
  }
  const ds = digestSize(alg);
  const streamRefs = splitIds(bytes.subarray(...streamRefsR), ds, "stream_refs");
  const objectRefs = splitIds(bytes.subarray(...objectRefsR), ds, "object_refs");
  const namedRefs = parseNamedRefs(bytes.subarray(...namedR), streamRefs);
  const streamSection = bytes.subarray(...streamR);

  return {
    contentType,
    streamSize,
    streamRefs,
    objectRefs,
    namedRefs,
    chunks: () => ({
      [Symbol.iterator]: () => decodeChunks(streamSection, objectRefs),
    }),
  };
}

/** Decode the chunk stream incrementally (one decompressed piece at a time). */
function* decodeChunks(
  section: Uint8Array,
  objectRefs: Uint8Array[],
): Generator<SplitstreamChunk, void, undefined> {
  using dec = new ZstdDecompressor();
  const header = new Uint8Array(8);
  const hv = new DataView(header.buffer);
  let headerLen = 0;
  // Inline chunk being collected: its pieces and how many bytes are still missing.
  let parts: Uint8Array[] = [];
  let missing = 0;
  const it = dec.decompress(section);
  for (;;) {
    let r: IteratorResult<Uint8Array, void>;
    try {
      r = it.next();
    } catch (e) {
      if (e instanceof ZstdError) {
        throw new SplitstreamError("zstd-corrupt", `stream: ${e.detail}`, { cause: e });
      }
      throw e;
    }
    if (r.done) break;
    const piece = r.value;
    let off = 0;
    while (off < piece.length) {
      if (missing > 0) {
        const take = Math.min(missing, piece.length - off);
        parts.push(piece.slice(off, off + take));
        off += take;
        missing -= take;
        if (missing === 0) {
          const inline = concatBytes(parts);
          parts = [];
          yield { inline };
        }
        continue;
      }
      const take = Math.min(8 - headerLen, piece.length - off);
      header.set(piece.subarray(off, off + take), headerLen);
      headerLen += take;
      off += take;
      if (headerLen < 8) continue;
      headerLen = 0;
      const n = hv.getBigInt64(0, true);
      if (n >= 0n) {
        if (n >= BigInt(objectRefs.length)) {
          throw new SplitstreamError(
            "index-out-of-range",
            `external chunk ${n} but only ${objectRefs.length} object refs`,
          );
        }
        yield { external: objectRefs[Number(n)] };
      } else {
        // Like composefs-rs, stream_size is not checked against the chunks. Nothing is
        // allocated up front: the parts collect only data that really follows.
        if (-n > BigInt(Number.MAX_SAFE_INTEGER)) {
          throw new SplitstreamError("bad-chunk", `inline chunk of ${-n} bytes is impossible`);
        }
        missing = Number(-n);
      }
    }
  }
  if (section.length > 0 && !dec.atFrameBoundary) {
    throw new SplitstreamError("zstd-corrupt", "stream: input ends inside a frame (truncated)");
  }
  if (headerLen > 0) throw new SplitstreamError("bad-chunk", "stream ends inside a chunk header");
  if (missing > 0) throw new SplitstreamError("bad-chunk", `stream ends ${missing} bytes short`);
}

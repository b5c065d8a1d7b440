/**
 * Decoder for tar-split's metadata format (`vbatts/tar-split` `tar/storage`): the
 * `<layer>.tar-split.gz` files containers-storage keeps next to each layer. After gunzip it is
 * newline-delimited JSON, one `storage.Entry` per line:
 *
 * ```
 * {"type":2,"payload":"<base64 raw tar bytes>","position":0}        segment: headers, padding, EOF
 * {"type":1,"name":"etc/hostname","size":6,"payload":"<base64 CRC-64/ISO>","position":1}   file
 * ```
 *
 * A file entry's name is the tar header path; names that are not valid UTF-8 are carried in
 * `name_raw` (base64) instead. `size` is omitted when 0, and `payload` is `null` then.
 * Pure: no I/O; gunzip happens upstream (`DecompressionStream("gzip")`).
 *
 * @module
 */

/** tar-split `storage.FileType`. */
const FILE_TYPE = 1;
/** tar-split `storage.SegmentType`. */
const SEGMENT_TYPE = 2;
/** Longest line accepted: a segment holds at most a few headers plus padding, and PAX
 * headers are bounded by the tar splitter's own limit; 64 MiB of base64 is far beyond any. */
export const MAX_LINE_BYTES = 64 * 1024 * 1024;
/** CRC-64 payloads are 8 bytes. */
const CRC_BYTES = 8;

/** One decoded tar-split entry. */
export type TarSplitEntry =
  /** Raw tar bytes to copy verbatim. */
  | { type: "segment"; payload: Uint8Array; position: number }
  /** A tar member whose content (`size` bytes) is read from the layer's directory. */
  | {
    type: "file";
    /** Path as in the tar header, as raw bytes (UTF-8 for `name`, decoded `name_raw`). */
    name: Uint8Array;
    /** Content length. */
    size: number;
    /** Big-endian CRC-64/ISO of the content; `null` when `size` is 0. */
    crc: Uint8Array | null;
    position: number;
  };

/** A malformed tar-split stream; names the (1-based) line. */
export class TarSplitFormatError extends Error {
  /** The error class name. */
  override name = "TarSplitFormatError";
  /** 1-based line number of the offending entry. */
  readonly line: number;
  /** What is wrong. */
  readonly reason: string;
  /** Build the error from its structured fields. */
  constructor(line: number, reason: string, options?: ErrorOptions) {
    super(`Malformed tar-split at line ${line}: ${reason}`, options);
    this.line = line;
    this.reason = reason;
  }
}

function base64(line: number, field: string, s: unknown): Uint8Array {
  if (typeof s !== "string") throw new TarSplitFormatError(line, `"${field}" is not a string`);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) {
    throw new TarSplitFormatError(line, `"${field}" is not valid base64`);
  }
  return Uint8Array.fromBase64(s);
}

/**
 * Decode one NDJSON line into an entry (`line` is its 1-based number, for errors).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTarSplitLine } from "./tar_split_entries.ts";
 * const e = parseTarSplitLine('{"type":1,"name":"a","size":3,"payload":"AAAAAAAAAAA=","position":1}', 2);
 * assert.equal(e.type, "file");
 * assert.equal(e.type === "file" && e.size, 3);
 * ```
 */
export function parseTarSplitLine(text: string, line: number): TarSplitEntry {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new TarSplitFormatError(line, "not valid JSON", { cause: e });
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new TarSplitFormatError(line, "not a JSON object");
  }
  const o = v as Record<string, unknown>;
  const position = o.position ?? 0;
  if (typeof position !== "number" || !Number.isSafeInteger(position) || position < 0) {
    throw new TarSplitFormatError(line, `invalid "position"`);
  }
  if (o.type === SEGMENT_TYPE) {
    return { type: "segment", payload: base64(line, "payload", o.payload ?? ""), position };
  }
  if (o.type !== FILE_TYPE) {
    throw new TarSplitFormatError(line, `unknown entry type ${JSON.stringify(o.type)}`);
  }
  const size = o.size ?? 0;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw new TarSplitFormatError(line, `invalid "size"`);
  }
  let name: Uint8Array;
  if (typeof o.name === "string" && o.name !== "") name = new TextEncoder().encode(o.name);
  else if (o.name_raw !== undefined && o.name_raw !== null) {
    name = base64(line, "name_raw", o.name_raw);
  } else throw new TarSplitFormatError(line, "file entry has no name");
  if (name.length === 0) throw new TarSplitFormatError(line, "file entry has an empty name");
  let crc: Uint8Array | null = null;
  if (size > 0) {
    crc = base64(line, "payload", o.payload);
    if (crc.length !== CRC_BYTES) {
      throw new TarSplitFormatError(line, `file CRC is ${crc.length} bytes, expected ${CRC_BYTES}`);
    }
  }
  return { type: "file", name, size, crc, position };
}

/**
 * Decodes gunzipped tar-split bytes into {@link TarSplitEntry}s, checking that positions
 * increase. Lines are bounded by {@link MAX_LINE_BYTES}; a missing final newline is accepted
 * (tar-split writes one, but nothing depends on it).
 */
export class TarSplitDecoderStream extends TransformStream<Uint8Array, TarSplitEntry> {
  /** Build the error from its structured fields. */
  constructor() {
    const decoder = new TextDecoder("utf-8", { fatal: true });
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    let line = 0;
    let lastPosition = -1;
    const emit = (bytes: Uint8Array, ctl: TransformStreamDefaultController<TarSplitEntry>) => {
      line++;
      let text: string;
      try {
        text = decoder.decode(bytes);
      } catch (e) {
        throw new TarSplitFormatError(line, "not valid UTF-8", { cause: e });
      }
      if (text.trim() === "") return;
      const entry = parseTarSplitLine(text, line);
      if (entry.position <= lastPosition) {
        throw new TarSplitFormatError(line, `position ${entry.position} does not increase`);
      }
      lastPosition = entry.position;
      ctl.enqueue(entry);
    };
    const concat = (tail: Uint8Array): Uint8Array => {
      if (pending.length === 0) return tail;
      const out = new Uint8Array(pendingBytes + tail.length);
      let o = 0;
      for (const p of pending) {
        out.set(p, o);
        o += p.length;
      }
      out.set(tail, o);
      pending = [];
      pendingBytes = 0;
      return out;
    };
    super({
      transform(chunk, ctl) {
        let start = 0;
        for (;;) {
          const nl = chunk.indexOf(0x0a, start);
          if (nl < 0) break;
          emit(concat(chunk.subarray(start, nl)), ctl);
          start = nl + 1;
        }
        if (start < chunk.length) {
          const rest = chunk.slice(start);
          pending.push(rest);
          pendingBytes += rest.length;
          if (pendingBytes > MAX_LINE_BYTES) {
            throw new TarSplitFormatError(line + 1, `line longer than ${MAX_LINE_BYTES} bytes`);
          }
        }
      },
      flush(ctl) {
        if (pendingBytes > 0) emit(concat(new Uint8Array(0)), ctl);
      },
    });
  }
}

/** Decode a whole (gunzipped) tar-split buffer; convenience for tests and small layers. */
export async function decodeTarSplit(bytes: Uint8Array): Promise<TarSplitEntry[]> {
  const out: TarSplitEntry[] = [];
  const rs = ReadableStream.from([bytes]).pipeThrough(new TarSplitDecoderStream());
  for await (const e of rs) out.push(e);
  return out;
}

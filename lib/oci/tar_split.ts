/**
 * The tar → splitstream state machine (repository-format §4.2): feeds a tar byte stream and
 * tells a sink which bytes are inline (headers, extension headers and their data, padding,
 * small files, everything after the end marker) and which are the content of a regular file
 * larger than {@link INLINE_CONTENT_MAX} bytes (stored as an external object).
 *
 * It mirrors composefs-rs `split_async` over tar-core's parser: header checksums are verified,
 * empty paths rejected, at most {@link MAX_PENDING_EXTENSIONS} extension headers and
 * {@link MAX_EXTENSION_BYTES} of extension data per entry, sparse entries refused.
 *
 * @module
 */

import { INLINE_CONTENT_MAX } from "../erofs/format.ts";
import {
  parsePaxRecords,
  parseTarHeader,
  TAR_BLOCK_SIZE as BLOCK_SIZE,
  TarHeaderError,
  tarPaddedSize as paddedSize,
} from "../tar/tar_header.ts";

/** A tar stream that cannot be split: names the byte offset where parsing failed. */
export class TarFormatError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "TarFormatError";
  /** Byte offset in the (uncompressed) tar stream. */
  readonly offset: number;
  /** What is wrong. */
  readonly reason: string;
  /** Create the error from its structured fields. */
  constructor(offset: number, reason: string, options?: ErrorOptions) {
    super(`Malformed tar at offset ${offset}: ${reason}`, options);
    this.offset = offset;
    this.reason = reason;
  }
}

function wrapTarError<T>(offset: number, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof TarHeaderError) throw new TarFormatError(offset, e.reason, { cause: e });
    throw e;
  }
}

/** tar-core's default limit on extension headers preceding one entry. */
export const MAX_PENDING_EXTENSIONS = 16;
/** tar-core's default limit on extension metadata (PAX / GNU long names) per entry. */
export const MAX_EXTENSION_BYTES = 1024 * 1024;

/**
 * Where the splitter sends bytes. Byte arrays are only valid during the call (the splitter
 * reuses its header buffer): a sink that keeps them must copy.
 */
export interface TarSplitSink {
  /** Bytes stored inline. */
  writeInline(bytes: Uint8Array): void | Promise<void>;
  /** A regular file's content of `size` (> 64) bytes starts. */
  beginFile(size: number): void | Promise<void>;
  /** Part of the current file's content. */
  writeFileChunk(bytes: Uint8Array): void | Promise<void>;
  /** The current file's content is complete. */
  endFile(): void | Promise<void>;
}

/** An entry as the splitter sees it (extensions applied), for callers that want names. */
export interface TarSplitEntry {
  /** Path bytes (PAX `path`, GNU long name, or ustar prefix/name). */
  path: Uint8Array;
  /** Link target bytes (PAX `linkpath`, GNU long link, or the header field). */
  linkpath: Uint8Array;
  /** Type flag character. */
  typeflag: string;
  /** Resolved size. */
  size: number;
  /** True when the content goes to an external object. */
  external: boolean;
}

type State =
  | "header" // collecting a 512-byte header
  | "extension" // collecting extension data (PAX x, GNU L/K)
  | "inline" // passing `remaining` bytes inline
  | "file" // passing `remaining` file-content bytes to the sink
  | "end"; // after the end marker: everything inline

/** PAX keys announcing GNU sparse files (format 0.x and 1.0), which are refused. */
function isSparsePaxKey(k: string): boolean {
  return k.startsWith("GNU.sparse.");
}

/** Regular-file type flags: `0`, NUL (old tar) and `7` (contiguous). */
function isRegularType(t: string): boolean {
  return t === "0" || t === "\0" || t === "7";
}

/**
 * Streaming tar splitter. Call `push` for each chunk, then `finish`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeTar } from "../tar/tar_writer.ts";
 * import { TarSplitter } from "./tar_split.ts";
 * const sizes: number[] = [];
 * let inline = 0;
 * const s = new TarSplitter({
 *   writeInline: (b) => void (inline += b.length),
 *   beginFile: (n) => void sizes.push(n),
 *   writeFileChunk: () => {},
 *   endFile: () => {},
 * });
 * await s.push(encodeTar([
 *   { path: "small", type: "file", content: new Uint8Array(64) },
 *   { path: "large", type: "file", content: new Uint8Array(65) },
 * ]));
 * s.finish();
 * assert.deepEqual(sizes, [65]);
 * assert.equal(s.entries, 2);
 * ```
 */
export class TarSplitter {
  #sink: TarSplitSink;
  #state: State = "header";
  #hdr = new Uint8Array(BLOCK_SIZE);
  #hdrFill = 0;
  #remaining = 0;
  /** Inline padding owed after the current file's content. */
  #padAfterFile = 0;
  #pos = 0;
  #prevZero = false;
  // Extension state for the entry being assembled.
  #extType = "";
  #extData: Uint8Array | null = null;
  #extFill = 0;
  #extSize = 0;
  #pendingExt = 0;
  #pendingExtBytes = 0;
  #paxSize: number | undefined;
  #paxPath: Uint8Array | undefined;
  #gnuLongName: Uint8Array | undefined;
  #paxLinkpath: Uint8Array | undefined;
  #gnuLongLink: Uint8Array | undefined;
  #entries = 0;
  #externalFiles = 0;

  #onEntry: ((e: TarSplitEntry) => void) | undefined;

  /** Split into `sink`; `onEntry` sees every entry before its content. */
  /** Create the error from its structured fields. */
  constructor(sink: TarSplitSink, onEntry?: (e: TarSplitEntry) => void) {
    this.#sink = sink;
    this.#onEntry = onEntry;
  }

  /** Number of entries (not counting extension headers) seen so far. */
  get entries(): number {
    return this.#entries;
  }

  /** Number of files stored externally so far. */
  get externalFiles(): number {
    return this.#externalFiles;
  }

  /** Tar bytes consumed so far. */
  get position(): number {
    return this.#pos;
  }

  /** Feed the next chunk of tar bytes. */
  async push(chunk: Uint8Array): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      switch (this.#state) {
        case "end": {
          await this.#sink.writeInline(chunk.subarray(off));
          this.#pos += chunk.length - off;
          off = chunk.length;
          break;
        }
        case "inline": {
          const n = Math.min(this.#remaining, chunk.length - off);
          await this.#sink.writeInline(chunk.subarray(off, off + n));
          this.#advance(n);
          off += n;
          if (this.#remaining === 0) this.#state = "header";
          break;
        }
        case "file": {
          const n = Math.min(this.#remaining, chunk.length - off);
          await this.#sink.writeFileChunk(chunk.subarray(off, off + n));
          this.#advance(n);
          off += n;
          if (this.#remaining === 0) {
            await this.#sink.endFile();
            this.#remaining = this.#padAfterFile;
            this.#state = this.#remaining > 0 ? "inline" : "header";
          }
          break;
        }
        case "extension": {
          const n = Math.min(this.#extSize - this.#extFill, chunk.length - off);
          this.#extData!.set(chunk.subarray(off, off + n), this.#extFill);
          this.#extFill += n;
          this.#pos += n;
          off += n;
          if (this.#extFill === this.#extSize) await this.#finishExtension();
          break;
        }
        case "header": {
          if (this.#hdrFill === 0 && chunk.length - off >= BLOCK_SIZE) {
            // Fast path: the whole header is in this chunk.
            const block = chunk.subarray(off, off + BLOCK_SIZE);
            off += BLOCK_SIZE;
            await this.#header(block);
          } else {
            const n = Math.min(BLOCK_SIZE - this.#hdrFill, chunk.length - off);
            this.#hdr.set(chunk.subarray(off, off + n), this.#hdrFill);
            this.#hdrFill += n;
            off += n;
            if (this.#hdrFill === BLOCK_SIZE) {
              this.#hdrFill = 0;
              await this.#header(this.#hdr);
            }
          }
          break;
        }
      }
    }
  }

  /** End of input: fails unless the tar ended at an entry boundary. */
  finish(): void {
    if (this.#state === "end") return;
    if (this.#state === "header" && this.#hdrFill === 0 && this.#pendingExt === 0) return;
    const where = this.#state === "header" ? "a header" : `${this.#state} data`;
    throw new TarFormatError(this.#pos + this.#hdrFill, `unexpected end of input inside ${where}`);
  }

  #advance(n: number): void {
    this.#remaining -= n;
    this.#pos += n;
  }

  async #header(block: Uint8Array): Promise<void> {
    const at = this.#pos;
    this.#pos += BLOCK_SIZE;
    const h = wrapTarError(at, () => parseTarHeader(block));
    if (h === null) {
      await this.#sink.writeInline(block);
      if (this.#prevZero) {
        this.#state = "end";
      }
      this.#prevZero = true;
      return;
    }
    this.#prevZero = false;
    const t = h.typeflag;
    const hasMagic = h.format !== "v7";
    const isExt = hasMagic && (t === "x" || t === "L" || t === "K");
    await this.#sink.writeInline(block);
    if (isExt) {
      if (++this.#pendingExt > MAX_PENDING_EXTENSIONS) {
        throw new TarFormatError(at, `more than ${MAX_PENDING_EXTENSIONS} extension headers`);
      }
      this.#pendingExtBytes += h.size;
      if (this.#pendingExtBytes > MAX_EXTENSION_BYTES) {
        throw new TarFormatError(at, `more than ${MAX_EXTENSION_BYTES} bytes of extension data`);
      }
      this.#extType = t;
      this.#extSize = paddedSize(h.size);
      this.#extData = new Uint8Array(this.#extSize);
      this.#extFill = 0;
      // Remember the unpadded length for parsing.
      this.#remaining = h.size;
      if (this.#extSize === 0) await this.#finishExtension();
      else this.#state = "extension";
      return;
    }
    if (hasMagic && t === "g") {
      // Global PAX header: data inline, no effect on the next entry's layout.
      this.#setInline(paddedSize(h.size));
      return;
    }
    if (t === "S") throw new TarFormatError(at, "sparse tar entries are not supported");
    const size = this.#paxSize ?? h.size;
    const path = this.#paxPath ?? this.#gnuLongName ?? h.name;
    const linkpath = this.#paxLinkpath ?? this.#gnuLongLink ?? h.linkname;
    const pathLen = path.length;
    this.#paxSize = undefined;
    this.#paxPath = undefined;
    this.#paxLinkpath = undefined;
    this.#gnuLongName = undefined;
    this.#gnuLongLink = undefined;
    this.#pendingExt = 0;
    this.#pendingExtBytes = 0;
    if (pathLen === 0) throw new TarFormatError(at, "entry with an empty path");
    this.#entries++;
    const external = isRegularType(t) && size > INLINE_CONTENT_MAX;
    this.#onEntry?.({ path, linkpath, typeflag: t, size, external });
    if (external) {
      this.#externalFiles++;
      await this.#sink.beginFile(size);
      this.#remaining = size;
      this.#padAfterFile = paddedSize(size) - size;
      this.#state = "file";
      return;
    }
    this.#setInline(paddedSize(size));
  }

  #setInline(n: number): void {
    this.#remaining = n;
    this.#state = n > 0 ? "inline" : "header";
  }

  async #finishExtension(): Promise<void> {
    const at = this.#pos - this.#extSize;
    const data = this.#extData!;
    const len = this.#remaining;
    this.#extData = null;
    await this.#sink.writeInline(data);
    const body = data.subarray(0, len);
    if (this.#extType === "x") {
      const recs = wrapTarError(at, () => parsePaxRecords(body));
      for (const [k, raw] of recs) {
        const v = new TextDecoder().decode(raw);
        if (isSparsePaxKey(k)) {
          throw new TarFormatError(at, "sparse tar entries are not supported");
        }
        if (k === "size") {
          if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) {
            throw new TarFormatError(at, `invalid PAX size "${v}"`);
          }
          this.#paxSize = Number(v);
        } else if (k === "path") {
          this.#paxPath = raw;
        } else if (k === "linkpath") {
          this.#paxLinkpath = raw;
        }
      }
    } else if (this.#extType === "L") {
      const nul = body.indexOf(0);
      this.#gnuLongName = (nul < 0 ? body : body.subarray(0, nul)).slice();
    } else if (this.#extType === "K") {
      const nul = body.indexOf(0);
      this.#gnuLongLink = (nul < 0 ? body : body.subarray(0, nul)).slice();
    }
    this.#remaining = 0;
    this.#state = "header";
  }
}

/**
 * Producer side: a tar stream plus the directory its regular files were extracted into →
 * a splitdirfdstream of chunks (containers-storage import, GetLayer).
 *
 * @module
 */

import type { OwnedFd } from "../../ffi/owned_fd.ts";
import { fstat, openBeneath, RESOLVE_STRICT } from "../../ffi/fs.ts";
import { ErrnoError } from "../../ffi/errno.ts";
import * as C from "../../ffi/constants.ts";
import {
  isTarExtension,
  MAX_TAR_EXTENSION_SIZE,
  parseTarHeader,
  TAR_BLOCK_SIZE,
  TarEntryResolver,
  TarHeaderError,
  tarPaddedSize,
  TarType,
} from "../tar/tar_header.ts";
import type { Chunk } from "./chunk.ts";
import { MAX_INLINE_CHUNK_SIZE } from "./constants.ts";
import { InlineTooLargeError, SplitdirfdstreamError } from "./errors.ts";
import { validateFilename } from "./validate_filename.ts";

/**
 * Metadata bytes gathered before a Metadata chunk is emitted even without a file in
 * between (1 MiB): consecutive headers are merged into one chunk, but a long run of
 * header-only entries (directories, links) never buffers more than this.
 */
const METADATA_FLUSH_SIZE = 1024 * 1024;

/** "Others may read" permission bit: without it the consumer (not root) cannot open the file. */
const S_IROTH = 0o004;

const utf8 = new TextDecoder();

/** A regular file of the tar does not match the file in the directory. *
 * @example
 * ```ts
 * import { ProducerFileError } from "./produce_from_tar.ts";
 * import assert from "node:assert/strict";
 * assert.equal(new ProducerFileError("a", "ENOENT").reason, "ENOENT");
 * ```
 */
export class ProducerFileError extends SplitdirfdstreamError {
  /** Error name, for matching without `instanceof`. */
  override name = "ProducerFileError";
  /** Path relative to the directory. */
  readonly filename: string;
  /** What is wrong, e.g. `ENOENT` or `file is 3 bytes, the tar says 5`. */
  readonly reason: string;
  /** Make the error; `options.cause` carries the underlying error, if any. */
  constructor(filename: string, reason: string, options?: ErrorOptions) {
    super(`Cannot reference "${filename}" in the layer directory: ${reason}`, options);
    this.filename = filename;
    this.reason = reason;
  }
}

/** Options of {@link produceFromTar}. */
export interface ProduceFromTarOptions {
  /**
   * Send the content of files that are not world-readable inline (InlineData), because the
   * consumer could not open them. Default true; false when the consumer has
   * CAP_DAC_OVERRIDE (GetLayer's `consumer_has_cap_dac_override`).
   */
  inlineUnreadable?: boolean;
  /** `dirfd_index` written into FileBackedData chunks: the slot of `dir`. Default 0. */
  dirfdIndex?: number;
}

/** Buffered reads from a byte stream; views are handed out without copying where possible. */
class ByteSource {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buf: Uint8Array = new Uint8Array(0);
  #pos = 0;
  #eof = false;
  /** Bytes consumed so far. */
  offset = 0;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  async #fill(): Promise<boolean> {
    while (this.#pos >= this.#buf.length) {
      if (this.#eof) return false;
      const r = await this.#reader.read();
      if (r.done) {
        this.#eof = true;
        return false;
      }
      this.#buf = r.value;
      this.#pos = 0;
    }
    return true;
  }

  /** Up to `max` bytes (at least 1), or null at end of stream. */
  async some(max: number): Promise<Uint8Array | null> {
    if (!await this.#fill()) return null;
    const n = Math.min(max, this.#buf.length - this.#pos);
    const out = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    this.offset += n;
    return out;
  }

  /**
   * Exactly `n` bytes, or fewer if the stream ends first. Memory grows with the bytes that
   * actually arrive, never with a size a hostile header merely declares.
   */
  async exact(n: number): Promise<Uint8Array> {
    if (this.#pos + n <= this.#buf.length) {
      const out = this.#buf.subarray(this.#pos, this.#pos + n);
      this.#pos += n;
      this.offset += n;
      return out;
    }
    const pieces: Uint8Array[] = [];
    let got = 0;
    while (got < n) {
      const piece = await this.some(n - got);
      if (piece === null) break;
      pieces.push(piece);
      got += piece.length;
    }
    const out = new Uint8Array(got);
    let off = 0;
    for (const p of pieces) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }

  async cancel(reason?: unknown): Promise<void> {
    await this.#reader.cancel(reason);
  }

  release(): void {
    this.#reader.releaseLock();
  }
}

function truncated(what: string, offset: number): TarHeaderError {
  return new TarHeaderError(`archive truncated in ${what} at offset ${offset}`);
}

/** Strip leading `./` components: tar paths are relative to the extraction directory. */
function relativePath(path: Uint8Array): Uint8Array {
  let p = path;
  while (p.length >= 2 && p[0] === 0x2e && p[1] === 0x2f) {
    p = p.subarray(2);
    while (p.length > 0 && p[0] === 0x2f) p = p.subarray(1);
  }
  return p;
}

/** Decide how a regular file's content travels: by reference or inline. */
function classify(
  dir: OwnedFd,
  path: Uint8Array,
  size: number,
  inlineUnreadable: boolean,
): { kind: "file"; filename: string } | { kind: "inline" } {
  const rel = relativePath(path);
  try {
    validateFilename(rel);
  } catch (e) {
    // The consumer would refuse this name (`..`, absolute, not UTF-8, too long): the bytes
    // are in the tar, so they travel inline and the layer still round-trips.
    if (e instanceof SplitdirfdstreamError) return { kind: "inline" };
    throw e;
  }
  const filename = utf8.decode(rel);
  let fd: OwnedFd;
  try {
    // O_PATH: enough to fstat, works on files we may not read ourselves.
    fd = openBeneath(dir, rel, { flags: C.O_PATH, resolve: RESOLVE_STRICT | C.RESOLVE_NO_XDEV });
  } catch (e) {
    if (e instanceof ErrnoError) throw new ProducerFileError(filename, e.code, { cause: e });
    throw e;
  }
  using _fd = fd;
  const st = fstat(fd);
  if ((st.mode & C.S_IFMT) !== C.S_IFREG) {
    throw new ProducerFileError(filename, "not a regular file");
  }
  if (st.size !== size) {
    // The file is not this entry's content: an archive that stores the same path twice
    // (only the last copy is in the directory), or a directory that changed. The tar's
    // own bytes are right, so they travel inline.
    return { kind: "inline" };
  }
  if (inlineUnreadable && (st.mode & S_IROTH) === 0) return { kind: "inline" };
  return { kind: "file", filename };
}

async function* produce(
  src: ByteSource,
  dir: OwnedFd,
  opts: ProduceFromTarOptions,
): AsyncGenerator<Chunk> {
  const inlineUnreadable = opts.inlineUnreadable ?? true;
  const dirfdIndex = opts.dirfdIndex ?? 0;
  const resolver = new TarEntryResolver();
  let meta: Uint8Array[] = [];
  let metaLen = 0;
  const takeMeta = (): Chunk | null => {
    if (metaLen === 0) return null;
    let data: Uint8Array;
    if (meta.length === 1) {
      data = meta[0];
    } else {
      data = new Uint8Array(metaLen);
      let off = 0;
      for (const p of meta) {
        data.set(p, off);
        off += p.length;
      }
    }
    meta = [];
    metaLen = 0;
    return { type: "metadata", data };
  };
  const addMeta = (b: Uint8Array) => {
    if (b.length === 0) return;
    meta.push(b);
    metaLen += b.length;
  };
  /** Copy `n` stream bytes into metadata, flushing as the buffer grows. */
  async function* passThrough(n: number, what: string): AsyncGenerator<Chunk> {
    let left = n;
    while (left > 0) {
      const piece = await src.some(Math.min(left, METADATA_FLUSH_SIZE));
      if (piece === null) throw truncated(what, src.offset);
      addMeta(piece);
      left -= piece.length;
      if (metaLen >= METADATA_FLUSH_SIZE) yield takeMeta()!;
    }
  }

  for (;;) {
    const block = await src.exact(TAR_BLOCK_SIZE);
    if (block.length === 0) break;
    if (block.length < TAR_BLOCK_SIZE) throw truncated("a header", src.offset);
    const header = parseTarHeader(block);
    addMeta(block);
    if (header === null) {
      // End-of-archive marker: everything after it (the second zero block, record
      // padding) is carried verbatim.
      for (;;) {
        const piece = await src.some(METADATA_FLUSH_SIZE);
        if (piece === null) break;
        addMeta(piece);
        if (metaLen >= METADATA_FLUSH_SIZE) yield takeMeta()!;
      }
      break;
    }
    if (isTarExtension(header.typeflag)) {
      if (header.size > MAX_TAR_EXTENSION_SIZE) {
        throw new TarHeaderError(
          `extension entry of ${header.size} bytes exceeds ${MAX_TAR_EXTENSION_SIZE}`,
        );
      }
      const body = await src.exact(tarPaddedSize(header.size));
      if (body.length < tarPaddedSize(header.size)) throw truncated("an extension", src.offset);
      addMeta(body);
      resolver.addExtension(header, body.subarray(0, header.size));
      continue;
    }
    const entry = resolver.resolve(header);
    const n = entry.contentSize;
    const pad = tarPaddedSize(n) - n;
    const regular = !entry.sparse && (entry.typeflag === TarType.REGULAR ||
      entry.typeflag === TarType.REGULAR_OLD || entry.typeflag === TarType.CONTIGUOUS);
    if (!regular) {
      // Other content (GNU sparse maps and data, unknown types) is not the plain bytes of a
      // file in the directory: pass it on verbatim.
      yield* passThrough(n + pad, "entry content");
      continue;
    }
    const how = classify(dir, entry.path, n, inlineUnreadable);
    const m = takeMeta();
    if (m) yield m;
    if (how.kind === "file") {
      yield { type: "fileBackedData", contentLength: n, dirfdIndex, filename: how.filename };
      let left = n;
      while (left > 0) {
        const piece = await src.some(left);
        if (piece === null) throw truncated("file content", src.offset);
        left -= piece.length;
      }
    } else {
      if (n > MAX_INLINE_CHUNK_SIZE) throw new InlineTooLargeError(n, MAX_INLINE_CHUNK_SIZE);
      const data = await src.exact(n);
      if (data.length < n) throw truncated("file content", src.offset);
      yield { type: "inlineData", data };
    }
    yield* passThrough(pad, "padding");
  }
  const m = takeMeta();
  if (m) yield m;
}

/**
 * Turn a tar stream into splitdirfdstream chunks, given the directory `dir` its regular
 * files were extracted into: tar headers, extension entries and padding become Metadata;
 * each regular file's content becomes FileBackedData naming the entry path (leading `./`
 * removed) beneath `dir`, or InlineData (the tar's own bytes) when the file is not
 * world-readable and `inlineUnreadable` (default) is set, when its name could not be
 * referenced safely (`..`, absolute, not UTF-8), or when the file's size differs from the
 * entry's (a path stored twice in the archive: only the last copy is in `dir`). Hardlinks,
 * symlinks, directories and devices have no content; GNU sparse entries are carried
 * verbatim. A file of the same size but other content than its entry cannot be detected
 * here: consumers verify the reconstructed stream against the diff_id.
 *
 * Concatenating the chunks' bytes (with file contents read from `dir`) gives the tar back
 * byte for byte. The output is pulled: the tar is read only as fast as chunks are
 * consumed, and at most one chunk (≤ 1 MiB of metadata, or one inline file) is buffered.
 * `dir` must stay open until the stream ends; the caller keeps ownership.
 *
 * @throws {TarHeaderError} malformed or truncated tar.
 * @throws {ProducerFileError} a regular file is missing from `dir`, not a regular file
 *   there, or not reachable without following a symlink.
 * @throws {InlineTooLargeError} a file to inline is larger than `MAX_INLINE_CHUNK_SIZE`.
 *
 * @example
 * ```ts
 * import { produceFromTar } from "./produce_from_tar.ts";
 * import { openDir } from "../../ffi/fs.ts";
 * import assert from "node:assert/strict";
 * const dir = await Deno.makeTempDir();
 * try {
 *   using fd = openDir(dir);
 *   const chunks = await Array.fromAsync(produceFromTar(ReadableStream.from([]), fd));
 *   assert.deepEqual(chunks, []);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export function produceFromTar(
  tar: ReadableStream<Uint8Array>,
  dir: OwnedFd,
  opts: ProduceFromTarOptions = {},
): ReadableStream<Chunk> {
  const src = new ByteSource(tar);
  const gen = produce(src, dir, opts);
  return new ReadableStream<Chunk>({
    async pull(controller) {
      try {
        const r = await gen.next();
        if (r.done) {
          src.release();
          controller.close();
        } else {
          controller.enqueue(r.value);
        }
      } catch (e) {
        // Stop the tar source too; the production error `e` is what the consumer sees, a
        // failure to cancel the source could only hide it.
        await src.cancel(e).catch(() => undefined);
        throw e;
      }
    },
    async cancel(reason) {
      await gen.return(undefined);
      await src.cancel(reason);
    },
  }, { highWaterMark: 1 });
}

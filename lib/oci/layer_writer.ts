/**
 * LayerWriter: builds the `oci-layer-<diff_id>` splitstream of one tar layer, whoever drives
 * it — the tar splitter (pull from a layout or archive), the splitdirfdstream drain (`oci
 * copy`, varlink PutLayer) or the containers-storage importer — so every path produces
 * byte-identical splitstreams (repository-format §4.2).
 *
 * Inline bytes (tar headers, padding, files of at most {@link INLINE_CONTENT_MAX} bytes) go
 * into the splitstream; larger file contents become external objects. Every byte is hashed
 * with sha256 on the way, and `commit()` refuses (typed {@link DiffIdMismatchError}, no
 * stream written) unless that hash equals the expected diff_id.
 *
 * @module
 */

import { fstat, pread } from "../../ffi/fs.ts";
import type { OwnedFd } from "../../ffi/owned_fd.ts";
import { Sha256 } from "../../ffi/libcrypto.ts";
import type { Repository } from "../repository/repository.ts";
import { CONTENT_TYPE, SplitstreamWriter } from "../repository/splitstream.ts";
import { DiffIdMismatchError } from "./errors.ts";
import { layerStreamName } from "./names.ts";
import { INLINE_CONTENT_MAX } from "../erofs/format.ts";

/** Read size when hashing a file given by fd. */
const FD_READ_CHUNK = 1024 * 1024;
/** Reused read buffer (reads are synchronous): fresh 1 MiB buffers cost page faults. */
let readBuf: Uint8Array<ArrayBuffer> | undefined;

/** Counters of one layer import. */
export interface LayerStats {
  /** External objects stored by reflink (FICLONE). */
  objectsReflinked: number;
  /** External objects stored by hardlinking the source file. */
  objectsHardlinked: number;
  /** External objects stored by copying bytes. */
  objectsCopied: number;
  /** External objects that were already in the repository. */
  objectsAlreadyPresent: number;
  /** Bytes stored inline in the splitstream. */
  inlineBytes: number;
  /** Bytes in external objects (counted once per reference). */
  externalBytes: number;
}

/** All-zero counters. */
export function emptyLayerStats(): LayerStats {
  return {
    objectsReflinked: 0,
    objectsHardlinked: 0,
    objectsCopied: 0,
    objectsAlreadyPresent: 0,
    inlineBytes: 0,
    externalBytes: 0,
  };
}

/** What {@link LayerWriter.commit} returns. */
export interface LayerCommit {
  /** fs-verity digest of the layer splitstream object. */
  verity: Uint8Array;
  /** `sha256:<hex>` of the whole tar. */
  diffId: string;
  /** Counters. */
  stats: LayerStats;
}

/** Options of {@link LayerWriter}. */
export interface LayerWriterOptions {
  /** Expected diff_id: `commit()` fails unless the tar hashes to it. */
  diffId?: string;
  /** How the layer is named in errors (e.g. its blob digest); default the diff_id. */
  layer?: string;
}

/** Options of {@link LayerWriter.writeFileFromFd}. */
export interface FileFromFdOptions {
  /** Try FICLONE. */
  allowReflink: boolean;
  /** Try hardlinking the source (same algorithm, fs-verity enabled on it). */
  allowHardlink: boolean;
  /** Fall back to copying bytes. */
  allowCopy: boolean;
  /** The object ID if the caller already knows it (skips hashing for the object name). */
  knownId?: Uint8Array;
  /** Nobody modifies the source file (see `Repository.storeObjectFromFile`). */
  stableSource?: boolean;
}

/** A content writer accepting `write`/`finish`, as `Repository.createObjectWriter()` returns. */
interface ObjectWriterLike extends Disposable {
  write(chunk: Uint8Array): void;
  finish(): { id: Uint8Array; present: boolean };
}

/**
 * Builds one layer splitstream; use with `using` so an abandoned import releases its files.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Repository } from "../repository/repository.ts";
 * import { encodeTar } from "../tar/tar_writer.ts";
 * import { LayerWriter } from "./layer_writer.ts";
 * import { TarSplitter } from "./tar_split.ts";
 *
 * const dir = await Deno.makeTempDir();
 * using repo = await Repository.init(`${dir}/repo`, { algorithm: "sha256", insecure: true });
 * const tar = encodeTar([{ path: "big", type: "file", content: new Uint8Array(5000) }]);
 * using w = new LayerWriter(repo);
 * const splitter = new TarSplitter(w);
 * await splitter.push(tar);
 * splitter.finish();
 * const { diffId, stats } = w.commit();
 * assert.ok(repo.hasStream(`oci-layer-${diffId}`) !== null);
 * assert.equal(stats.externalBytes, 5000);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class LayerWriter implements Disposable {
  #repo: Repository;
  #opts: LayerWriterOptions;
  #sw: SplitstreamWriter;
  #sha = new Sha256();
  #stats: LayerStats = emptyLayerStats();
  // The file being written by beginFile/writeFileChunk/endFile.
  #fileSize = -1;
  #fileFill = 0;
  #small: Uint8Array | null = null;
  #obj: ObjectWriterLike | null = null;
  #done = false;
  /** Set once a trusted object was stored without being read: the sha256 is incomplete. */
  #unverified = false;

  /** Start a layer in `repo` (opened for writing). */
  constructor(repo: Repository, opts: LayerWriterOptions = {}) {
    this.#repo = repo;
    this.#opts = opts;
    this.#sw = new SplitstreamWriter(repo.algorithm, CONTENT_TYPE.OCI_LAYER);
  }

  /** Counters so far. */
  get stats(): Readonly<LayerStats> {
    return this.#stats;
  }

  #live(): void {
    if (this.#done) throw new TypeError("LayerWriter is already committed or disposed");
  }

  /** Tar bytes stored inline (headers, padding, small entries); copied, so callers may reuse. */
  writeInline(bytes: Uint8Array): void {
    this.#live();
    if (this.#fileSize >= 0) throw new TypeError("writeInline inside a file");
    if (bytes.length === 0) return;
    this.#sha.update(bytes);
    this.#sw.writeInline(bytes);
    this.#stats.inlineBytes += bytes.length;
  }

  /** Start a regular file's content of `size` bytes (feed it with writeFileChunk, then endFile). */
  beginFile(size: number): void {
    this.#live();
    if (this.#fileSize >= 0) throw new TypeError("beginFile inside a file");
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`Invalid file size ${size}`);
    this.#fileSize = size;
    this.#fileFill = 0;
    if (size <= INLINE_CONTENT_MAX) this.#small = new Uint8Array(size);
    else this.#obj = this.#repo.createObjectWriter();
  }

  /** Part of the current file's content. */
  writeFileChunk(bytes: Uint8Array): void {
    this.#live();
    if (this.#fileSize < 0) throw new TypeError("writeFileChunk outside a file");
    if (this.#fileFill + bytes.length > this.#fileSize) {
      throw new RangeError(`File content exceeds its declared size ${this.#fileSize}`);
    }
    this.#sha.update(bytes);
    if (this.#small) this.#small.set(bytes, this.#fileFill);
    else this.#obj!.write(bytes);
    this.#fileFill += bytes.length;
  }

  /** The current file is complete: store it inline (≤ 64 bytes) or as an external object. */
  endFile(): void {
    this.#live();
    if (this.#fileSize < 0) throw new TypeError("endFile outside a file");
    if (this.#fileFill !== this.#fileSize) {
      throw new RangeError(`File has ${this.#fileFill} bytes, declared ${this.#fileSize}`);
    }
    const size = this.#fileSize;
    this.#fileSize = -1;
    if (this.#small) {
      const b = this.#small;
      this.#small = null;
      this.#sw.writeInline(b);
      this.#stats.inlineBytes += b.length;
      return;
    }
    const obj = this.#obj!;
    this.#obj = null;
    try {
      const { id, present } = obj.finish();
      this.#external(id, size, present ? "present" : "copied");
    } finally {
      obj[Symbol.dispose]();
    }
  }

  #external(id: Uint8Array, size: number, how: "present" | "copied" | "reflinked" | "hardlinked") {
    this.#sw.writeExternal(id, size);
    this.#stats.externalBytes += size;
    if (how === "present") this.#stats.objectsAlreadyPresent++;
    else if (how === "copied") this.#stats.objectsCopied++;
    else if (how === "reflinked") this.#stats.objectsReflinked++;
    else this.#stats.objectsHardlinked++;
  }

  /** A whole file from chunks (sync or async iterable) totalling `size` bytes. */
  async writeFileContent(
    chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
    size: number,
  ): Promise<void> {
    this.beginFile(size);
    for await (const c of chunks) this.writeFileChunk(c);
    this.endFile();
  }

  /**
   * An object file of a trusted repository of the same algorithm, named `id` (a local
   * same-algorithm copy): reflinked, hardlinked or copied under `id` without reading it.
   * The layer can then no longer be hashed, so {@link commit} skips the diff_id check and
   * names the stream after the expected diff_id (which the constructor must have been given):
   * the stream is byte-identical to the source's, whose diff_id was verified when it was
   * imported.
   */
  writeTrustedObject(fd: OwnedFd, size: number, id: Uint8Array, opts: FileFromFdOptions): void {
    this.#live();
    if (this.#fileSize >= 0) throw new TypeError("writeTrustedObject inside a file");
    if (this.#opts.diffId === undefined) {
      throw new TypeError("writeTrustedObject needs the layer's expected diff_id");
    }
    if (size <= INLINE_CONTENT_MAX) {
      // A splitstream never references an object this small; keep the byte-exact layout.
      this.writeFileFromFd(fd, size, opts);
      return;
    }
    const r = this.#repo.storeObjectFromFile(fd, {
      allowReflink: opts.allowReflink,
      allowHardlink: opts.allowHardlink,
      allowCopy: opts.allowCopy,
      trustedId: id,
    });
    this.#unverified = true;
    this.#external(r.id, size, r.method);
  }

  /**
   * A whole file from an fd (read from offset 0, `size` bytes). Small files are read inline;
   * large ones are stored with the repository's zero-copy import (`storeObjectFromFile`:
   * reflink, hardlink or copy, as allowed). The bytes are always read once more for the
   * running sha256 of the tar.
   */
  writeFileFromFd(fd: OwnedFd, size: number, opts: FileFromFdOptions): void {
    this.#live();
    if (this.#fileSize >= 0) throw new TypeError("writeFileFromFd inside a file");
    const st = fstat(fd);
    if (st.size !== size) {
      throw new RangeError(`File has ${st.size} bytes, declared ${size}`);
    }
    if (size <= INLINE_CONTENT_MAX) {
      const b = new Uint8Array(size);
      let off = 0;
      while (off < size) {
        const n = pread(fd, b.subarray(off), off);
        if (n === 0) throw new RangeError(`File shrank while reading (${off} of ${size} bytes)`);
        off += n;
      }
      this.#sha.update(b);
      this.#sw.writeInline(b);
      this.#stats.inlineBytes += size;
      return;
    }
    // One pass: the repository hands every byte it reads (of the clone, the linked file or
    // the copy) to the running sha256. Only an object that was already present is not read
    // by it, and is read here instead.
    const r = this.#repo.storeObjectFromFile(fd, {
      allowReflink: opts.allowReflink,
      allowHardlink: opts.allowHardlink,
      allowCopy: opts.allowCopy,
      knownId: opts.knownId,
      stableSource: opts.stableSource,
      tap: (chunk) => this.#sha.update(chunk),
    });
    if (!r.tapped) {
      const buf = readBuf ??= new Uint8Array(FD_READ_CHUNK);
      let off = 0;
      while (off < size) {
        const n = pread(fd, buf.subarray(0, Math.min(buf.length, size - off)), off);
        if (n === 0) throw new RangeError(`File shrank while reading (${off} of ${size} bytes)`);
        this.#sha.update(buf.subarray(0, n));
        off += n;
      }
    }
    this.#external(r.id, size, r.method);
  }

  /**
   * Finish: verify sha256 == the expected diff_id (else {@link DiffIdMismatchError} and no
   * stream is written), then write `oci-layer-<diffId>`. Objects already stored stay as
   * unreferenced garbage for GC.
   */
  commit(): LayerCommit {
    this.#live();
    if (this.#fileSize >= 0) throw new TypeError("commit inside a file");
    this.#done = true;
    const expected = this.#opts.diffId;
    const diffId = this.#unverified ? expected! : "sha256:" + this.#sha.digest().toHex();
    if (expected !== undefined && expected !== diffId) {
      throw new DiffIdMismatchError(this.#opts.layer ?? expected, expected, diffId);
    }
    const bytes = this.#sw.finish();
    const verity = this.#repo.writeStream(layerStreamName(diffId), bytes);
    return { verity, diffId, stats: { ...this.#stats } };
  }

  /** Abandon (or release after commit): discards an unfinished external object. */
  [Symbol.dispose](): void {
    this.#done = true;
    this.#obj?.[Symbol.dispose]();
    this.#obj = null;
    this.#sha[Symbol.dispose]();
    this.#sw[Symbol.dispose]();
  }
}

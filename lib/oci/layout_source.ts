/**
 * Reading OCI image layouts: a directory (`oci:DIR[:TAG|@DIGEST]`) or a tar of one
 * (`oci-archive:FILE[:TAG]`, read in place through an index of member offsets, never
 * extracted). Every blob read is checked against its descriptor: size before reading, sha256
 * after. Files are opened beneath the layout's directory fd (DESIGN 7).
 *
 * @module
 */

import { ErrnoError, isErrno } from "../../ffi/errno.ts";
import { fstat, openBeneath, openDir, openPath, pread } from "../../ffi/fs.ts";
import type { OwnedFd } from "../../ffi/owned_fd.ts";
import {
  parseTarHeader,
  TAR_BLOCK_SIZE,
  TarEntryResolver,
  TarHeaderError,
  tarPaddedSize,
} from "../tar/tar_header.ts";
import { DigestHasher, parseDigest } from "./digest.ts";
import {
  BlobDigestMismatchError,
  type BlobKind,
  BlobNotFoundError,
  BlobSizeMismatchError,
  ImageNotFoundError,
  InvalidOciDocumentError,
  InvalidSourceError,
  NoMatchingPlatformError,
} from "./errors.ts";
import {
  type Descriptor,
  type ImageManifest,
  parseConfig,
  parseIndex,
  parseIndexOrManifest,
  type Platform,
  REF_NAME_ANNOTATION,
} from "./manifest.ts";
import { isIndexMediaType, OCI_MANIFEST } from "./media_types.ts";
import { formatPlatform, hostPlatform, platformMatches } from "./platform.ts";

/** Largest index/manifest we read into memory (containerd's limit for manifests). */
export const MAX_MANIFEST_SIZE = 4 * 1024 * 1024;
/** Largest config we read into memory. */
export const MAX_CONFIG_SIZE = 16 * 1024 * 1024;
/** Read size for streaming blobs: large enough for throughput, small enough to bound memory. */
const READ_CHUNK = 1024 * 1024;
/** Index nesting we follow before giving up (a cycle or a hostile layout). */
const MAX_INDEX_DEPTH = 4;

/** A readable byte range: a whole file, or a member of an archive. */
interface RangeFile extends Disposable {
  readonly size: number;
  /** Read into `buf` at `pos` (relative to the range); returns bytes read. */
  read(buf: Uint8Array<ArrayBuffer>, pos: number): number;
}

/** All of `f`'s bytes, up to its size (fewer when it ends early: callers check the length). */
function readWhole(f: RangeFile): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(f.size);
  let off = 0;
  while (off < f.size) {
    const n = f.read(buf.subarray(off), off);
    if (n === 0) break;
    off += n;
  }
  return off === buf.length ? buf : buf.slice(0, off);
}

/** How a layout's files are reached. */
interface LayoutFiles extends Disposable {
  /** Open a layout-relative path, or null if it does not exist. */
  open(path: string): RangeFile | null;
}

class DirFiles implements LayoutFiles {
  #dir: OwnedFd;
  constructor(path: string) {
    this.#dir = openDir(path);
  }
  open(path: string): RangeFile | null {
    let fd: OwnedFd;
    try {
      fd = openBeneath(this.#dir, path);
    } catch (e) {
      if (isErrno(e, "ENOENT")) return null;
      throw e;
    }
    const size = fstat(fd).size;
    return {
      size,
      read: (buf, pos) => pread(fd, buf, pos),
      [Symbol.dispose]: () => fd.close(),
    };
  }
  [Symbol.dispose](): void {
    this.#dir.close();
  }
}

/** Normalize an archive member name: drop leading `./` and `/`, trailing `/`. */
function memberName(raw: Uint8Array): string {
  let s = new TextDecoder().decode(raw);
  while (s.startsWith("./")) s = s.slice(2);
  s = s.replace(/^\/+/, "").replace(/\/+$/, "");
  return s;
}

class ArchiveFiles implements LayoutFiles {
  #fd: OwnedFd;
  #members = new Map<string, { offset: number; size: number }>();
  constructor(path: string, reference: string) {
    this.#fd = openPath(path);
    try {
      this.#index(reference);
    } catch (e) {
      this.#fd.close();
      throw e;
    }
  }

  /** Walk the tar headers (skipping content) and record where each regular file lives. */
  #index(reference: string): void {
    const size = fstat(this.#fd).size;
    const hdr = new Uint8Array(TAR_BLOCK_SIZE);
    const resolver = new TarEntryResolver();
    let pos = 0;
    while (pos + TAR_BLOCK_SIZE <= size) {
      if (pread(this.#fd, hdr, pos) !== TAR_BLOCK_SIZE) break;
      let h;
      try {
        h = parseTarHeader(hdr);
      } catch (e) {
        if (e instanceof TarHeaderError) {
          throw new InvalidSourceError(reference, `archive header at offset ${pos}: ${e.reason}`, {
            cause: e,
          });
        }
        throw e;
      }
      if (h === null) break; // end of archive
      pos += TAR_BLOCK_SIZE;
      const t = h.typeflag;
      if (t === "x" || t === "g" || t === "L" || t === "K") {
        if (h.size > MAX_MANIFEST_SIZE) {
          throw new InvalidSourceError(reference, `oversized tar extension at offset ${pos}`);
        }
        const body = new Uint8Array(h.size);
        if (pread(this.#fd, body, pos) !== h.size) {
          throw new InvalidSourceError(reference, "truncated archive");
        }
        resolver.addExtension(h, body);
        pos += tarPaddedSize(h.size);
        continue;
      }
      const e = resolver.resolve(h);
      if (t === "0" || t === "\0" || t === "7") {
        this.#members.set(memberName(e.path), { offset: pos, size: e.size });
      }
      pos += tarPaddedSize(e.contentSize);
    }
  }

  open(path: string): RangeFile | null {
    const m = this.#members.get(path);
    if (!m) return null;
    const fd = this.#fd;
    return {
      size: m.size,
      read: (buf, p) => {
        const n = Math.min(buf.length, m.size - p);
        return n <= 0 ? 0 : pread(fd, n === buf.length ? buf : buf.subarray(0, n), m.offset + p);
      },
      [Symbol.dispose]: () => {},
    };
  }

  [Symbol.dispose](): void {
    this.#fd.close();
  }
}

/** A parsed `oci:` / `oci-archive:` reference. */
export interface LayoutReference {
  /** Transport. */
  transport: "oci" | "oci-archive";
  /** Path of the layout directory or archive file. */
  path: string;
  /** Tag (the index's `org.opencontainers.image.ref.name`), if given. */
  tag?: string;
  /** Manifest digest, if given as `@sha256:…`. */
  digest?: string;
}

/**
 * Parse `oci:DIR[:TAG|@DIGEST]` or `oci-archive:FILE[:TAG|@DIGEST]`. Like composefs-rs, the
 * tag is what follows the **last** `:` when it contains no `/` (so `/a:b/c` is a path,
 * `d:t:u` is path `d:t` with tag `u`); an empty tag means none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseLayoutReference } from "./layout_source.ts";
 * assert.deepEqual(parseLayoutReference("oci:/srv/img:v1"), {
 *   transport: "oci",
 *   path: "/srv/img",
 *   tag: "v1",
 * });
 * assert.deepEqual(parseLayoutReference("oci-archive:/a:b/c.tar"), {
 *   transport: "oci-archive",
 *   path: "/a:b/c.tar",
 * });
 * ```
 */
export function parseLayoutReference(source: string): LayoutReference {
  let transport: LayoutReference["transport"];
  let rest: string;
  if (source.startsWith("oci:")) {
    transport = "oci";
    rest = source.slice(4);
  } else if (source.startsWith("oci-archive:")) {
    transport = "oci-archive";
    rest = source.slice(12);
  } else {
    const t = source.includes(":") ? source.slice(0, source.indexOf(":")) : "";
    throw new InvalidSourceError(
      source,
      t ? `unsupported transport "${t}" (supported: oci, oci-archive)` : "missing transport",
    );
  }
  const at = rest.match(/@(sha256:[0-9a-f]{64})$/);
  if (at) {
    const path = rest.slice(0, at.index);
    if (!path) throw new InvalidSourceError(source, "empty path");
    return { transport, path, digest: at[1] };
  }
  const colon = rest.lastIndexOf(":");
  let path = rest;
  let tag: string | undefined;
  if (colon >= 0 && !rest.slice(colon + 1).includes("/")) {
    path = rest.slice(0, colon);
    tag = rest.slice(colon + 1) || undefined;
  }
  if (!path) throw new InvalidSourceError(source, "empty path");
  return tag === undefined ? { transport, path } : { transport, path, tag };
}

/** A manifest chosen from a layout, with its verified bytes. */
export interface SelectedManifest {
  /** The manifest descriptor (digest from the index, or from `@DIGEST`). */
  descriptor: Descriptor;
  /** Exact manifest bytes (digest-verified). */
  bytes: Uint8Array;
  /** Parsed manifest. */
  manifest: ImageManifest;
}

/** An open OCI layout (directory or archive). Disposable: closes its fds. */
export class OciLayout implements Disposable {
  /** The reference it was opened from. */
  readonly reference: LayoutReference;
  /** A description for messages, e.g. `oci:/tmp/layout`. */
  readonly description: string;
  #files: LayoutFiles;

  private constructor(ref: LayoutReference, files: LayoutFiles) {
    this.reference = ref;
    this.description = `${ref.transport}:${ref.path}`;
    this.#files = files;
  }

  /** Open the layout named by a parsed reference and check its `oci-layout` marker. */
  static open(ref: LayoutReference): OciLayout {
    let files: LayoutFiles;
    const src = `${ref.transport}:${ref.path}`;
    try {
      files = ref.transport === "oci" ? new DirFiles(ref.path) : new ArchiveFiles(ref.path, src);
    } catch (e) {
      if (e instanceof ErrnoError) {
        throw new InvalidSourceError(src, `cannot open "${ref.path}": ${e.code}`, { cause: e });
      }
      throw e;
    }
    const layout = new OciLayout(ref, files);
    try {
      const marker = layout.#readFile("oci-layout", MAX_MANIFEST_SIZE);
      if (marker === null) {
        throw new InvalidSourceError(src, "not an OCI layout (no oci-layout file)");
      }
      let v: unknown;
      try {
        v = JSON.parse(new TextDecoder().decode(marker));
      } catch (e) {
        throw new InvalidSourceError(src, "oci-layout is not valid JSON", { cause: e });
      }
      const ver = (v as { imageLayoutVersion?: unknown })?.imageLayoutVersion;
      if (typeof ver !== "string" || !ver.startsWith("1.")) {
        throw new InvalidSourceError(src, `unsupported imageLayoutVersion ${JSON.stringify(ver)}`);
      }
    } catch (e) {
      layout[Symbol.dispose]();
      throw e;
    }
    return layout;
  }

  #readFile(path: string, max: number): Uint8Array | null {
    using f = this.#files.open(path);
    if (f === null) return null;
    if (f.size > max) {
      throw new InvalidSourceError(this.description, `"${path}" is larger than ${max} bytes`);
    }
    return readWhole(f);
  }

  #openBlob(digest: string): RangeFile {
    const { algorithm, hex } = parseDigest(digest);
    const f = this.#files.open(`blobs/${algorithm}/${hex}`);
    if (f === null) throw new BlobNotFoundError(digest, this.description);
    return f;
  }

  /** The raw `index.json` bytes and their parse. */
  readIndex(): { bytes: Uint8Array; manifests: Descriptor[] } {
    const bytes = this.#readFile("index.json", MAX_MANIFEST_SIZE);
    if (bytes === null) {
      throw new InvalidSourceError(this.description, "not an OCI layout (no index.json)");
    }
    return { bytes, manifests: parseIndex(bytes, "index.json").manifests };
  }

  /**
   * Read a whole small blob (index, manifest, config) and verify its size against the
   * descriptor and its sha256 against the digest.
   */
  readBlob(desc: Descriptor, kind: BlobKind, max: number): Uint8Array {
    using f = this.#openBlob(desc.digest);
    if (f.size !== desc.size) {
      throw new BlobSizeMismatchError(kind, desc.digest, desc.size, f.size);
    }
    if (f.size > max) {
      throw new InvalidOciDocumentError(kind, desc.digest, `larger than ${max} bytes`);
    }
    const buf = readWhole(f);
    if (buf.length !== desc.size) {
      throw new BlobSizeMismatchError(kind, desc.digest, desc.size, buf.length);
    }
    using h = new DigestHasher();
    h.update(buf);
    const actual = h.digest();
    if (actual !== desc.digest) throw new BlobDigestMismatchError(kind, desc.digest, actual);
    return buf;
  }

  /** sha256 of a blob's whole content (to find the root cause when decoding it failed). */
  blobDigest(digest: string): string {
    using f = this.#openBlob(digest);
    using h = new DigestHasher();
    const buf = new Uint8Array(Math.min(READ_CHUNK, Math.max(f.size, 1)));
    let pos = 0;
    for (;;) {
      const n = f.read(buf, pos);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      pos += n;
    }
    return h.digest();
  }

  /**
   * Stream a blob (a layer) in bounded chunks. The size is checked before reading; the
   * sha256 is checked when the stream ends, and a mismatch errors the stream (the consumer
   * sees the error before it can commit anything). `onRead` reports progress in bytes.
   */
  streamBlob(
    desc: Descriptor,
    kind: BlobKind,
    onRead?: (bytes: number) => void,
  ): ReadableStream<Uint8Array> {
    const f = this.#openBlob(desc.digest);
    if (f.size !== desc.size) {
      f[Symbol.dispose]();
      throw new BlobSizeMismatchError(kind, desc.digest, desc.size, f.size);
    }
    const hasher = new DigestHasher();
    let pos = 0;
    const done = () => {
      f[Symbol.dispose]();
      hasher[Symbol.dispose]();
    };
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        try {
          if (pos >= desc.size) {
            const actual = hasher.digest();
            done();
            if (actual !== desc.digest) {
              controller.error(new BlobDigestMismatchError(kind, desc.digest, actual));
            } else controller.close();
            return;
          }
          const buf = new Uint8Array(Math.min(READ_CHUNK, desc.size - pos));
          const n = f.read(buf, pos);
          if (n === 0) {
            done();
            controller.error(new BlobSizeMismatchError(kind, desc.digest, desc.size, pos));
            return;
          }
          const chunk = n === buf.length ? buf : buf.subarray(0, n);
          hasher.update(chunk);
          pos += n;
          onRead?.(n);
          controller.enqueue(chunk);
        } catch (e) {
          done();
          controller.error(e);
        }
      },
      cancel() {
        done();
      },
    }, { highWaterMark: 1 });
  }

  /**
   * Choose the image manifest: `@DIGEST` names it directly; a tag filters `index.json` by
   * the ref-name annotation; nested indexes are descended; among manifests the one for
   * `platform` (default: the running platform) wins. Descriptors without `platform` (umoci
   * and skopeo write none) are matched by reading their config.
   */
  selectManifest(platform: Platform = hostPlatform()): SelectedManifest {
    const ref = this.reference;
    const index = this.readIndex();
    let candidates: Descriptor[];
    if (ref.digest !== undefined) {
      const found = findDescriptor(index.manifests, ref.digest);
      if (found) candidates = [found];
      else {
        // Not listed in index.json (e.g. a child of a nested index): trust the blob's size.
        using f = this.#files.open(`blobs/sha256/${ref.digest.slice(7)}`);
        if (f === null) {
          throw new ImageNotFoundError(`@${ref.digest}`, this.description);
        }
        candidates = [{ mediaType: OCI_MANIFEST, digest: ref.digest, size: f.size }];
      }
    } else if (ref.tag !== undefined) {
      candidates = index.manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] === ref.tag);
      if (candidates.length === 0) throw new ImageNotFoundError(ref.tag, this.description);
    } else {
      candidates = index.manifests;
      if (candidates.length === 0) {
        throw new ImageNotFoundError("(any)", this.description + " (empty index)");
      }
    }
    const seen: string[] = [];
    const found = this.#choose(candidates, platform, 0, seen);
    if (!found) throw new NoMatchingPlatformError(formatPlatform(platform), [...new Set(seen)]);
    return found;
  }

  #choose(
    candidates: Descriptor[],
    platform: Platform,
    depth: number,
    seen: string[],
  ): SelectedManifest | undefined {
    if (depth > MAX_INDEX_DEPTH) {
      throw new InvalidSourceError(this.description, "image indexes nested too deeply");
    }
    for (const d of candidates) {
      if (d.platform) {
        seen.push(formatPlatform(d.platform));
        if (!platformMatches(platform, d.platform)) continue;
      }
      const kind: BlobKind = isIndexMediaType(d.mediaType) ? "index" : "manifest";
      const bytes = this.readBlob(d, kind, MAX_MANIFEST_SIZE);
      const doc = parseIndexOrManifest(bytes, d.digest, d.mediaType);
      if (doc.type === "index") {
        const r = this.#choose(doc.index.manifests, platform, depth + 1, seen);
        if (r) return r;
        continue;
      }
      if (!d.platform) {
        // No platform in the descriptor: the config says what it is.
        const cfgBytes = this.readBlob(doc.manifest.config, "config", MAX_CONFIG_SIZE);
        const cfg = parseConfigPlatform(cfgBytes, doc.manifest.config.digest);
        if (cfg) {
          seen.push(formatPlatform(cfg));
          if (!platformMatches(platform, cfg)) continue;
        }
      }
      return { descriptor: d, bytes, manifest: doc.manifest };
    }
    return undefined;
  }

  /** Close the layout's fds. */
  [Symbol.dispose](): void {
    this.#files[Symbol.dispose]();
  }
}

/** The platform a config describes, or undefined for artifacts without os/architecture. */
function parseConfigPlatform(bytes: Uint8Array, digest: string): Platform | undefined {
  let c;
  try {
    c = parseConfig(bytes, digest);
  } catch (e) {
    if (e instanceof InvalidOciDocumentError) return undefined; // an artifact config
    throw e;
  }
  if (!c.os || !c.architecture) return undefined;
  const p: Platform = { os: c.os, architecture: c.architecture };
  if (c.variant) p.variant = c.variant;
  return p;
}

function findDescriptor(list: Descriptor[], digest: string): Descriptor | undefined {
  return list.find((d) => d.digest === digest);
}

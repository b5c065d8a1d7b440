/**
 * Tar entries of a layer splitstream (erofs-format §3.1): the inverse of the tar → splitstream
 * split. Headers, extension headers, small file contents and padding are inline chunks; the
 * content of a regular file larger than 64 bytes is one external chunk (an object digest).
 *
 * Pure: it walks decoded splitstream chunks and yields one {@link LayerEntry} per tar member,
 * with PAX (`path`, `linkpath`, `size`, `uid`, `gid`, `mtime`, `SCHILY.xattr.*`) and GNU long
 * names applied. Global PAX headers are skipped, as composefs-rs does.
 *
 * @module
 */

import {
  bytesToByteString,
  type ByteString,
  type LeafContent,
  makeStat,
  type Stat,
  utf8ToByteString,
} from "../erofs/tree.ts";
import { INLINE_CONTENT_MAX } from "../erofs/format.ts";
import type { SplitstreamChunk } from "../repository/splitstream.ts";
import {
  isZeroBlock,
  parsePaxRecords,
  parseTarHeader,
  parseTarNumber,
  TAR_BLOCK_SIZE,
  tarContentSize,
  type TarHeader,
  TarHeaderError,
  tarPaddedSize,
  TarType,
} from "../tar/tar_header.ts";

/** Largest extension body (PAX or GNU long name) accepted: 1 MiB, as tar-core's default. */
const MAX_EXTENSION_BYTES = 1024 * 1024;

/** What a tar member becomes in the merged tree. */
export type LayerItem =
  | { kind: "dir" }
  | { kind: "leaf"; content: LeafContent }
  /** A hardlink to `target`, an absolute normalized path (components joined by `/`). */
  | { kind: "hardlink"; target: ByteString[] };

/** One tar member of a layer. */
export interface LayerEntry {
  /** Normalized path components (empty for the root directory). */
  path: ByteString[];
  /** Metadata from the header and PAX records (mode keeps only the permission bits). */
  stat: Stat;
  /** Kind and content. */
  item: LayerItem;
}

/** A layer splitstream that does not describe a tar archive composefs can use. */
export class LayerEntryError extends Error {
  override name = "LayerEntryError";
  /** What is wrong. */
  readonly reason: string;
  /** The entry's path as given in the tar, when known. */
  readonly entryPath: string | undefined;
  constructor(reason: string, entryPath?: string, options?: ErrorOptions) {
    super(
      entryPath === undefined
        ? `Invalid layer: ${reason}`
        : `Invalid layer entry "${entryPath}": ${reason}`,
      options,
    );
    this.reason = reason;
    this.entryPath = entryPath;
  }
}

/** Sequential reader over splitstream chunks: inline bytes, or an external object. */
class ChunkCursor {
  #it: Iterator<SplitstreamChunk>;
  #buf: Uint8Array = new Uint8Array(0);
  #pos = 0;
  #pendingExternal: Uint8Array | null = null;
  #done = false;

  constructor(chunks: Iterable<SplitstreamChunk>) {
    this.#it = chunks[Symbol.iterator]();
  }

  /** Pull the next chunk into the buffer (or the pending external slot). */
  #fill(): boolean {
    if (this.#pendingExternal !== null || this.#done) return false;
    for (;;) {
      const n = this.#it.next();
      if (n.done) {
        this.#done = true;
        return false;
      }
      const c = n.value;
      if ("external" in c) {
        this.#pendingExternal = c.external;
        return false;
      }
      if (c.inline.length === 0) continue;
      const rest = this.#buf.length - this.#pos;
      if (rest === 0) this.#buf = c.inline;
      else {
        const joined = new Uint8Array(rest + c.inline.length);
        joined.set(this.#buf.subarray(this.#pos));
        joined.set(c.inline, rest);
        this.#buf = joined;
      }
      this.#pos = 0;
      return true;
    }
  }

  /** Exactly `n` inline bytes; with `eofOk`, null at a clean end of stream (nothing left). */
  readInline(n: number, what: string, eofOk = false): Uint8Array | null {
    while (this.#buf.length - this.#pos < n) {
      if (!this.#fill()) {
        const have = this.#buf.length - this.#pos;
        if (eofOk && have === 0 && this.#pendingExternal === null) return null;
        if (this.#pendingExternal !== null) {
          throw new LayerEntryError(`an external object where inline ${what} was expected`);
        }
        throw new LayerEntryError(`stream ends inside ${what} (${have} of ${n} bytes)`);
      }
    }
    const out = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }

  /** The next chunk must be an external object (nothing inline buffered). */
  readExternal(): Uint8Array | null {
    if (this.#buf.length - this.#pos > 0) return null;
    if (this.#pendingExternal === null) this.#fill();
    const id = this.#pendingExternal;
    this.#pendingExternal = null;
    return id;
  }
}

function pathText(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}

/**
 * Normalize a tar path the way composefs-rs does: strip a leading `/`, drop empty and `.`
 * components; `..` is refused. Returns byte-string components (empty = the root).
 */
export function normalizeTarPath(raw: Uint8Array): ByteString[] {
  const s = bytesToByteString(raw);
  const out: ByteString[] = [];
  for (const c of s.split("/")) {
    if (c === "" || c === ".") continue;
    if (c === "..") throw new LayerEntryError(`path contains ".."`, pathText(raw));
    out.push(c);
  }
  return out;
}

/** PAX `mtime` fraction → nanoseconds: truncated or right-padded to 9 digits; 0 if unparsable. */
export function paxMtimeNsec(value: string): number {
  const dot = value.indexOf(".");
  if (dot < 0) return 0;
  const frac = value.slice(dot + 1);
  if (!/^[0-9]+$/.test(frac)) return 0;
  return Number(frac.length >= 9 ? frac.slice(0, 9) : frac.padEnd(9, "0"));
}

function paxInt(v: Uint8Array | undefined, what: string, entry: string): number | undefined {
  if (v === undefined) return undefined;
  const s = new TextDecoder().decode(v);
  const m = /^(-?[0-9]+)(\.[0-9]*)?$/.exec(s);
  if (!m || !Number.isSafeInteger(Number(m[1]))) {
    throw new LayerEntryError(`PAX ${what} "${s}" is not a number`, entry);
  }
  return Number(m[1]);
}

/** glibc `makedev`. */
export function makedev(major: number, minor: number): number {
  // The result can exceed 2^32; composefs stores rdev in 32 bits, real devices fit.
  return Number(
    ((BigInt(major) & 0xfffff000n) << 32n) | ((BigInt(major) & 0xfffn) << 8n) |
      ((BigInt(minor) & 0xffffff00n) << 12n) | (BigInt(minor) & 0xffn),
  );
}

const SCHILY_XATTR = "SCHILY.xattr.";

function isExtension(h: TarHeader): boolean {
  // Like tar-core: L/K/x/g are extensions only with a ustar or GNU magic.
  return h.format !== "v7" &&
    (h.typeflag === TarType.PAX_LOCAL || h.typeflag === TarType.PAX_GLOBAL ||
      h.typeflag === TarType.GNU_LONGNAME || h.typeflag === TarType.GNU_LONGLINK);
}

function cstring(b: Uint8Array): Uint8Array {
  const z = b.indexOf(0);
  return z < 0 ? b : b.subarray(0, z);
}

/**
 * Iterate the tar members of a layer splitstream. Stops at the end-of-archive marker (two
 * zero blocks) or at a clean end of stream; whatever follows the marker is ignored.
 *
 * @throws {LayerEntryError} an external chunk where inline data belongs or the reverse, a
 *   sparse or unsupported entry type, `..` in a path, a truncated stream.
 * @throws {TarHeaderError} a malformed header.
 */
export function* layerEntries(chunks: Iterable<SplitstreamChunk>): Generator<LayerEntry> {
  const cur = new ChunkCursor(chunks);
  let pax = new Map<string, Uint8Array>();
  let longName: Uint8Array | undefined;
  let longLink: Uint8Array | undefined;
  for (;;) {
    let block = cur.readInline(TAR_BLOCK_SIZE, "a tar header", true);
    if (block === null) return;
    if (isZeroBlock(block)) {
      // One stray zero block is skipped; two in a row end the archive.
      block = cur.readInline(TAR_BLOCK_SIZE, "a tar header", true);
      if (block === null || isZeroBlock(block)) return;
    }
    const h = parseTarHeader(block)!;
    if (isExtension(h)) {
      if (h.size > MAX_EXTENSION_BYTES) {
        throw new LayerEntryError(`extension header of ${h.size} bytes`);
      }
      const body = cur.readInline(tarPaddedSize(h.size), "an extension header")!
        .subarray(0, h.size);
      if (h.typeflag === TarType.PAX_LOCAL) {
        for (const [k, v] of parsePaxRecords(body)) pax.set(k, v);
      } else if (h.typeflag === TarType.GNU_LONGNAME) longName = cstring(body).slice();
      else if (h.typeflag === TarType.GNU_LONGLINK) longLink = cstring(body).slice();
      // PAX global headers ('g') are skipped (composefs-rs oci/tar.rs).
      continue;
    }
    const rawPath = pax.get("path") ?? longName ?? h.name;
    const name = pathText(rawPath);
    const rawLink = pax.get("linkpath") ?? longLink ?? h.linkname;
    const size = paxInt(pax.get("size"), "size", name) ?? h.size;
    let sparse = h.typeflag === TarType.GNU_SPARSE;
    const xattrs = new Map<ByteString, Uint8Array>();
    for (const [k, v] of pax) {
      if (k.startsWith("GNU.sparse.")) sparse = true;
      else if (k.startsWith(SCHILY_XATTR)) {
        xattrs.set(utf8ToByteString(k.slice(SCHILY_XATTR.length)), v);
      }
    }
    const mtimeRec = pax.get("mtime");
    const stat = makeStat({
      mode: h.mode & 0o7777,
      uid: (paxInt(pax.get("uid"), "uid", name) ?? h.uid) >>> 0,
      gid: (paxInt(pax.get("gid"), "gid", name) ?? h.gid) >>> 0,
      mtimeSec: paxInt(mtimeRec, "mtime", name) ?? h.mtime,
      mtimeNsec: mtimeRec === undefined ? 0 : paxMtimeNsec(new TextDecoder().decode(mtimeRec)),
      xattrs,
    });
    pax = new Map();
    longName = undefined;
    longLink = undefined;
    if (sparse) throw new LayerEntryError("sparse tar entries are not supported", name);

    const contentSize = tarContentSize(h.typeflag, size);
    const isRegular = h.typeflag === TarType.REGULAR || h.typeflag === TarType.REGULAR_OLD ||
      h.typeflag === TarType.CONTIGUOUS;
    let item: LayerItem;
    if (isRegular && contentSize > INLINE_CONTENT_MAX) {
      const id = cur.readExternal();
      if (id === null) {
        throw new LayerEntryError(`a ${size}-byte file is stored inline`, name);
      }
      const pad = tarPaddedSize(size) - size;
      if (pad > 0) cur.readInline(pad, "tar padding");
      item = {
        kind: "leaf",
        content: { kind: "regular", content: { kind: "external", digest: id, size } },
      };
    } else {
      const data = contentSize === 0
        ? new Uint8Array(0)
        : cur.readInline(tarPaddedSize(contentSize), `the content of "${name}"`)!
          .subarray(0, contentSize).slice();
      const dev = () => {
        if (h.format === "v7") {
          throw new LayerEntryError("device entry without device numbers", name);
        }
        return makedev(
          parseTarNumber(block!.subarray(329, 337), "devmajor"),
          parseTarNumber(block!.subarray(337, 345), "devminor"),
        );
      };
      switch (h.typeflag) {
        case TarType.REGULAR:
        case TarType.REGULAR_OLD:
        case TarType.CONTIGUOUS:
          item = { kind: "leaf", content: { kind: "regular", content: { kind: "inline", data } } };
          break;
        case TarType.DIRECTORY:
          item = { kind: "dir" };
          break;
        case TarType.SYMLINK:
          item = { kind: "leaf", content: { kind: "symlink", target: bytesToByteString(rawLink) } };
          break;
        case TarType.HARDLINK:
          item = { kind: "hardlink", target: normalizeTarPath(rawLink) };
          break;
        case TarType.CHAR:
          item = { kind: "leaf", content: { kind: "chr", rdev: dev() } };
          break;
        case TarType.BLOCK:
          item = { kind: "leaf", content: { kind: "blk", rdev: dev() } };
          break;
        case TarType.FIFO:
          item = { kind: "leaf", content: { kind: "fifo" } };
          break;
        default:
          throw new LayerEntryError(
            `unsupported entry type ${JSON.stringify(h.typeflag)}`,
            name,
          );
      }
    }
    yield { path: normalizeTarPath(rawPath), stat, item };
  }
}

export { TarHeaderError };

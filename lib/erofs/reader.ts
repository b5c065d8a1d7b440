/**
 * EROFS reader for composefs images: parses untrusted bytes into a {@link Directory} tree and
 * undoes composefs's encoding (metacopy/redirect → external files, escaped `trusted.overlay.*`
 * names, escaped whiteouts, the root's whiteout stubs and `opaque=y`). For an image our writer
 * produced, `writeErofs(readErofs(img).root, {version})` gives back the same bytes (V2 images
 * carry no nanoseconds, so those stay 0). Every malformed input raises {@link ErofsFormatError}.
 *
 * @module
 */

import * as F from "./format.ts";
import {
  bytesToByteString,
  type ByteString,
  Directory,
  type Inode,
  Leaf,
  type LeafContent,
  type Stat,
} from "./tree.ts";

/** The bytes are not a well-formed composefs EROFS image. */
export class ErofsFormatError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "ErofsFormatError";
  /** Byte offset where the problem was found, when known. */
  readonly offset: number | undefined;
  /** Build the error; `options.cause` keeps the underlying error. */
  constructor(message: string, offset?: number, options?: ErrorOptions) {
    super(message, options);
    this.offset = offset;
  }
}

/** One inode as stored (before composefs decoding). */
export interface RawInode {
  /** Node id (byte offset / 32 from the metadata start). */
  nid: number;
  /** Byte offset of the inode header. */
  offset: number;
  /** True for the 64-byte layout. */
  extended: boolean;
  /** Data layout (0 flat plain, 2 flat inline, 4 chunk based). */
  layout: number;
  /** Full st_mode, file type included. */
  mode: number;
  /** Link count stored in the inode. */
  nlink: number;
  /** i_size. */
  size: number;
  /** The `i_u` union (block address, rdev or chunk format). */
  iu: number;
  /** i_ino. */
  ino: number;
  /** Owner. */
  uid: number;
  /** Group. */
  gid: number;
  /** mtime seconds (compact inodes: the superblock build time). */
  mtimeSec: number;
  /** mtime nanoseconds. */
  mtimeNsec: number;
  /** Xattrs as stored (full names). */
  xattrs: Map<ByteString, Uint8Array>;
  /** Byte offset where the inline tail starts. */
  inlineOffset: number;
}

/** What {@link readErofs} returns. */
export interface ErofsImage {
  /** The composefs header's `composefs_version` (0, 1 or 2). */
  composefsVersion: number;
  /** The composefs header flags. */
  flags: number;
  /** Number of inodes the superblock declares (V0/V1 count the 256 stubs). */
  inodeCount: number;
  /** Superblock build time (seconds, nanoseconds). */
  buildTime: [number, number];
  /** The decoded tree. */
  root: Directory;
}

const EPOCH2_VERSION = 2;
/** Deepest directory nesting accepted (PATH_MAX / 2: a path needs "/x" per level). */
const MAX_DEPTH = F.PATH_MAX / 2;

class Reader {
  readonly dv: DataView;
  readonly xattrStart: number;
  readonly buildSec: number;
  readonly buildNsec: number;
  readonly metaStart: number;
  constructor(readonly b: Uint8Array) {
    this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    if (b.length < F.SUPERBLOCK_OFFSET + F.SUPERBLOCK_SIZE) {
      throw new ErofsFormatError(`Image of ${b.length} bytes is too short`, 0);
    }
    if (this.u32(0) !== F.COMPOSEFS_MAGIC) {
      throw new ErofsFormatError("Bad composefs header magic", 0);
    }
    const sb = F.SUPERBLOCK_OFFSET;
    if (this.u32(sb) !== F.EROFS_MAGIC) {
      throw new ErofsFormatError("Bad EROFS superblock magic", sb);
    }
    if (this.b[sb + 12] !== F.BLOCK_BITS) {
      throw new ErofsFormatError(`Unsupported block size bits "${this.b[sb + 12]}"`, sb + 12);
    }
    if (this.u32(sb + 80) !== 0) {
      throw new ErofsFormatError(
        `Unsupported incompatible features "0x${this.u32(sb + 80).toString(16)}"`,
        sb + 80,
      );
    }
    this.buildSec = this.u64(sb + 24);
    this.buildNsec = this.u32(sb + 32);
    this.metaStart = this.u32(sb + 40) * F.BLOCK_SIZE;
    this.xattrStart = this.u32(sb + 44) * F.BLOCK_SIZE;
  }

  need(off: number, len: number): void {
    if (!(off >= 0 && len >= 0 && off + len <= this.b.length)) {
      throw new ErofsFormatError(
        `Read of ${len} bytes at ${off} is outside the ${this.b.length}-byte image`,
        off,
      );
    }
  }
  u8(o: number) {
    this.need(o, 1);
    return this.b[o];
  }
  u16(o: number) {
    this.need(o, 2);
    return this.dv.getUint16(o, true);
  }
  u32(o: number) {
    this.need(o, 4);
    return this.dv.getUint32(o, true);
  }
  u64(o: number) {
    this.need(o, 8);
    const v = this.dv.getBigUint64(o, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
      // Signed interpretation (mtime before 1970), else too large to represent.
      const s = BigInt.asIntN(64, v);
      if (s < 0n && s >= BigInt(Number.MIN_SAFE_INTEGER)) return Number(s);
      throw new ErofsFormatError(`64-bit value "${v}" is too large`, o);
    }
    return Number(v);
  }
  bytes(o: number, n: number): Uint8Array {
    this.need(o, n);
    return this.b.subarray(o, o + n);
  }

  xattrEntry(o: number): [ByteString, Uint8Array, number] {
    const nameLen = this.u8(o);
    const index = this.u8(o + 1);
    const valueLen = this.u16(o + 2);
    if (index >= F.XATTR_PREFIXES.length) {
      throw new ErofsFormatError(`Unknown xattr prefix index "${index}"`, o + 1);
    }
    const name = F.XATTR_PREFIXES[index] + bytesToByteString(this.bytes(o + 4, nameLen));
    const value = this.bytes(o + 4 + nameLen, valueLen).slice();
    const len = Math.ceil((4 + nameLen + valueLen) / 4) * 4;
    return [name, value, len];
  }

  inode(nid: number): RawInode {
    const off = this.metaStart + nid * F.INODE_SLOT_SIZE;
    const format = this.u16(off);
    const extended = (format & 1) === 1;
    const layout = (format >> 1) & 7;
    if (
      layout !== F.LAYOUT_FLAT_PLAIN && layout !== F.LAYOUT_FLAT_INLINE &&
      layout !== F.LAYOUT_CHUNK_BASED
    ) {
      throw new ErofsFormatError(`Unsupported data layout "${layout}" of nid ${nid}`, off);
    }
    if (format >> 4 !== 0) throw new ErofsFormatError(`Unknown i_format bits in nid ${nid}`, off);
    const icount = this.u16(off + 2);
    const mode = this.u16(off + 4);
    let r: Omit<RawInode, "xattrs" | "inlineOffset">;
    let hsize: number;
    if (extended) {
      hsize = F.EXTENDED_INODE_SIZE;
      r = {
        nid,
        offset: off,
        extended,
        layout,
        mode,
        size: this.u64(off + 8),
        iu: this.u32(off + 16),
        ino: this.u32(off + 20),
        uid: this.u32(off + 24),
        gid: this.u32(off + 28),
        mtimeSec: this.u64(off + 32),
        mtimeNsec: this.u32(off + 40),
        nlink: this.u32(off + 44),
      };
    } else {
      hsize = F.COMPACT_INODE_SIZE;
      r = {
        nid,
        offset: off,
        extended,
        layout,
        mode,
        nlink: this.u16(off + 6),
        size: this.u32(off + 8),
        iu: this.u32(off + 16),
        ino: this.u32(off + 20),
        uid: this.u16(off + 24),
        gid: this.u16(off + 26),
        mtimeSec: this.buildSec,
        mtimeNsec: this.buildNsec,
      };
    }
    if (r.mtimeNsec >= 1e9) {
      throw new ErofsFormatError(`Inode ${nid} has mtime nanoseconds "${r.mtimeNsec}"`, off);
    }
    const xattrs = new Map<ByteString, Uint8Array>();
    let xsize = 0;
    if (icount > 0) {
      xsize = F.XATTR_BODY_HEADER_SIZE + (icount - 1) * 4;
      const body = off + hsize;
      this.need(body, xsize);
      const shared = this.u8(body + 4);
      if (F.XATTR_BODY_HEADER_SIZE + shared * 4 > xsize) {
        throw new ErofsFormatError(
          `Inode ${nid} has ${shared} shared xattrs in ${xsize} bytes`,
          body,
        );
      }
      for (let i = 0; i < shared; i++) {
        const ref = this.u32(body + F.XATTR_BODY_HEADER_SIZE + i * 4);
        const [name, value] = this.xattrEntry(this.xattrStart + ref * 4);
        xattrs.set(name, value);
      }
      let p = body + F.XATTR_BODY_HEADER_SIZE + shared * 4;
      const end = body + xsize;
      while (p < end) {
        const [name, value, len] = this.xattrEntry(p);
        if (p + len > end) throw new ErofsFormatError(`Xattr entry overruns inode ${nid}`, p);
        xattrs.set(name, value);
        p += len;
      }
    }
    return { ...r, xattrs, inlineOffset: off + hsize + xsize };
  }

  /** The data of a flat inode: full blocks at i_u, then (FLAT_INLINE) the tail after the inode. */
  flatData(ino: RawInode): Uint8Array {
    const size = ino.size;
    if (size > this.b.length) {
      throw new ErofsFormatError(`Inode ${ino.nid} size "${size}" exceeds the image`, ino.offset);
    }
    if (ino.layout === F.LAYOUT_FLAT_PLAIN) {
      if (size === 0) return new Uint8Array(0);
      return this.bytes(ino.iu * F.BLOCK_SIZE, size);
    }
    if (ino.layout !== F.LAYOUT_FLAT_INLINE) {
      throw new ErofsFormatError(`Inode ${ino.nid} is not a flat inode`, ino.offset);
    }
    const tail = size % F.BLOCK_SIZE;
    const full = size - tail;
    const out = new Uint8Array(size);
    if (full > 0) out.set(this.bytes(ino.iu * F.BLOCK_SIZE, full));
    out.set(this.bytes(ino.inlineOffset, tail), full);
    return out;
  }

  dirents(ino: RawInode): [ByteString, number, number][] {
    const data = this.flatData(ino);
    const out: [ByteString, number, number][] = [];
    for (let start = 0; start < data.length; start += F.BLOCK_SIZE) {
      const blk = data.subarray(start, Math.min(start + F.BLOCK_SIZE, data.length));
      const dv = new DataView(blk.buffer, blk.byteOffset, blk.byteLength);
      if (blk.length < F.DIRENT_SIZE) {
        throw new ErofsFormatError(`Directory nid ${ino.nid} has a truncated block`, ino.offset);
      }
      const first = dv.getUint16(8, true);
      if (first % F.DIRENT_SIZE !== 0 || first === 0 || first > blk.length) {
        throw new ErofsFormatError(
          `Directory nid ${ino.nid} has a bad first name offset`,
          ino.offset,
        );
      }
      const n = first / F.DIRENT_SIZE;
      for (let i = 0; i < n; i++) {
        const nidBig = dv.getBigUint64(i * F.DIRENT_SIZE, true);
        const nameoff = dv.getUint16(i * F.DIRENT_SIZE + 8, true);
        const ftype = blk[i * F.DIRENT_SIZE + 10];
        let nameEnd = i + 1 < n ? dv.getUint16((i + 1) * F.DIRENT_SIZE + 8, true) : blk.length;
        if (i + 1 === n) {
          // The last name runs to the first NUL (block padding) or the end.
          const z = blk.subarray(nameoff, nameEnd).indexOf(0);
          if (z >= 0) nameEnd = nameoff + z;
        }
        if (nameoff < first || nameEnd > blk.length || nameEnd <= nameoff) {
          throw new ErofsFormatError(`Directory nid ${ino.nid} has a bad name offset`, ino.offset);
        }
        if (nidBig > 0xffffffffn) throw new ErofsFormatError(`Dirent nid too large in ${ino.nid}`);
        out.push([bytesToByteString(blk.subarray(nameoff, nameEnd)), Number(nidBig), ftype]);
      }
    }
    return out;
  }
}

function fileTypeOfMode(mode: number): number {
  switch (mode & F.S_IFMT) {
    case F.S_IFREG:
      return F.FT_REG;
    case F.S_IFDIR:
      return F.FT_DIR;
    case F.S_IFCHR:
      return F.FT_CHR;
    case F.S_IFBLK:
      return F.FT_BLK;
    case F.S_IFIFO:
      return F.FT_FIFO;
    case F.S_IFSOCK:
      return F.FT_SOCK;
    case F.S_IFLNK:
      return F.FT_LNK;
    default:
      return 0;
  }
}

function isValue(v: Uint8Array | undefined, s: string): boolean {
  return v !== undefined && v.length === s.length && bytesToByteString(v) === s;
}

function parseRedirect(v: Uint8Array, at: number): Uint8Array {
  const m = /^\/([0-9a-f]{2})\/([0-9a-f]{62}|[0-9a-f]{126})$/.exec(bytesToByteString(v));
  if (!m) throw new ErofsFormatError("Bad trusted.overlay.redirect value", at);
  return Uint8Array.fromHex(m[1] + m[2]);
}

/** Options of {@link readErofs}. */
export interface ReadErofsOptions {
  /** Also check what fsck checks (link counts, `.`/`..`, dirent order and types). */
  strict?: boolean;
}

/** Parse a composefs EROFS image into its tree. */
export function readErofs(bytes: Uint8Array, options: ReadErofsOptions = {}): ErofsImage {
  const problems: string[] = [];
  const img = decode(bytes, options.strict ? problems : null);
  if (problems.length > 0) throw new ErofsFormatError(problems[0]);
  return img;
}

/**
 * Check an image: parse everything and verify the invariants a kernel relies on. Returns the
 * problems found (empty when the image is sound).
 */
export function fsckErofs(bytes: Uint8Array): string[] {
  const problems: string[] = [];
  try {
    decode(bytes, problems);
  } catch (e) {
    if (e instanceof ErofsFormatError) problems.push(e.message);
    else throw e;
  }
  if (problems.length === 0 && bytes.length % F.BLOCK_SIZE !== 0) {
    problems.push(`Image length ${bytes.length} is not a multiple of ${F.BLOCK_SIZE}`);
  }
  return problems;
}

function decode(bytes: Uint8Array, problems: string[] | null): ErofsImage {
  const r = new Reader(bytes);
  const composefsVersion = r.u32(12);
  const flags = r.u32(8);
  const epoch1 = composefsVersion !== EPOCH2_VERSION;
  const sb = F.SUPERBLOCK_OFFSET;
  const inodeCount = r.u64(sb + 16);
  if (problems && r.u32(sb + 36) * F.BLOCK_SIZE !== bytes.length) {
    problems.push(`Superblock declares ${r.u32(sb + 36)} blocks, image has ${bytes.length} bytes`);
  }
  const rootNid = r.u16(sb + 14);
  const leaves = new Map<number, Leaf>();
  const dirs = new Set<number>();
  const refCount = new Map<number, number>();
  const storedNlink = new Map<number, number>();

  const makeStat = (ino: RawInode): Stat => ({
    mode: ino.mode & 0o7777,
    uid: ino.uid,
    gid: ino.gid,
    mtimeSec: ino.mtimeSec,
    mtimeNsec: ino.mtimeNsec,
    xattrs: ino.xattrs,
  });

  const rootRaw = r.inode(rootNid);
  if ((rootRaw.mode & F.S_IFMT) !== F.S_IFDIR) {
    throw new ErofsFormatError("Root inode is not a directory", rootRaw.offset);
  }
  const root = new Directory(makeStat(rootRaw));
  // Iterative walk: [raw inode, directory object, parent nid, depth].
  const stack: [RawInode, Directory, number, number][] = [[rootRaw, root, rootNid, 0]];
  dirs.add(rootNid);
  const escapedParents: Directory[] = [];
  while (stack.length > 0) {
    const [raw, dir, parentNid, depth] = stack.pop()!;
    if (depth > MAX_DEPTH) throw new ErofsFormatError("Directory tree is too deep", raw.offset);
    const ents = r.dirents(raw);
    let subdirs = 0;
    let sawDot = false;
    let sawDotDot = false;
    let prev: string | null = null;
    let hasEscapedWhiteout = false;
    for (const [name, nid, ftype] of ents) {
      if (problems && prev !== null && !(prev < name)) {
        problems.push(`Directory nid ${raw.nid}: entries not sorted at "${name}"`);
      }
      prev = name;
      if (name === ".") {
        sawDot = true;
        if (nid !== raw.nid) throw new ErofsFormatError(`"." of nid ${raw.nid} points elsewhere`);
        subdirs++;
        continue;
      }
      if (name === "..") {
        sawDotDot = true;
        if (nid !== parentNid) {
          throw new ErofsFormatError(`".." of nid ${raw.nid} points elsewhere`);
        }
        subdirs++;
        continue;
      }
      if (name.length === 0 || name.includes("/") || name.includes("\0")) {
        throw new ErofsFormatError(`Invalid file name in directory nid ${raw.nid}`, raw.offset);
      }
      const child = r.inode(nid);
      const ft = fileTypeOfMode(child.mode);
      if (ft === 0) throw new ErofsFormatError(`Inode ${nid} has unknown file type`, child.offset);
      if (ft !== ftype) {
        throw new ErofsFormatError(`Dirent type ${ftype} of "${name}" does not match inode ${nid}`);
      }
      if (ft === F.FT_DIR) {
        if (dirs.has(nid)) {
          throw new ErofsFormatError(`Directory nid ${nid} is linked twice`, child.offset);
        }
        dirs.add(nid);
        subdirs++;
        const sub = new Directory(makeStat(child));
        dir.entries.set(name, sub);
        stack.push([child, sub, raw.nid, depth + 1]);
        continue;
      }
      refCount.set(nid, (refCount.get(nid) ?? 0) + 1);
      let leaf = leaves.get(nid);
      if (!leaf) {
        storedNlink.set(nid, child.nlink);
        leaf = decodeLeaf(r, child, makeStat(child), epoch1);
        leaves.set(nid, leaf);
      }
      // V0/V1: the 256 root stubs are real chr 0:0 nodes named `00`…`ff`; drop them.
      if (
        epoch1 && dir === root && /^[0-9a-f]{2}$/.test(name) && leaf.content.kind === "chr" &&
        leaf.content.rdev === 0
      ) {
        continue;
      }
      if (epoch1 && isEscapedWhiteout(leaf)) {
        hasEscapedWhiteout = true;
      }
      dir.entries.set(name, leaf);
    }
    if (!sawDot || !sawDotDot) {
      throw new ErofsFormatError(`Directory nid ${raw.nid} lacks "." or ".."`, raw.offset);
    }
    if (problems && raw.nlink !== subdirs) {
      problems.push(`Directory nid ${raw.nid} has nlink ${raw.nlink}, expected ${subdirs}`);
    }
    if (hasEscapedWhiteout) escapedParents.push(dir);
  }
  if (problems) {
    for (const [nid, n] of refCount) {
      if (storedNlink.get(nid) !== n) {
        problems.push(`Inode ${nid} has nlink ${storedNlink.get(nid)}, ${n} entries point at it`);
      }
    }
    const count = leaves.size + dirs.size;
    if (inodeCount !== count) {
      problems.push(`Superblock counts ${inodeCount} inodes, ${count} are reachable`);
    }
  }

  // Undo the composefs encoding of whiteouts and xattrs.
  for (const dir of escapedParents) {
    const x = dir.stat.xattrs;
    x.delete(F.XATTR_OVERLAY_WHITEOUTS);
    x.delete(F.XATTR_USERXATTR_WHITEOUTS);
    // Only V1 adds the opaque markers; in V0 such xattrs are the user's own.
    if (composefsVersion === 1) {
      if (isValue(x.get(F.XATTR_OVERLAY_OPAQUE), "x")) x.delete(F.XATTR_OVERLAY_OPAQUE);
      if (isValue(x.get(F.XATTR_USERXATTR_OPAQUE), "x")) x.delete(F.XATTR_USERXATTR_OPAQUE);
    }
  }
  if (epoch1 && isValue(root.stat.xattrs.get(F.XATTR_OVERLAY_OPAQUE_ROOT), "y")) {
    root.stat.xattrs.delete(F.XATTR_OVERLAY_OPAQUE_ROOT);
  }
  const seen = new Set<Inode>();
  const all: Inode[] = [root];
  while (all.length > 0) {
    const ino = all.pop()!;
    if (seen.has(ino)) continue;
    seen.add(ino);
    if (epoch1 && ino.type === "leaf" && isEscapedWhiteout(ino)) {
      ino.stat.xattrs.delete(F.XATTR_OVERLAY_WHITEOUT);
      ino.stat.xattrs.delete(F.XATTR_USERXATTR_WHITEOUT);
      ino.content = { kind: "chr", rdev: 0 };
    }
    ino.stat.xattrs = unescapeXattrs(ino.stat.xattrs);
    if (ino.type === "dir") { for (const c of ino.entries.values()) all.push(c); }
  }
  return {
    composefsVersion,
    flags,
    inodeCount,
    buildTime: [r.buildSec, r.buildNsec],
    root,
  };
}

function isEscapedWhiteout(leaf: Leaf): boolean {
  const c = leaf.content;
  return c.kind === "regular" && c.content.kind === "inline" && c.content.data.length === 0 &&
    isValue(leaf.stat.xattrs.get(F.XATTR_OVERLAY_WHITEOUT), "") &&
    isValue(leaf.stat.xattrs.get(F.XATTR_USERXATTR_WHITEOUT), "");
}

/** Drop composefs's own `trusted.overlay.*` xattrs and unescape the user's. */
function unescapeXattrs(x: Map<ByteString, Uint8Array>): Map<ByteString, Uint8Array> {
  let touched = false;
  for (const k of x.keys()) if (k.startsWith(F.XATTR_OVERLAY_PREFIX)) touched = true;
  if (!touched) return x;
  const out = new Map<ByteString, Uint8Array>();
  for (const [k, v] of x) {
    if (k.startsWith(F.XATTR_OVERLAY_ESCAPED_PREFIX)) {
      out.set(F.XATTR_OVERLAY_PREFIX + k.slice(F.XATTR_OVERLAY_ESCAPED_PREFIX.length), v);
    } else if (!k.startsWith(F.XATTR_OVERLAY_PREFIX)) out.set(k, v);
  }
  return out;
}

function decodeLeaf(r: Reader, ino: RawInode, stat: Stat, epoch1: boolean): Leaf {
  let content: LeafContent;
  switch (ino.mode & F.S_IFMT) {
    case F.S_IFREG: {
      const metacopy = ino.xattrs.get(F.XATTR_OVERLAY_METACOPY);
      const redirect = ino.xattrs.get(F.XATTR_OVERLAY_REDIRECT);
      if (ino.layout === F.LAYOUT_CHUNK_BASED) {
        checkChunks(r, ino);
        if (metacopy === undefined) {
          throw new ErofsFormatError(
            `Chunk-based file nid ${ino.nid} has no metacopy xattr`,
            ino.offset,
          );
        }
        if (metacopy.length > 0) {
          const len = metacopy[1];
          const alg = metacopy[3];
          const dlen = alg === F.FSVERITY_ALG_SHA256 ? 32 : alg === F.FSVERITY_ALG_SHA512 ? 64 : 0;
          if (metacopy[0] !== 0 || dlen === 0 || len !== 4 + dlen || metacopy.length !== len) {
            throw new ErofsFormatError(`Bad metacopy xattr on nid ${ino.nid}`, ino.offset);
          }
          content = {
            kind: "regular",
            content: { kind: "external", digest: metacopy.slice(4), size: ino.size },
          };
        } else if (redirect !== undefined) {
          content = {
            kind: "regular",
            content: {
              kind: "externalNoVerity",
              digest: parseRedirect(redirect, ino.offset),
              size: ino.size,
            },
          };
        } else content = { kind: "regular", content: { kind: "sparse", size: ino.size } };
        ino.xattrs.delete(F.XATTR_OVERLAY_METACOPY);
        ino.xattrs.delete(F.XATTR_OVERLAY_REDIRECT);
      } else {
        // V2 keeps a regular file's whole content after the inode, even past one block.
        const data = !epoch1 && ino.layout === F.LAYOUT_FLAT_INLINE
          ? r.bytes(ino.inlineOffset, ino.size)
          : r.flatData(ino);
        content = { kind: "regular", content: { kind: "inline", data: data.slice() } };
      }
      break;
    }
    case F.S_IFLNK:
      if (ino.size > F.PATH_MAX) throw new ErofsFormatError(`Symlink nid ${ino.nid} is too long`);
      content = { kind: "symlink", target: bytesToByteString(r.flatData(ino)) };
      break;
    case F.S_IFCHR:
      content = { kind: "chr", rdev: ino.iu };
      break;
    case F.S_IFBLK:
      content = { kind: "blk", rdev: ino.iu };
      break;
    case F.S_IFIFO:
      content = { kind: "fifo" };
      break;
    case F.S_IFSOCK:
      content = { kind: "socket" };
      break;
    default:
      throw new ErofsFormatError(`Inode ${ino.nid} has unknown file type`, ino.offset);
  }
  return new Leaf(stat, content);
}

function checkChunks(r: Reader, ino: RawInode): void {
  // composefs writes only holes; the table sits inline or (promoted) in one data block.
  const bits = (ino.iu & 0x1f) + F.BLOCK_BITS;
  const count = Math.ceil(ino.size / 2 ** bits);
  if (count * 4 > r.b.length) {
    throw new ErofsFormatError(`Chunk table of nid ${ino.nid} exceeds the image`, ino.offset);
  }
}

/**
 * EROFS image writer for composefs trees: V0/V1 (byte-identical to C mkcomposefs 1.0.8
 * `--max-version=0` / `--min-version=1`) and V2 (legacy composefs-rs), spec erofs-format.md §1–2.
 *
 * The build runs like composefs-rs's `mkfs_erofs_inner`: collect inodes (BFS for V0/V1, DFS for
 * V2), add the composefs xattrs, share repeated xattrs, then lay the image out twice: a counting
 * pass records every offset, and an emitting pass writes into a buffer of exactly the final size.
 *
 * @module
 */

import * as F from "./format.ts";
import type { FormatVersion } from "./format.ts";
import { type ByteString, type Directory, Leaf, leafLinkCounts, type Stat } from "./tree.ts";
import { xxh32 } from "./xxhash.ts";

/** The tree cannot be written as an EROFS image. */
export class ErofsWriteError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "ErofsWriteError";
  /** Path of the offending entry, when known. */
  readonly path: string | undefined;
  /** Build the error; `options.cause` keeps the underlying error. */
  constructor(message: string, path?: string, options?: ErrorOptions) {
    super(message, options);
    this.path = path;
  }
}

/** Options of {@link writeErofs}. */
export interface WriteErofsOptions {
  /** Format version: 0 and 1 match C mkcomposefs, 2 is legacy composefs-rs. Default 1. */
  version?: FormatVersion;
}

interface XAttr {
  prefix: number;
  /** Name without the prefix (byte string). */
  suffix: ByteString;
  /** Full name (prefix + suffix), the Epoch1 sort key. */
  full: ByteString;
  value: Uint8Array;
  /** The sharing bucket of identical (name, value) pairs, set by shareXattrs. */
  bucket: Bucket | null;
}

interface SplitName {
  prefix: number;
  suffix: ByteString;
  /** This name's bit in the inode's xattr name filter. */
  bit: number;
}

/** Names repeat across inodes: split and hash each (epoch, name) once. */
const splitCache: [Map<ByteString, SplitName>, Map<ByteString, SplitName>] = [new Map(), new Map()];
/** Bound on cached names, so a tree with millions of distinct names cannot grow it unboundedly. */
const SPLIT_CACHE_MAX = 4096;

function splitName(name: ByteString, epoch1: boolean): SplitName {
  const cache = splitCache[epoch1 ? 1 : 0];
  const hit = cache.get(name);
  if (hit) return hit;
  for (let idx = F.XATTR_PREFIXES.length - 1; idx >= 0; idx--) {
    // C mkcomposefs 1.0.8 has no `lustre.` entry in its prefix table, so Epoch1 stores such
    // names whole under index 0.
    if (epoch1 && idx === F.XATTR_INDEX_LUSTRE) continue;
    const prefix = F.XATTR_PREFIXES[idx];
    if (!name.startsWith(prefix)) continue;
    const suffix = name.slice(prefix.length);
    const bit = 1 << (xxh32(suffix, (F.XATTR_FILTER_SEED + idx) >>> 0) % 32);
    const split = { prefix: idx, suffix, bit };
    if (cache.size < SPLIT_CACHE_MAX) cache.set(name, split);
    return split;
  }
  throw new ErofsWriteError(`Internal error: no xattr prefix matched "${name}"`);
}

class InodeXattrs {
  shared: number[] = [];
  local: XAttr[] = [];
  filter = 0;

  /**
   * Add an xattr. `replace` drops an earlier entry of the same name first, as C's
   * `lcfs_node_set_xattr` does when mkcomposefs adds its whiteout/opaque markers to a node that
   * already carries that (escaped) name; composefs-rs would store both.
   */
  add(name: ByteString, value: Uint8Array, epoch1: boolean, replace = false): void {
    this.#size = -1;
    if (replace) this.local = this.local.filter((x) => x.full !== name);
    const n = splitName(name, epoch1);
    this.filter |= n.bit;
    this.local.push({ prefix: n.prefix, suffix: n.suffix, full: name, value, bucket: null });
  }

  /** Cached {@link byteSize}; -1 when stale. */
  #size = -1;

  /** Forget the cached size (after the lists changed). */
  invalidate(): void {
    this.#size = -1;
  }

  byteSize(): number {
    if (this.#size >= 0) return this.#size;
    if (this.filter === 0) return (this.#size = 0);
    let n = F.XATTR_BODY_HEADER_SIZE + 4 * this.shared.length;
    for (const x of this.local) {
      n += align(F.XATTR_ENTRY_HEADER_SIZE + x.suffix.length + x.value.length, 4);
    }
    return (this.#size = n);
  }
}

interface DirEnt {
  name: ByteString;
  /** Inode index, or -1 while deferred (hardlink whose canonical inode comes later in BFS). */
  inode: number;
  deferred: Leaf | null;
  fileType: number;
}

interface DirData {
  blocks: DirEnt[][];
  inline: DirEnt[];
  size: number;
  nlink: number;
}

interface WInode {
  stat: Stat;
  xattrs: InodeXattrs;
  dir: DirData | null;
  leaf: Leaf | null;
  nlink: number;
  nDataBlocks: number;
  inlineTailSize: number;
  escapedWhiteout: boolean;
}

function align(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function cmpBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** Epoch1 order: full name bytes, then value length, then value bytes (C `xattrs_ht_sort`). */
function cmpEpoch1(a: XAttr, b: XAttr): number {
  return cmpStr(a.full, b.full) || (a.value.length - b.value.length) || cmpBytes(a.value, b.value);
}

/** V2 order: (prefix index, suffix bytes, value bytes), lexicographic. */
function cmpEpoch2(a: XAttr, b: XAttr): number {
  return (a.prefix - b.prefix) || cmpStr(a.suffix, b.suffix) || cmpBytes(a.value, b.value);
}

/** Chunk bits for an external file: ⌈log2 size⌉ clamped to 12…43 (C `compute_chunk_bitsize`). */
function chunkBits(size: number): number {
  let bits = size > 1 ? bitLength(size - 1) : 1;
  if (bits < F.BLOCK_BITS) bits = F.BLOCK_BITS;
  if (bits - F.BLOCK_BITS > 31) bits = 31 + F.BLOCK_BITS;
  return bits;
}

function bitLength(n: number): number {
  if (n < 2 ** 32) return 32 - Math.clz32(n);
  return 32 + (32 - Math.clz32(Math.floor(n / 2 ** 32)));
}

function chunkCount(size: number): number {
  return Math.ceil(size / 2 ** chunkBits(size));
}

function fileTypeOf(ino: WInode): number {
  if (ino.escapedWhiteout) return F.FT_REG;
  if (ino.dir) return F.FT_DIR;
  const c = ino.leaf!.content;
  switch (c.kind) {
    case "regular":
      return F.FT_REG;
    case "chr":
      return F.FT_CHR;
    case "blk":
      return F.FT_BLK;
    case "fifo":
      return F.FT_FIFO;
    case "socket":
      return F.FT_SOCK;
    case "symlink":
      return F.FT_LNK;
  }
}

const FT_TO_IFMT = [
  0,
  F.S_IFREG,
  F.S_IFDIR,
  F.S_IFCHR,
  F.S_IFBLK,
  F.S_IFIFO,
  F.S_IFSOCK,
  F.S_IFLNK,
];

function isWhiteout(leaf: Leaf): boolean {
  return leaf.content.kind === "chr" && leaf.content.rdev === 0;
}

/** Object path used in the redirect: `/xx/yyyy…` of the digest's hex. */
export function redirectPath(digest: Uint8Array): string {
  const hex = digest.toHex();
  return "/" + hex.slice(0, 2) + "/" + hex.slice(2);
}

/** Hands out zeroed views of large shared buffers: one ArrayBuffer per many small values. */
class BytePool {
  #buf = new Uint8Array(0);
  #pos = 0;
  /** A zeroed `n`-byte view. */
  take(n: number): Uint8Array {
    if (this.#pos + n > this.#buf.length) {
      this.#buf = new Uint8Array(Math.max(n, BYTE_POOL_CHUNK));
      this.#pos = 0;
    }
    const v = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return v;
  }
}

/** Size of each {@link BytePool} buffer: holds about 600 metacopy + redirect values. */
const BYTE_POOL_CHUNK = 64 * 1024;

const HEX_CHARS = new TextEncoder().encode("0123456789abcdef");

/** {@link redirectPath} as bytes, built directly (this runs once per external file). */
function redirectBytes(digest: Uint8Array, pool: BytePool): Uint8Array {
  const out = pool.take(2 * digest.length + 2);
  out[0] = 0x2f;
  out[3] = 0x2f;
  for (let i = 0, p = 1; i < digest.length; i++) {
    if (i === 1) p = 4;
    out[p++] = HEX_CHARS[digest[i] >> 4];
    out[p++] = HEX_CHARS[digest[i] & 15];
  }
  return out;
}

/** The `trusted.overlay.metacopy` value for a digest (`struct ovl_metacopy`). */
export function metacopyValue(digest: Uint8Array): Uint8Array {
  return metacopyInto(digest, new Uint8Array(4 + digest.length));
}

function metacopyInto(digest: Uint8Array, v: Uint8Array): Uint8Array {
  v[1] = 4 + digest.length;
  v[3] = digest.length === 64 ? F.FSVERITY_ALG_SHA512 : F.FSVERITY_ALG_SHA256;
  v.set(digest, 4);
  return v;
}

const EMPTY = new Uint8Array(0);
const ASCII_X = new Uint8Array([0x78]);
const ASCII_Y = new Uint8Array([0x79]);

class Collector {
  inodes: WInode[] = [];
  hardlinks = new Map<Leaf, number>();
  pool = new BytePool();
  readonly epoch1: boolean;
  /** Some leaf has more than one link (only then is the canonical-occurrence pass needed). */
  readonly hasHardlinks: boolean;
  constructor(readonly version: FormatVersion, readonly nlinks: Map<Leaf, number>) {
    this.epoch1 = version !== 2;
    let multi = false;
    for (const n of nlinks.values()) {
      if (n > 1) {
        multi = true;
        break;
      }
    }
    this.hasHardlinks = multi;
  }

  push(stat: Stat, dir: DirData | null, leaf: Leaf | null, nlink: number, nData = 0, tail = 0) {
    const xattrs = new InodeXattrs();
    if (leaf && leaf.content.kind === "regular") {
      const c = leaf.content.content;
      if (c.kind === "external") {
        xattrs.add(
          F.XATTR_OVERLAY_METACOPY,
          metacopyInto(c.digest, this.pool.take(4 + c.digest.length)),
          this.epoch1,
        );
        xattrs.add(F.XATTR_OVERLAY_REDIRECT, redirectBytes(c.digest, this.pool), this.epoch1);
      } else if (c.kind === "externalNoVerity") {
        xattrs.add(F.XATTR_OVERLAY_METACOPY, EMPTY, this.epoch1);
        xattrs.add(F.XATTR_OVERLAY_REDIRECT, redirectBytes(c.digest, this.pool), this.epoch1);
      } else if (c.kind === "sparse") {
        xattrs.add(F.XATTR_OVERLAY_METACOPY, EMPTY, this.epoch1);
      }
    }
    const names = stat.xattrs.size === 0 ? [] : [...stat.xattrs.keys()].sort();
    for (const name of names) {
      const value = stat.xattrs.get(name)!;
      if (name.startsWith(F.XATTR_OVERLAY_PREFIX)) {
        xattrs.add(
          F.XATTR_OVERLAY_ESCAPED_PREFIX + name.slice(F.XATTR_OVERLAY_PREFIX.length),
          value,
          this.epoch1,
        );
      } else {
        xattrs.add(name, value, this.epoch1);
      }
    }
    this.inodes.push({
      stat,
      xattrs,
      dir,
      leaf,
      nlink,
      nDataBlocks: nData,
      inlineTailSize: tail,
      escapedWhiteout: false,
    });
    return this.inodes.length - 1;
  }

  collectLeaf(leaf: Leaf): number {
    const nlink = this.nlinks.get(leaf) ?? 1;
    if (nlink > 1) {
      const known = this.hardlinks.get(leaf);
      if (known !== undefined) return known;
    }
    let nData = 0;
    let tail = 0;
    const c = leaf.content;
    if (this.epoch1) {
      if (c.kind === "regular") {
        const r = c.content;
        if (r.kind === "inline") {
          if (r.data.length > 0) {
            nData = Math.floor(r.data.length / F.BLOCK_SIZE);
            tail = r.data.length % F.BLOCK_SIZE;
            if (tail > F.BLOCK_SIZE / 2) {
              nData++;
              tail = 0;
            }
          }
        } else if (r.size > 0) {
          tail = chunkCount(r.size) * 4;
        }
      } else if (c.kind === "symlink") {
        tail = c.target.length;
      }
    } else if (c.kind === "regular") {
      if (c.content.kind === "inline") tail = c.content.data.length;
      else if (c.content.kind === "external") tail = 4;
    }
    const idx = this.push(leaf.stat, null, leaf, nlink, nData, tail);
    if (nlink > 1) this.hardlinks.set(leaf, idx);
    return idx;
  }

  /** V2: depth-first, pre-order. */
  collectDfs(dir: Directory, entries: [ByteString, Directory | Leaf][], parent: number): number {
    const me = this.push(dir.stat, null, null, 0);
    const ents: DirEnt[] = [
      { name: ".", inode: me, deferred: null, fileType: F.FT_DIR },
      { name: "..", inode: parent < 0 ? me : parent, deferred: null, fileType: F.FT_DIR },
    ];
    for (const [name, child] of entries) {
      const idx = child.type === "dir"
        ? this.collectDfs(child, child.sortedEntries(), me)
        : this.collectLeaf(child);
      ents.push({ name, inode: idx, deferred: null, fileType: fileTypeOf(this.inodes[idx]) });
    }
    ents.sort((a, b) => cmpStr(a.name, b.name));
    this.inodes[me].dir = dirFromEntries(ents);
    return me;
  }

  /** V0/V1: breadth-first like C `lcfs_compute_tree`, with C's hardlink canonical rule. */
  collectBfs(root: Directory, rootEntries: [ByteString, Directory | Leaf][]): void {
    // The canonical occurrence of a multi-link leaf is its first one in DFS sorted order (the
    // order of a dumpfile, where C numbers only "original" nodes).
    const canonical = new Map<Leaf, Directory>();
    const dfs = (dir: Directory, entries: [ByteString, Directory | Leaf][]) => {
      for (const [, child] of entries) {
        if (child.type === "dir") dfs(child, child.sortedEntries());
        else if ((this.nlinks.get(child) ?? 1) > 1 && !canonical.has(child)) {
          canonical.set(child, dir);
        }
      }
    };
    if (this.hasHardlinks) dfs(root, rootEntries);

    const rootIdx = this.push(root.stat, null, null, 0);
    const queue: [Directory, [ByteString, Directory | Leaf][], number, number][] = [
      [root, rootEntries, rootIdx, rootIdx],
    ];
    const dirEntries: [number, DirEnt[]][] = [];
    const rootXattrs = root.stat.xattrs;
    const rootSelinux = rootXattrs.get(F.XATTR_SECURITY_SELINUX);
    for (let q = 0; q < queue.length; q++) {
      const [dir, entries, parent, me] = queue[q];
      const ents: DirEnt[] = [];
      let hasWhiteout = false;
      for (const [name, child] of entries) {
        if (child.type === "dir") {
          const idx = this.push(child.stat, null, null, 0);
          queue.push([child, child.sortedEntries(), me, idx]);
          ents.push({ name, inode: idx, deferred: null, fileType: F.FT_DIR });
          continue;
        }
        const st = child.stat;
        const isStub = me === rootIdx && name.length === 2 && /^[0-9a-f]{2}$/.test(name) &&
          st.mode === 0o644 && st.uid === root.stat.uid && st.gid === root.stat.gid &&
          st.mtimeSec === root.stat.mtimeSec && st.mtimeNsec === root.stat.mtimeNsec &&
          (rootSelinux === undefined ? st.xattrs.size === 0 : st.xattrs.size === 1 &&
            bytesEqual(st.xattrs.get(F.XATTR_SECURITY_SELINUX), rootSelinux));
        const nlink = this.nlinks.get(child) ?? 1;
        const isCanonical = nlink > 1 ? canonical.get(child) === dir : true;
        let idx = -1;
        if (isCanonical) idx = this.collectLeaf(child);
        else idx = this.hardlinks.get(child) ?? -1;
        if (isCanonical && !isStub && isWhiteout(child)) {
          const ino = this.inodes[idx];
          if (!ino.escapedWhiteout) {
            ino.escapedWhiteout = true;
            ino.xattrs.add(F.XATTR_OVERLAY_WHITEOUT, EMPTY, true, true);
            ino.xattrs.add(F.XATTR_USERXATTR_WHITEOUT, EMPTY, true, true);
            hasWhiteout = true;
          }
        }
        ents.push({
          name,
          inode: idx,
          deferred: idx < 0 ? child : null,
          fileType: idx < 0 ? F.FT_REG : fileTypeOf(this.inodes[idx]),
        });
      }
      if (hasWhiteout) {
        const xs = this.inodes[me].xattrs;
        xs.add(F.XATTR_OVERLAY_WHITEOUTS, EMPTY, true, true);
        xs.add(F.XATTR_USERXATTR_WHITEOUTS, EMPTY, true, true);
        if (this.version === 1) {
          xs.add(F.XATTR_OVERLAY_OPAQUE, ASCII_X, true, true);
          xs.add(F.XATTR_USERXATTR_OPAQUE, ASCII_X, true, true);
        }
      }
      dirEntries.push([me, withDots(ents, me, parent)]);
    }
    for (const [me, ents] of dirEntries) {
      for (const e of ents) {
        if (e.deferred) {
          const idx = this.hardlinks.get(e.deferred);
          if (idx === undefined) {
            throw new ErofsWriteError("Hardlink canonical inode was never collected");
          }
          e.inode = idx;
          e.fileType = fileTypeOf(this.inodes[idx]);
          e.deferred = null;
        }
      }
      this.inodes[me].dir = dirFromEntries(ents);
    }
  }
}

/** Merge `.` and `..` into children already in byte order (cheaper than sorting again). */
function withDots(children: DirEnt[], me: number, parent: number): DirEnt[] {
  const dot: DirEnt = { name: ".", inode: me, deferred: null, fileType: F.FT_DIR };
  const dotdot: DirEnt = { name: "..", inode: parent, deferred: null, fileType: F.FT_DIR };
  const out: DirEnt[] = [];
  let i = 0;
  while (i < children.length && children[i].name < ".") out.push(children[i++]);
  out.push(dot);
  while (i < children.length && children[i].name < "..") out.push(children[i++]);
  out.push(dotdot);
  while (i < children.length) out.push(children[i++]);
  return out;
}

function bytesEqual(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && a.length === b.length && cmpBytes(a, b) === 0;
}

function dirFromEntries(entries: DirEnt[]): DirData {
  const blocks: DirEnt[][] = [];
  let rest: DirEnt[] = [];
  let nBytes = 0;
  let nlink = 0;
  for (const e of entries) {
    const sz = F.DIRENT_SIZE + e.name.length;
    if (e.fileType === F.FT_DIR) nlink++;
    nBytes += sz;
    if (nBytes <= F.BLOCK_SIZE) rest.push(e);
    else {
      blocks.push(rest);
      rest = [e];
      nBytes = sz;
    }
  }
  if (nBytes > F.MAX_INLINE_DIR_TAIL) {
    blocks.push(rest);
    rest = [];
    nBytes = 0;
  }
  return { blocks, inline: rest, size: F.BLOCK_SIZE * blocks.length + nBytes, nlink };
}

interface Bucket {
  x: XAttr;
  count: number;
  index: number;
  /** Another value with the same hash. */
  next: Bucket | null;
}

/** FNV-1a over the value: buckets identical values without building string keys. */
function valueHash(v: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < v.length; i++) h = Math.imul(h ^ v[i], 0x01000193);
  // Keep it a small integer (V8 Smi): heap-number Map keys are much slower.
  return h & 0x3fffffff;
}

function shareXattrs(inodes: WInode[], epoch1: boolean): XAttr[] {
  if (epoch1) {
    for (const ino of inodes) if (ino.xattrs.local.length > 1) ino.xattrs.local.sort(cmpEpoch1);
  }
  // The full name determines (prefix, suffix), so (full name, value) is the sharing identity.
  const byName = new Map<ByteString, Map<number, Bucket>>();
  const shared: XAttr[] = [];
  for (const ino of inodes) {
    for (const x of ino.xattrs.local) {
      let byHash = byName.get(x.full);
      if (!byHash) byName.set(x.full, byHash = new Map());
      const h = valueHash(x.value);
      const head = byHash.get(h);
      let bucket: Bucket | null = head ?? null;
      while (bucket && !bytesEqual(bucket.x.value, x.value)) bucket = bucket.next;
      if (!bucket) {
        bucket = { x, count: 0, index: -1, next: head ?? null };
        byHash.set(h, bucket);
      }
      if (++bucket.count === 2) shared.push(bucket.x);
      x.bucket = bucket;
    }
  }
  if (shared.length === 0) return shared;
  if (epoch1) {
    // C sorts by full name and writes the table in descending order.
    shared.sort(cmpEpoch1);
    shared.reverse();
  } else {
    shared.sort(cmpEpoch2);
  }
  shared.forEach((x, i) => (x.bucket!.index = i));
  for (const ino of inodes) {
    const xs = ino.xattrs;
    if (!xs.local.some((x) => x.bucket!.count > 1)) continue;
    const local: XAttr[] = [];
    for (const x of xs.local) {
      if (x.bucket!.count > 1) xs.shared.push(x.bucket!.index);
      else local.push(x);
    }
    xs.local = local;
    xs.invalidate();
  }
  return shared;
}

/** Compare (sec, nsec) with sec read as an unsigned 64-bit value, as composefs-rs does. */
function cmpMtime(aSec: number, aNsec: number, bSec: number, bNsec: number): number {
  if (aSec !== bSec) {
    if ((aSec < 0) !== (bSec < 0)) return aSec < 0 ? 1 : -1;
    return aSec - bSec;
  }
  return aNsec - bNsec;
}

interface Meta {
  layout: number;
  iu: number;
  size: number;
}

/** Byte sink used twice: counting (buf null) and emitting. */
class Out {
  pos = 0;
  readonly buf: Uint8Array | null;
  readonly dv: DataView | null;
  constructor(size: number | null) {
    this.buf = size === null ? null : new Uint8Array(size);
    this.dv = this.buf ? new DataView(this.buf.buffer) : null;
  }
  u8(v: number) {
    if (this.buf) this.buf[this.pos] = v;
    this.pos += 1;
  }
  u16(v: number) {
    if (this.dv) this.dv.setUint16(this.pos, v, true);
    this.pos += 2;
  }
  u32(v: number) {
    if (this.dv) this.dv.setUint32(this.pos, v >>> 0, true);
    this.pos += 4;
  }
  u64(v: number) {
    if (this.dv) {
      if (v < 0) this.dv.setBigUint64(this.pos, BigInt.asUintN(64, BigInt(v)), true);
      else {
        this.dv.setUint32(this.pos, v % 2 ** 32, true);
        this.dv.setUint32(this.pos + 4, Math.floor(v / 2 ** 32), true);
      }
    }
    this.pos += 8;
  }
  bytes(b: Uint8Array) {
    if (this.buf) this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  str(s: ByteString) {
    if (this.buf) {
      const buf = this.buf;
      for (let i = 0, p = this.pos; i < s.length; i++, p++) buf[p] = s.charCodeAt(i);
    }
    this.pos += s.length;
  }
  /** Skip `n` bytes (the buffer is zero-filled). */
  zeros(n: number) {
    this.pos += n;
  }
  pad(a: number) {
    this.pos = align(this.pos, a);
  }
}

interface Layout {
  inodes: number[];
  inodesEnd: number;
  xattrs: number[];
  blocks: number[];
  end: number;
}

class Emitter {
  layout: Layout = { inodes: [], inodesEnd: 0, xattrs: [], blocks: [], end: 0 };
  constructor(
    readonly version: FormatVersion,
    readonly inodes: WInode[],
    readonly shared: XAttr[],
    readonly minSec: number,
    readonly minNsec: number,
    readonly flags: number,
    readonly known: Layout | null,
  ) {}

  get epoch1() {
    return this.version !== 2;
  }

  nid(idx: number): number {
    return this.known ? this.known.inodes[idx] / F.INODE_SLOT_SIZE : 0;
  }

  blockStart(idx: number): number {
    return this.known ? this.known.blocks[idx] : 0;
  }

  fitsCompact(ino: WInode, size: number, nlink: number): boolean {
    return ino.stat.mtimeSec === this.minSec && ino.stat.mtimeNsec === this.minNsec &&
      nlink <= 0xffff && ino.stat.uid <= 0xffff && ino.stat.gid <= 0xffff && size <= 0xffffffff;
  }

  meta(ino: WInode, idx: number): Meta {
    const blk = Math.floor(this.blockStart(idx) / F.BLOCK_SIZE);
    if (ino.dir) {
      const d = ino.dir;
      if (d.inline.length === 0) return { layout: F.LAYOUT_FLAT_PLAIN, iu: blk, size: d.size };
      if (d.blocks.length > 0) return { layout: F.LAYOUT_FLAT_INLINE, iu: blk, size: d.size };
      return { layout: F.LAYOUT_FLAT_INLINE, iu: 0, size: d.size };
    }
    const c = ino.leaf!.content;
    switch (c.kind) {
      case "regular": {
        const r = c.content;
        if (r.kind === "inline") {
          const len = r.data.length;
          if (len === 0) return { layout: F.LAYOUT_FLAT_PLAIN, iu: 0, size: 0 };
          if (ino.nDataBlocks > 0) {
            return {
              layout: ino.inlineTailSize > 0 ? F.LAYOUT_FLAT_INLINE : F.LAYOUT_FLAT_PLAIN,
              iu: blk,
              size: len,
            };
          }
          return { layout: F.LAYOUT_FLAT_INLINE, iu: 0, size: len };
        }
        const fmt = this.epoch1 ? chunkBits(r.size) - F.BLOCK_BITS : 31;
        const iu = ino.nDataBlocks > 0 ? ((blk & 0xffff0000) | fmt) >>> 0 : fmt;
        return { layout: F.LAYOUT_CHUNK_BASED, iu, size: r.size };
      }
      case "chr":
      case "blk":
        return { layout: F.LAYOUT_FLAT_PLAIN, iu: c.rdev, size: 0 };
      case "fifo":
      case "socket":
        return { layout: F.LAYOUT_FLAT_PLAIN, iu: 0, size: 0 };
      case "symlink":
        if (ino.nDataBlocks > 0) {
          return { layout: F.LAYOUT_FLAT_PLAIN, iu: blk, size: c.target.length };
        }
        return { layout: F.LAYOUT_FLAT_INLINE, iu: 0, size: c.target.length };
    }
  }

  xattrRef(i: number): number {
    if (!this.known) return 0;
    const off = this.known.xattrs[i];
    if (this.epoch1) {
      const end = this.known.inodesEnd;
      return ((end % F.BLOCK_SIZE) + (off - end)) / 4;
    }
    return off / 4;
  }

  writeXattr(o: Out, x: XAttr) {
    o.u8(x.suffix.length);
    o.u8(x.prefix);
    o.u16(x.value.length);
    o.str(x.suffix);
    o.bytes(x.value);
    o.pad(4);
  }

  writeDirBlock(o: Out, ents: DirEnt[]) {
    let nameoff = F.DIRENT_SIZE * ents.length;
    for (const e of ents) {
      o.u64(this.nid(e.inode));
      o.u16(nameoff);
      o.u8(e.fileType);
      o.u8(0);
      nameoff += e.name.length;
    }
    for (const e of ents) o.str(e.name);
  }

  writeInode(o: Out, ino: WInode, idx: number) {
    const { layout, iu, size } = this.meta(ino, idx);
    const nlink = ino.dir ? ino.dir.nlink : ino.nlink;
    const xsize = ino.xattrs.byteSize();
    const compact = this.epoch1 && this.fitsCompact(ino, size, nlink);
    const hsize = compact ? F.COMPACT_INODE_SIZE : F.EXTENDED_INODE_SIZE;
    const isSymlink = fileTypeOf(ino) === F.FT_LNK;
    o.pad(F.INODE_SLOT_SIZE);

    if (this.epoch1 && isSymlink && layout === F.LAYOUT_FLAT_PLAIN) {
      // Promoted symlink: C still pads the inode start by the pre-promotion size.
      const total = hsize + xsize + size;
      const startBlock = Math.floor(o.pos / F.BLOCK_SIZE);
      const endBlock = Math.floor((o.pos + total - 1) / F.BLOCK_SIZE);
      if (startBlock !== endBlock && o.pos % F.BLOCK_SIZE !== 0) o.pad(F.BLOCK_SIZE);
    }
    const chunkBased = layout === F.LAYOUT_CHUNK_BASED;
    if (this.epoch1 && chunkBased && ino.inlineTailSize === 0 && ino.nDataBlocks > 0) {
      o.pad(F.BLOCK_SIZE);
    }
    if (this.epoch1 && chunkBased && ino.inlineTailSize > 0) {
      const s = o.pos + hsize + xsize;
      const r = s % F.BLOCK_SIZE === 0 ? 0 : F.BLOCK_SIZE - (s % F.BLOCK_SIZE);
      if (r > 0 && r < ino.inlineTailSize) o.zeros(align(r, F.INODE_SLOT_SIZE));
    }
    if (layout === F.LAYOUT_FLAT_INLINE) {
      const isz = size % F.BLOCK_SIZE;
      if (this.epoch1) {
        if (isSymlink) {
          if (
            (o.pos % F.BLOCK_SIZE) + hsize + xsize + isz > F.BLOCK_SIZE &&
            o.pos % F.BLOCK_SIZE !== 0
          ) {
            o.pad(F.BLOCK_SIZE);
          }
        } else {
          const s = o.pos + hsize + xsize;
          const r = s % F.BLOCK_SIZE === 0 ? 0 : F.BLOCK_SIZE - (s % F.BLOCK_SIZE);
          if (r > 0 && r < isz) o.zeros(align(r, F.INODE_SLOT_SIZE));
        }
      } else {
        const s = o.pos + hsize + xsize;
        const eom = s - 1;
        const iend = s + isz;
        if (Math.floor(eom / F.BLOCK_SIZE) !== Math.floor(iend / F.BLOCK_SIZE)) {
          o.zeros(F.BLOCK_SIZE - (eom % F.BLOCK_SIZE));
          o.pad(F.INODE_SLOT_SIZE);
        }
      }
    }

    const icount = xsize === 0 ? 0 : 1 + (xsize - F.XATTR_BODY_HEADER_SIZE) / 4;
    if (!this.known) this.layout.inodes.push(o.pos);
    const mode = (FT_TO_IFMT[fileTypeOf(ino)] | (ino.stat.mode & 0o7777)) & 0xffff;
    if (compact) {
      o.u16(layout << 1);
      o.u16(icount);
      o.u16(mode);
      o.u16(nlink);
      o.u32(size);
      o.u32(0);
      o.u32(iu);
      o.u32(idx);
      o.u16(ino.stat.uid);
      o.u16(ino.stat.gid);
      o.u32(0);
    } else {
      const i_ino = this.epoch1 ? idx : o.pos / F.INODE_SLOT_SIZE;
      o.u16((layout << 1) | F.INODE_EXTENDED);
      o.u16(icount);
      o.u16(mode);
      o.u16(0);
      o.u64(size);
      o.u32(iu);
      o.u32(i_ino);
      o.u32(ino.stat.uid);
      o.u32(ino.stat.gid);
      o.u64(ino.stat.mtimeSec);
      o.u32(this.epoch1 ? ino.stat.mtimeNsec : 0);
      o.u32(nlink);
      o.zeros(16);
    }
    if (xsize > 0) {
      o.u32(~ino.xattrs.filter >>> 0);
      o.u8(ino.xattrs.shared.length);
      o.zeros(7);
      for (const i of ino.xattrs.shared) o.u32(this.xattrRef(i));
      for (const x of ino.xattrs.local) this.writeXattr(o, x);
    }
    if (ino.dir) this.writeDirBlock(o, ino.dir.inline);
    else {
      const c = ino.leaf!.content;
      if (c.kind === "regular") {
        const r = c.content;
        if (r.kind === "inline") o.bytes(r.data.subarray(r.data.length - ino.inlineTailSize));
        else for (let n = ino.inlineTailSize / 4; n > 0; n--) o.u32(F.NULL_ADDR);
      } else if (c.kind === "symlink" && ino.nDataBlocks === 0) {
        o.str(c.target);
      }
    }
    o.pad(F.INODE_SLOT_SIZE);
  }

  writeBlocks(o: Out, ino: WInode) {
    if (ino.dir) {
      for (const b of ino.dir.blocks) {
        this.writeDirBlock(o, b);
        o.pad(F.BLOCK_SIZE);
      }
      return;
    }
    if (ino.nDataBlocks === 0) return;
    const c = ino.leaf!.content;
    if (c.kind === "regular") {
      const r = c.content;
      if (r.kind === "inline") {
        const data = r.data;
        for (let i = 0; i < ino.nDataBlocks; i++) {
          const start = i * F.BLOCK_SIZE;
          if (start < data.length) {
            o.bytes(data.subarray(start, Math.min(start + F.BLOCK_SIZE, data.length)));
          }
          o.pad(F.BLOCK_SIZE);
        }
      } else {
        for (let i = 0; i < F.MAX_NONINLINE_CHUNKS; i++) o.u32(F.NULL_ADDR);
      }
    } else if (c.kind === "symlink") {
      o.str(c.target.slice(0, F.BLOCK_SIZE));
      o.pad(F.BLOCK_SIZE);
    }
  }

  emit(o: Out) {
    const epoch1 = this.epoch1;
    // composefs header
    o.u32(F.COMPOSEFS_MAGIC);
    o.u32(F.COMPOSEFS_HEADER_VERSION);
    o.u32(this.flags);
    o.u32(this.version);
    o.pad(F.SUPERBLOCK_OFFSET);
    // superblock
    const sbStart = o.pos;
    o.u32(F.EROFS_MAGIC);
    o.u32(0); // checksum
    o.u32(F.FEATURE_COMPAT_MTIME | F.FEATURE_COMPAT_XATTR_FILTER);
    o.u8(F.BLOCK_BITS);
    o.u8(0); // extslots
    o.u16(this.nid(0));
    o.u64(this.inodes.length);
    o.u64(epoch1 ? this.minSec : 0);
    o.u32(epoch1 ? this.minNsec : 0);
    o.u32(this.known ? this.known.end / F.BLOCK_SIZE : 0);
    o.u32(0); // meta_blkaddr
    o.u32(epoch1 && this.known ? Math.floor(this.known.inodesEnd / F.BLOCK_SIZE) : 0);
    o.pos = sbStart + F.SUPERBLOCK_SIZE;
    for (let i = 0; i < this.inodes.length; i++) this.writeInode(o, this.inodes[i], i);
    o.pad(F.INODE_SLOT_SIZE);
    this.layout.inodesEnd = o.pos;
    for (const x of this.shared) {
      this.layout.xattrs.push(o.pos);
      this.writeXattr(o, x);
    }
    o.pad(F.BLOCK_SIZE);
    for (const ino of this.inodes) {
      this.layout.blocks.push(o.pos);
      this.writeBlocks(o, ino);
    }
    this.layout.end = o.pos;
  }
}

const U32_MAX = 0xffffffff;

function badStat(what: string, v: number): never {
  throw new ErofsWriteError(`Inode ${what} "${v}" is out of range`);
}

function validateStat(st: Stat): void {
  const { uid, gid, mode, mtimeSec, mtimeNsec } = st;
  if (!(uid >= 0 && uid <= U32_MAX && Number.isInteger(uid))) badStat("uid", uid);
  if (!(gid >= 0 && gid <= U32_MAX && Number.isInteger(gid))) badStat("gid", gid);
  if (!(mode >= 0 && mode <= 0o7777 && Number.isInteger(mode))) badStat("mode", mode);
  if (!Number.isSafeInteger(mtimeSec)) badStat("mtime seconds", mtimeSec);
  if (!(mtimeNsec >= 0 && mtimeNsec < 1e9 && Number.isInteger(mtimeNsec))) {
    badStat("mtime nanoseconds", mtimeNsec);
  }
  if (st.xattrs.size === 0) return;
  for (const [k, v] of st.xattrs) {
    if (k.length > F.XATTR_NAME_MAX || v.length > F.XATTR_SIZE_MAX) {
      throw new ErofsWriteError(`Xattr "${k}" is too large (name ${k.length}, value ${v.length})`);
    }
  }
}

function validate(root: Directory, nlinks: Map<Leaf, number>): void {
  for (const [leaf, n] of nlinks) {
    validateStat(leaf.stat);
    if (leaf.content.kind === "regular" && leaf.content.content.kind !== "inline") {
      const size = leaf.content.content.size;
      if (!Number.isSafeInteger(size) || size < 0) {
        throw new ErofsWriteError(`File size "${size}" is out of range`);
      }
    }
    if (n > 1 && isWhiteout(leaf)) {
      throw new ErofsWriteError("Invalid composefs filesystem: whiteout inode has nlink > 1");
    }
    const c = leaf.content;
    if ((c.kind === "chr" || c.kind === "blk") && (c.rdev < 0 || c.rdev > 0xffffffff)) {
      throw new ErofsWriteError(`Device number "${c.rdev}" exceeds the EROFS 32-bit limit`);
    }
    if (c.kind === "regular" && c.content.kind !== "inline" && c.content.kind !== "sparse") {
      const len = c.content.digest.length;
      if (len !== 32 && len !== 64) {
        throw new ErofsWriteError(`Object digest has length "${len}", expected 32 or 64`);
      }
    }
  }
  const seen = new Set<Directory>();
  const stack = [root];
  while (stack.length) {
    const d = stack.pop()!;
    if (seen.has(d)) throw new ErofsWriteError("Directory appears twice in the tree");
    seen.add(d);
    validateStat(d.stat);
    for (const c of d.entries.values()) if (c.type === "dir") stack.push(c);
  }
}

/**
 * Write `root` as a composefs EROFS image.
 *
 * V0 equals `mkcomposefs --max-version=0`, V1 equals `mkcomposefs --min-version=1` (C 1.0.8),
 * V2 is composefs-rs's legacy format.
 */
export function writeErofs(root: Directory, options: WriteErofsOptions = {}): Uint8Array {
  const version = options.version ?? 1;
  if (version !== 0 && version !== 1 && version !== 2) {
    throw new ErofsWriteError(`Unknown EROFS format version "${version}"`);
  }
  const epoch1 = version !== 2;
  let rootEntries = root.sortedEntries();
  const nlinks = leafLinkCounts(root);
  validate(root, nlinks);
  if (epoch1) {
    // 256 chr 0:0 stubs `00`…`ff` join the root's children (hiding lower `xx/` object dirs).
    const rs = root.stat;
    const xattrs = new Map<ByteString, Uint8Array>();
    const se = rs.xattrs.get(F.XATTR_SECURITY_SELINUX);
    if (se !== undefined) xattrs.set(F.XATTR_SECURITY_SELINUX, se);
    const merged = new Map(root.entries);
    for (let i = 0; i < 256; i++) {
      const name = Uint8Array.of(i).toHex();
      if (merged.has(name)) continue;
      merged.set(
        name,
        new Leaf({
          mode: 0o644,
          uid: rs.uid,
          gid: rs.gid,
          mtimeSec: rs.mtimeSec,
          mtimeNsec: rs.mtimeNsec,
          xattrs,
        }, { kind: "chr", rdev: 0 }),
      );
    }
    rootEntries = [...merged].sort((a, b) => cmpStr(a[0], b[0]));
    // leafLinkCounts made this map for this call only: add the stubs to it in place.
    for (const [, c] of rootEntries) if (c.type === "leaf" && !nlinks.has(c)) nlinks.set(c, 1);
  }
  const col = new Collector(version, nlinks);
  if (epoch1) col.collectBfs(root, rootEntries);
  else col.collectDfs(root, rootEntries, -1);
  const inodes = col.inodes;
  if (epoch1) inodes[0].xattrs.add(F.XATTR_OVERLAY_OPAQUE_ROOT, ASCII_Y, true, true);

  let flags = 0;
  if (epoch1) {
    const hasAcl = inodes.some((i) =>
      i.xattrs.local.some((x) =>
        x.prefix === F.XATTR_INDEX_POSIX_ACL_ACCESS || x.prefix === F.XATTR_INDEX_POSIX_ACL_DEFAULT
      )
    );
    if (hasAcl) flags = F.COMPOSEFS_FLAGS_HAS_ACL;
  }
  const shared = shareXattrs(inodes, epoch1);

  let minSec = 0;
  let minNsec = 0;
  if (inodes.length > 0) {
    minSec = inodes[0].stat.mtimeSec;
    minNsec = inodes[0].stat.mtimeNsec;
    for (const i of inodes) {
      if (cmpMtime(i.stat.mtimeSec, i.stat.mtimeNsec, minSec, minNsec) < 0) {
        minSec = i.stat.mtimeSec;
        minNsec = i.stat.mtimeNsec;
      }
    }
  }

  if (epoch1) {
    // Promote long symlinks and oversized chunk tables to data blocks (C rules).
    for (const ino of inodes) {
      if (!ino.leaf || ino.inlineTailSize === 0) continue;
      const c = ino.leaf.content;
      if (c.kind === "symlink") {
        const compact = ino.stat.mtimeSec === minSec && ino.stat.mtimeNsec === minNsec &&
          ino.nlink <= 0xffff && ino.stat.uid <= 0xffff && ino.stat.gid <= 0xffff &&
          ino.inlineTailSize <= 0xffffffff;
        const total = (compact ? F.COMPACT_INODE_SIZE : F.EXTENDED_INODE_SIZE) +
          ino.xattrs.byteSize() + ino.inlineTailSize;
        if (total >= F.BLOCK_SIZE) {
          ino.nDataBlocks++;
          ino.inlineTailSize = 0;
        }
      } else if (c.kind === "regular" && c.content.kind !== "inline") {
        if (ino.inlineTailSize + (ino.xattrs.byteSize() % F.INODE_SLOT_SIZE) > F.BLOCK_SIZE) {
          ino.nDataBlocks = 1;
          ino.inlineTailSize = 0;
        }
      }
    }
  }

  const counter = new Emitter(version, inodes, shared, minSec, minNsec, flags, null);
  counter.emit(new Out(null));
  const layout = counter.layout;
  const writer = new Emitter(version, inodes, shared, minSec, minNsec, flags, layout);
  const out = new Out(layout.end);
  writer.emit(out);
  if (out.pos !== layout.end) {
    throw new ErofsWriteError(
      `Internal error: emit pass ended at ${out.pos}, layout said ${layout.end}`,
    );
  }
  return out.buf!;
}

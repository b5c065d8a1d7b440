/**
 * The composefs filesystem tree: what an EROFS image describes and what a dumpfile lists.
 *
 * Names (file names, xattr names, symlink targets) are **byte strings**: JS strings whose every
 * code unit is one byte (0–255). Linux names are bytes, not text, and byte strings compare with
 * `<` in the same order as the raw bytes, which is the order EROFS and dumpfiles use. Convert
 * with {@link bytesToByteString} / {@link byteStringToBytes}, or {@link utf8ToByteString} for
 * names written as ordinary text.
 *
 * Hardlinks are object identity: the same {@link Leaf} object placed in several directories is one
 * inode; its link count is the number of places it appears.
 *
 * @module
 */

/** A string whose code units are bytes (0–255); see the module documentation. */
export type ByteString = string;

/** Metadata shared by every inode. */
export interface Stat {
  /** Permission bits (`st_mode & 0o7777`); the file type comes from the inode kind. */
  mode: number;
  /** Owner. */
  uid: number;
  /** Group. */
  gid: number;
  /** Modification time, whole seconds. */
  mtimeSec: number;
  /** Modification time, nanoseconds (0 … 999 999 999). */
  mtimeNsec: number;
  /** Extended attributes: name (byte string) → value. */
  xattrs: Map<ByteString, Uint8Array>;
}

/** A regular file's content. */
export type RegularContent =
  /** Content stored in the image itself (composefs inlines files of ≤ 64 bytes). */
  | { kind: "inline"; data: Uint8Array }
  /** Content stored as a repository object, named by its fs-verity digest (32 or 64 bytes). */
  | { kind: "external"; digest: Uint8Array; size: number }
  /** External object without a verified digest: only the redirect is written, metacopy is empty. */
  | { kind: "externalNoVerity"; digest: Uint8Array; size: number }
  /** A size and no content at all (a hole). */
  | { kind: "sparse"; size: number };

/** What a non-directory inode is. */
export type LeafContent =
  | { kind: "regular"; content: RegularContent }
  | { kind: "symlink"; target: ByteString }
  | { kind: "chr"; rdev: number }
  | { kind: "blk"; rdev: number }
  | { kind: "fifo" }
  | { kind: "socket" };

/** A non-directory inode. Place the same object in several directories for a hardlink. */
export class Leaf {
  /** Discriminator shared with {@link Directory}. */
  readonly type = "leaf" as const;
  /** Metadata. */
  stat: Stat;
  /** Kind and content. */
  content: LeafContent;
  /** A leaf with its metadata and content. */
  constructor(stat: Stat, content: LeafContent) {
    this.stat = stat;
    this.content = content;
  }
}

/** A directory inode: metadata plus named children. */
export class Directory {
  /** Discriminator shared with {@link Leaf}. */
  readonly type = "dir" as const;
  /** Metadata. */
  stat: Stat;
  /** Children by name (byte string, never `.`, `..`, empty or containing `/`). */
  entries: Map<ByteString, Inode>;
  /** A directory with its metadata and (optionally) its children. */
  constructor(stat: Stat, entries: Map<ByteString, Inode> = new Map()) {
    this.stat = stat;
    this.entries = entries;
  }

  /** The children sorted by raw name bytes (the order EROFS and dumpfiles use). */
  sortedEntries(): [ByteString, Inode][] {
    // The default sort compares UTF-16 code units, which for byte strings is byte order.
    const names = [...this.entries.keys()].sort();
    return names.map((n) => [n, this.entries.get(n)!]);
  }
}

/** Either kind of inode. */
export type Inode = Directory | Leaf;

/** A whole filesystem: the root directory. */
export interface FileSystem {
  /** The root directory. */
  root: Directory;
}

/** A fresh {@link Stat} with defaults filled in. */
export function makeStat(partial: Partial<Stat> = {}): Stat {
  return {
    mode: partial.mode ?? 0o755,
    uid: partial.uid ?? 0,
    gid: partial.gid ?? 0,
    mtimeSec: partial.mtimeSec ?? 0,
    mtimeNsec: partial.mtimeNsec ?? 0,
    xattrs: partial.xattrs ?? new Map(),
  };
}

/** Raw bytes → byte string (one code unit per byte). */
export function bytesToByteString(b: Uint8Array): ByteString {
  let s = "";
  const CHUNK = 8192; // keeps the argument list of fromCharCode small
  for (let i = 0; i < b.length; i += CHUNK) {
    s += String.fromCharCode.apply(null, b.subarray(i, i + CHUNK) as unknown as number[]);
  }
  return s;
}

/** Byte string → raw bytes. Throws RangeError on a code unit above 255. */
export function byteStringToBytes(s: ByteString): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 255) throw new RangeError(`Not a byte string: code unit ${c} at ${i}`);
    out[i] = c;
  }
  return out;
}

const utf8Encoder = new TextEncoder();

/** Ordinary text → its UTF-8 bytes as a byte string. */
export function utf8ToByteString(s: string): ByteString {
  return bytesToByteString(utf8Encoder.encode(s));
}

/** Byte string → text, decoding UTF-8 (invalid sequences become U+FFFD). */
export function byteStringToUtf8(s: ByteString): string {
  return new TextDecoder().decode(byteStringToBytes(s));
}

/** Link count of every leaf: how many directory entries point at it. */
export function leafLinkCounts(root: Directory): Map<Leaf, number> {
  const counts = new Map<Leaf, number>();
  const stack: Directory[] = [root];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    for (const child of dir.entries.values()) {
      if (child.type === "dir") stack.push(child);
      else counts.set(child, (counts.get(child) ?? 0) + 1);
    }
  }
  return counts;
}

/** The size of a regular file's content in bytes. */
export function regularSize(c: RegularContent): number {
  return c.kind === "inline" ? c.data.length : c.size;
}

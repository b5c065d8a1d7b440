/**
 * composefs dumpfiles (composefs-dump(5)): one line per inode,
 * `PATH SIZE MODE NLINK UID GID RDEV MTIME PAYLOAD CONTENT DIGEST [KEY=VALUE …]`.
 * Spec erofs-format.md §5; the writer matches composefs-rs's `write_dumpfile`, the parser its
 * `dumpfile_to_filesystem`, except that inline content may be up to 5000 bytes and symlink
 * targets up to 4095 bytes (C mkcomposefs's limits; composefs-rs stops at 512 and 1024).
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
  leafLinkCounts,
  type Stat,
} from "./tree.ts";

/** A dumpfile line could not be parsed or does not fit the tree. */
export class DumpfileParseError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "DumpfileParseError";
  /** 1-based line number. */
  readonly line: number;
  /** Build the error; `options.cause` keeps the underlying error. */
  constructor(message: string, line: number, options?: ErrorOptions) {
    super(message, options);
    this.line = line;
  }
}

class FieldError extends Error {}

const NEEDS_SLOW_UNESCAPE = /[\\\u0080-\uffff]/;
const utf8 = new TextEncoder();

/** Undo dumpfile escaping; raw non-ASCII characters become their UTF-8 bytes. */
function unescape(s: string, max = Infinity): ByteString {
  if (!NEEDS_SLOW_UNESCAPE.test(s)) {
    if (s.length > max) throw new FieldError(`Input ${s.length} exceeded maximum length ${max}`);
    return s;
  }
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x5c) {
      const e = s[++i];
      if (e === undefined) throw new FieldError("Unterminated escape");
      if (e === "\\") out.push(0x5c);
      else if (e === "n") out.push(0x0a);
      else if (e === "r") out.push(0x0d);
      else if (e === "t") out.push(0x09);
      else if (e === "x") {
        const h = s.slice(i + 1, i + 3);
        if (!/^[0-9a-fA-F]{2}$/.test(h)) throw new FieldError(`Invalid hex escape "${h}"`);
        out.push(parseInt(h, 16));
        i += 2;
      } else throw new FieldError(`Invalid escape "${e}"`);
    } else if (c < 0x80) out.push(c);
    else {
      const cp = s.codePointAt(i)!;
      if (cp > 0xffff) i++;
      for (const b of utf8.encode(String.fromCodePoint(cp))) out.push(b);
    }
    if (out.length > max) throw new FieldError(`Input exceeded maximum length ${max}`);
  }
  return bytesToByteString(Uint8Array.from(out));
}

function noNul(s: ByteString, what: string): ByteString {
  if (s.includes("\0")) throw new FieldError(`Invalid embedded NUL in ${what}`);
  return s;
}

function unescapePath(s: string): ByteString {
  const p = noNul(unescape(s), "path");
  if (p.length === 0) throw new FieldError("Invalid empty path");
  if (p.length > F.PATH_MAX) throw new FieldError(`Path is too long: ${p.length} bytes`);
  return p;
}

function canonicalPath(s: string): ByteString {
  const p = unescapePath(s);
  if (p[0] !== "/") throw new FieldError("Invalid non-absolute path");
  if (p === "/") return p;
  if (p.endsWith("/")) throw new FieldError("Empty path component (// or trailing /)");
  if (p.includes("//")) throw new FieldError("Empty path component (// or trailing /)");
  if (p.includes("/./") || p.endsWith("/.")) throw new FieldError(`Invalid path component "."`);
  if (p.includes("/../") || p.endsWith("/..")) throw new FieldError(`Invalid path component ".."`);
  return p;
}

function parseDigest(hex: string): Uint8Array {
  if (hex.length !== 64 && hex.length !== 128) {
    throw new FieldError(`Invalid fs-verity digest "${hex}"`);
  }
  try {
    // Native and case-insensitive; the length check above pins 32 or 64 bytes.
    return Uint8Array.fromHex(hex);
  } catch (e) {
    throw new FieldError(`Invalid fs-verity digest "${hex}"`, { cause: e });
  }
}

function parseObjectPath(p: ByteString): Uint8Array {
  const m = /^([0-9a-f]{2})\/([0-9a-f]{62}|[0-9a-f]{126})$/.exec(p);
  if (!m) throw new FieldError(`Invalid object pathname "${p}"`);
  return Uint8Array.fromHex(m[1] + m[2]);
}

interface ParsedLine {
  path: ByteString;
  hardlinkTarget: ByteString | null;
  stat: Stat;
  content: LeafContent | null; // null for a directory
}

/** Walks one line's space-separated fields without allocating them (`split(" ")` semantics). */
class FieldScanner {
  s = "";
  pos = 0;
  done = true;
  start = 0;
  end = 0;
  reset(s: string): void {
    this.s = s;
    this.pos = 0;
    this.done = false;
  }
  /** Advance to the next field; false when the line has no more. */
  next(): boolean {
    if (this.done) return false;
    const sp = this.s.indexOf(" ", this.pos);
    this.start = this.pos;
    if (sp < 0) {
      this.end = this.s.length;
      this.done = true;
    } else {
      this.end = sp;
      this.pos = sp + 1;
    }
    return true;
  }
  /** The next field as a string; throws "Missing WHAT" at the end of the line. */
  take(what: string): string {
    if (!this.next()) throw new FieldError(`Missing ${what}`);
    return this.s.slice(this.start, this.end);
  }
  /** The next field as an optional string (`-` → null). */
  optional(what: string): string | null {
    if (!this.next()) throw new FieldError(`Missing ${what}`);
    if (this.end - this.start === 1 && this.s.charCodeAt(this.start) === 0x2d) return null;
    return this.s.slice(this.start, this.end);
  }
  /** Decimal digits in [from, to) of the line. */
  decimal(from: number, to: number, what: string): number {
    const len = to - from;
    if (len <= 0 || len > 20) throw new FieldError(`Invalid ${what} "${this.s.slice(from, to)}"`);
    let n = 0;
    for (let i = from; i < to; i++) {
      const d = this.s.charCodeAt(i) - 0x30;
      if (d < 0 || d > 9) throw new FieldError(`Invalid ${what} "${this.s.slice(from, to)}"`);
      n = n * 10 + d;
    }
    if (!Number.isSafeInteger(n)) {
      throw new FieldError(`${what} "${this.s.slice(from, to)}" is too large`);
    }
    return n;
  }
  /** The next field as a decimal number. */
  number(what: string, max = Number.MAX_SAFE_INTEGER): number {
    if (!this.next()) throw new FieldError(`Missing ${what}`);
    const n = this.decimal(this.start, this.end, what);
    if (n > max) throw new FieldError(`${what} "${n}" does not fit 32 bits`);
    return n;
  }
}

const fields = new FieldScanner();

function parseLine(line: string): ParsedLine {
  const f = fields;
  f.reset(line);
  const path = canonicalPath(f.take("path"));
  const size = f.number("size");
  const modeField = f.take("mode");
  const isHardlink = modeField.startsWith("@");
  const modeText = isHardlink ? modeField.slice(1) : modeField;
  if (!/^[0-7]{1,11}$/.test(modeText)) throw new FieldError(`Invalid mode "${modeField}"`);
  const mode = parseInt(modeText, 8);
  if (mode > 0xffffffff) throw new FieldError(`Invalid mode "${modeField}"`);
  const type = mode & F.S_IFMT;
  if (isHardlink) {
    if (type === F.S_IFDIR) throw new FieldError("Invalid hardlinked directory");
    for (const what of ["nlink", "uid", "gid", "rdev", "mtime"]) {
      if (!f.next()) throw new FieldError(`Missing ${what}`);
    }
    const payload = f.optional("payload");
    if (payload === null) throw new FieldError("Missing payload");
    return { path, hardlinkTarget: canonicalPath(payload), stat: emptyStat(), content: null };
  }
  const nlink = f.number("nlink", U32_MAX);
  const uid = f.number("uid", U32_MAX);
  const gid = f.number("gid", U32_MAX);
  const rdev = f.number("rdev");
  if (!f.next()) throw new FieldError("Missing mtime");
  const dot = line.indexOf(".", f.start);
  if (dot < 0 || dot >= f.end) throw new FieldError("Missing . in mtime");
  const mtimeSec = f.decimal(f.start, dot, "mtime seconds");
  const mtimeNsec = f.decimal(dot + 1, f.end, "mtime nanoseconds");
  if (mtimeNsec >= 1e9) {
    throw new FieldError(`Invalid mtime nanoseconds "${mtimeNsec}" (must be < 1000000000)`);
  }
  const payload = f.optional("payload");
  const contentField = f.optional("content");
  const digestField = f.optional("digest");
  const xl: [ByteString, Uint8Array][] = [];
  let totalKeys = 0;
  while (f.next()) {
    const eq = line.indexOf("=", f.start);
    if (eq < 0 || eq >= f.end) throw new FieldError("Missing = in xattrs");
    const key = noNul(unescape(line.slice(f.start, eq)), "xattr name");
    if (key.length > F.XATTR_NAME_MAX) {
      throw new FieldError(`Xattr name too long; max=${F.XATTR_NAME_MAX} found=${key.length}`);
    }
    const value = unescape(line.slice(eq + 1, f.end), F.XATTR_SIZE_MAX);
    totalKeys += key.length;
    if (totalKeys > F.XATTR_LIST_MAX) throw new FieldError("Too many xattrs");
    xl.push([key, byteStringBytes(value)]);
  }
  if (xl.length > 1) {
    xl.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : cmpBytes(a[1], b[1])));
  }
  const stat: Stat = {
    mode: mode & 0o7777,
    uid,
    gid,
    mtimeSec,
    mtimeNsec,
    xattrs: xl.length === 0 ? new Map() : new Map(xl),
  };
  const nonReg = () => {
    if (contentField !== null) throw new FieldError("Entry cannot have content");
    if (digestField !== null) throw new FieldError("Entry cannot have fsverity digest");
  };
  const noRdev = () => {
    if (rdev !== 0) throw new FieldError(`Entry cannot have device (rdev) "${rdev}"`);
  };
  let content: LeafContent | null;
  switch (type) {
    case F.S_IFREG:
      noRdev();
      if (payload !== null) {
        const p = unescapePath(payload);
        if (digestField !== null) {
          content = {
            kind: "regular",
            content: { kind: "external", digest: parseDigest(digestField), size },
          };
        } else {
          content = {
            kind: "regular",
            content: { kind: "externalNoVerity", digest: parseObjectPath(p), size },
          };
        }
      } else {
        const data = unescape(contentField ?? "", F.MAX_INLINE_CONTENT);
        if (digestField !== null) throw new FieldError("Inline file cannot have fsverity digest");
        content = data.length === 0 && size > 0
          ? { kind: "regular", content: { kind: "sparse", size } }
          : { kind: "regular", content: { kind: "inline", data: byteStringBytes(data) } };
      }
      break;
    case F.S_IFLNK: {
      nonReg();
      noRdev();
      if (payload === null) throw new FieldError("Missing payload");
      const target = unescapePath(payload);
      if (target.length > F.SYMLINK_MAX) {
        throw new FieldError(
          `Symlink target length ${target.length} exceeds limit ${F.SYMLINK_MAX}`,
        );
      }
      content = { kind: "symlink", target };
      break;
    }
    case F.S_IFIFO:
      nonReg();
      noRdev();
      content = { kind: "fifo" };
      break;
    case F.S_IFSOCK:
      nonReg();
      noRdev();
      content = { kind: "socket" };
      break;
    case F.S_IFCHR:
    case F.S_IFBLK:
      nonReg();
      if (rdev > 0xffffffff) throw new FieldError(`Device number "${rdev}" does not fit 32 bits`);
      if (type === F.S_IFCHR && rdev === 0 && nlink > 1) {
        throw new FieldError("Whiteout entry has nlink > 1");
      }
      content = { kind: type === F.S_IFCHR ? "chr" : "blk", rdev };
      break;
    case F.S_IFDIR:
      nonReg();
      noRdev();
      content = null;
      break;
    default:
      throw new FieldError(`Unhandled file type from raw mode "${mode.toString(8)}"`);
  }
  return { path, hardlinkTarget: null, stat, content };
}

function emptyStat(): Stat {
  return { mode: 0, uid: 0, gid: 0, mtimeSec: 0, mtimeNsec: 0, xattrs: new Map() };
}

function byteStringBytes(s: ByteString): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}

function cmpBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

function lookup(root: Directory, path: ByteString): Inode | undefined {
  let cur: Inode = root;
  for (const comp of path.slice(1).split("/")) {
    if (cur.type !== "dir") return undefined;
    const next: Inode | undefined = cur.entries.get(comp);
    if (!next) return undefined;
    cur = next;
  }
  return cur;
}

/** Options of {@link parseDumpfile}. */
export interface ParseDumpfileOptions {
  /**
   * Drop `trusted.overlay.opaque=x` and `user.overlay.opaque=x`, which `composefs-info dump`
   * prints for directories holding escaped whiteouts (composefs-rs `Entry::filter_special`).
   */
  filterSpecial?: boolean;
}

/**
 * Parse a dumpfile into a tree. The first line must be `/`; every parent must already exist;
 * hardlink lines (`@` mode) name an earlier leaf in their PAYLOAD; NLINK is ignored (recomputed).
 */
export function parseDumpfile(text: string, options: ParseDumpfileOptions = {}): Directory {
  const lines = text.split("\n");
  let root: Directory | null = null;
  // Consecutive lines nearly always share a parent: remember the last one looked up.
  let lastParentPath = "";
  let lastParent: Directory | null = null;
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n];
    if (line.length === 0 || (line.charCodeAt(0) <= 0x20 && line.trim() === "")) continue;
    let p: ParsedLine;
    try {
      p = parseLine(line);
    } catch (e) {
      if (e instanceof FieldError) throw new DumpfileParseError(e.message, n + 1, { cause: e });
      throw e;
    }
    const fail = (msg: string): never => {
      throw new DumpfileParseError(msg, n + 1);
    };
    if (options.filterSpecial) {
      for (const k of ["trusted.overlay.opaque", "user.overlay.opaque"]) {
        const v = p.stat.xattrs.get(k);
        if (v && v.length === 1 && v[0] === 0x78) p.stat.xattrs.delete(k);
      }
    }
    if (root === null) {
      if (p.path !== "/") fail(`Dumpfile must start with the root directory, found "${p.path}"`);
      if (p.content !== null || p.hardlinkTarget !== null) fail("Root must be a directory");
      root = new Directory(p.stat);
      continue;
    }
    if (p.path === "/") {
      if (p.content !== null || p.hardlinkTarget !== null) fail("Root must be a directory");
      root.stat = p.stat;
      continue;
    }
    const slash = p.path.lastIndexOf("/");
    const name = p.path.slice(slash + 1);
    const parentPath = p.path.slice(0, slash);
    let parent: Directory;
    if (parentPath === lastParentPath && lastParent !== null) parent = lastParent;
    else {
      parent = root;
      if (slash > 0) {
        for (const comp of parentPath.slice(1).split("/")) {
          const next = parent.entries.get(comp);
          if (!next || next.type !== "dir") fail(`Parent directory not found: "${parentPath}"`);
          parent = next as Directory;
        }
      }
      lastParentPath = parentPath;
      lastParent = parent;
    }
    let inode: Inode;
    if (p.hardlinkTarget !== null) {
      // Look the target up in the tree built so far (no path → leaf map kept for every line).
      const t = lookup(root, p.hardlinkTarget);
      if (!t || t.type !== "leaf") fail(`Hardlink target not found: "${p.hardlinkTarget}"`);
      inode = t as Leaf;
    } else if (p.content === null) {
      inode = new Directory(p.stat);
    } else {
      inode = new Leaf(p.stat, p.content);
    }
    // Replacing an entry may replace the cached parent or one of its ancestors.
    if (parent.entries.has(name)) lastParent = null;
    parent.entries.set(name, inode);
  }
  if (root === null) {
    throw new DumpfileParseError("Dumpfile is empty, expected root directory entry", 0);
  }
  return root;
}

const U32_MAX = 0xffffffff;
// Escape table for bytes: null means "print as is".
const ESC: (string | null)[] = [];
for (let c = 0; c < 256; c++) {
  if (c === 0x5c) ESC.push("\\\\");
  else if (c === 0x0a) ESC.push("\\n");
  else if (c === 0x0d) ESC.push("\\r");
  else if (c === 0x09) ESC.push("\\t");
  else if (c < 0x21 || c > 0x7e) ESC.push("\\x" + Uint8Array.of(c).toHex());
  else ESC.push(null);
}
const PLAIN = /^[\x21-\x5b\x5d-\x7e]*$/;
const PLAIN_NO_EQ = /^[\x21-\x3c\x3e-\x5b\x5d-\x7e]*$/;

function escapeRaw(s: ByteString, escapeEq: boolean): string {
  if ((escapeEq ? PLAIN_NO_EQ : PLAIN).test(s)) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const e = c === 0x3d && escapeEq ? "\\x3d" : ESC[c];
    out += e === null ? s[i] : e;
  }
  return out;
}

/** Escape an optional field: empty → `-`, a lone `-` → `\x2d`. */
function escapeField(s: ByteString): string {
  if (s.length === 0) return "-";
  if (s === "-") return "\\x2d";
  return escapeRaw(s, false);
}

function statLine(
  path: ByteString,
  stat: Stat,
  ifmt: number,
  size: number,
  nlink: number,
  rdev: number,
  payload: ByteString,
  content: ByteString,
  digest: string | null,
): string {
  let line = escapeField(path) + " " + size + " " + (ifmt | stat.mode).toString(8) + " " + nlink +
    " " + stat.uid + " " + stat.gid + " " + rdev + " " + stat.mtimeSec + "." + stat.mtimeNsec +
    " " + escapeField(payload) + " " + escapeField(content) + " " + (digest ?? "-");
  const keys = [...stat.xattrs.keys()].sort();
  for (const k of keys) {
    line += " " + escapeRaw(k, true) + "=" +
      escapeRaw(bytesToByteString(stat.xattrs.get(k)!), true);
  }
  return line;
}

function leafLine(path: ByteString, leaf: Leaf, nlink: number): string {
  const c = leaf.content;
  const st = leaf.stat;
  switch (c.kind) {
    case "regular": {
      const r = c.content;
      if (r.kind === "inline") {
        return statLine(
          path,
          st,
          F.S_IFREG,
          r.data.length,
          nlink,
          0,
          "",
          bytesToByteString(r.data),
          null,
        );
      }
      if (r.kind === "sparse") return statLine(path, st, F.S_IFREG, r.size, nlink, 0, "", "", null);
      const hex = r.digest.toHex();
      return statLine(
        path,
        st,
        F.S_IFREG,
        r.size,
        nlink,
        0,
        hex.slice(0, 2) + "/" + hex.slice(2),
        "",
        hex,
      );
    }
    case "symlink":
      return statLine(path, st, F.S_IFLNK, c.target.length, nlink, 0, c.target, "", null);
    case "chr":
      return statLine(path, st, F.S_IFCHR, 0, nlink, c.rdev, "", "", null);
    case "blk":
      return statLine(path, st, F.S_IFBLK, 0, nlink, c.rdev, "", "", null);
    case "fifo":
      return statLine(path, st, F.S_IFIFO, 0, nlink, 0, "", "", null);
    case "socket":
      return statLine(path, st, F.S_IFSOCK, 0, nlink, 0, "", "", null);
  }
}

/**
 * Write a tree as a dumpfile: depth-first, entries in byte order, one `\n`-terminated line each.
 * The first occurrence of a multi-link leaf is written in full, later ones as hardlink lines.
 */
export function writeDumpfile(root: Directory): string {
  const nlinks = leafLinkCounts(root);
  const firstPath = new Map<Leaf, ByteString>();
  const out: string[] = [];
  const walk = (dir: Directory, path: ByteString) => {
    let n = 2;
    for (const c of dir.entries.values()) if (c.type === "dir") n++;
    out.push(statLine(path, dir.stat, F.S_IFDIR, 0, n, 0, "", "", null));
    const prefix = path === "/" ? "/" : path + "/";
    for (const [name, child] of dir.sortedEntries()) {
      const p = prefix + name;
      if (child.type === "dir") walk(child, p);
      else {
        const nl = nlinks.get(child) ?? 1;
        if (nl > 1) {
          const first = firstPath.get(child);
          if (first !== undefined) {
            out.push(escapeField(p) + " 0 @120000 - - - - 0.0 " + escapeField(first) + " - -");
            continue;
          }
          firstPath.set(child, p);
        }
        out.push(leafLine(p, child, nl));
      }
    }
  };
  walk(root, "/");
  return out.join("\n") + "\n";
}

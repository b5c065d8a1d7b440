/**
 * Pure parsing of tar headers (v7, ustar, GNU, PAX): just enough to know where each
 * entry's content is, how long it is and what the entry is called. No I/O.
 *
 * Numeric fields may be octal or GNU base-256; names may come from the ustar
 * `prefix`/`name` pair, a GNU `L`/`K` long-name entry or a PAX `path`/`linkpath` record,
 * and a PAX `size` record overrides the header's size.
 *
 * @module
 */

/** Tar block size: headers and content are padded to multiples of it. */
export const TAR_BLOCK_SIZE = 512;

/**
 * Largest PAX or GNU long-name extension body we buffer (1 MiB). Real ones are a few
 * hundred bytes; the cap keeps a hostile archive from making a parser allocate the
 * extension's declared size.
 */
export const MAX_TAR_EXTENSION_SIZE = 1024 * 1024;

/** A tar header (or extension body) that cannot be parsed. */
export class TarHeaderError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "TarHeaderError";
  /** What is wrong, e.g. `checksum mismatch`. */
  readonly reason: string;
  /** Make the error; `options.cause` carries the underlying error, if any. */
  constructor(reason: string, options?: ErrorOptions) {
    super(`Invalid tar header: ${reason}`, options);
    this.reason = reason;
  }
}

/** Entry types (the `typeflag` byte as a character; `"\0"` is an old-style regular file). */
export const TarType = {
  REGULAR: "0",
  REGULAR_OLD: "\0",
  HARDLINK: "1",
  SYMLINK: "2",
  CHAR: "3",
  BLOCK: "4",
  DIRECTORY: "5",
  FIFO: "6",
  CONTIGUOUS: "7",
  PAX_LOCAL: "x",
  PAX_GLOBAL: "g",
  GNU_LONGNAME: "L",
  GNU_LONGLINK: "K",
  GNU_SPARSE: "S",
} as const;

/** Header format, from the magic field. */
export type TarFormat = "v7" | "ustar" | "gnu";

/** One parsed 512-byte header block (raw fields, before extensions are applied). */
export interface TarHeader {
  /** `prefix + "/" + name` for ustar, else `name` (bytes up to the first NUL). */
  name: Uint8Array;
  /** Link target (bytes up to the first NUL). */
  linkname: Uint8Array;
  /** Permission and mode bits. */
  mode: number;
  /** Owner uid. */
  uid: number;
  /** Owner gid. */
  gid: number;
  /** Size field (bytes of content following the header, for types that have content). */
  size: number;
  /** Modification time (seconds). */
  mtime: number;
  /** Type flag character. */
  typeflag: string;
  /** Which header format the magic says. */
  format: TarFormat;
}

/** An entry with every extension (GNU long names, PAX records) applied. */
export interface TarEntry {
  /** The entry path (bytes; usually UTF-8). */
  path: Uint8Array;
  /** The link target for hard and symbolic links. */
  linkpath: Uint8Array;
  /** Type flag character. */
  typeflag: string;
  /** Mode bits from the header. */
  mode: number;
  /** Effective size (PAX `size` wins over the header field). */
  size: number;
  /** Bytes of content that follow the header (0 for header-only types), before padding. */
  contentSize: number;
  /**
   * A GNU sparse file (type `S`, or PAX `GNU.sparse.*` records): the content in the archive
   * is a sparse map plus data, not the file's bytes.
   */
  sparse: boolean;
}

const utf8 = new TextDecoder();

/** Bytes of `b` up to the first NUL. */
function cstring(b: Uint8Array): Uint8Array {
  const z = b.indexOf(0);
  return z < 0 ? b : b.subarray(0, z);
}

/**
 * Parse a numeric header field: octal digits (leading spaces/NULs allowed, ended by a
 * space or NUL) or GNU base-256 (high bit of the first byte set, big-endian).
 *
 * @throws {TarHeaderError} for a non-octal digit, a negative base-256 value, or a value
 *   above `Number.MAX_SAFE_INTEGER`.
 */
export function parseTarNumber(field: Uint8Array, what = "numeric field"): number {
  if (field.length > 0 && (field[0] & 0x80) !== 0) {
    if ((field[0] & 0x40) !== 0) throw new TarHeaderError(`negative base-256 ${what}`);
    let v = BigInt(field[0] & 0x3f);
    for (let i = 1; i < field.length; i++) v = (v << 8n) | BigInt(field[i]);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new TarHeaderError(`${what} too large`);
    return Number(v);
  }
  let i = 0;
  while (i < field.length && (field[i] === 0x20 || field[i] === 0)) i++;
  let v = 0;
  for (; i < field.length; i++) {
    const c = field[i];
    if (c === 0x20 || c === 0) break;
    if (c < 0x30 || c > 0x37) {
      throw new TarHeaderError(`${what} has non-octal byte 0x${c.toString(16)}`);
    }
    v = v * 8 + (c - 0x30);
    if (v > Number.MAX_SAFE_INTEGER) throw new TarHeaderError(`${what} too large`);
  }
  return v;
}

/** True when every byte of the block is zero (end-of-archive marker). */
export function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

/**
 * Parse one 512-byte header block. Returns `null` for an all-zero block (end of archive).
 *
 * The checksum is verified (unsigned sum, or the signed sum some old tars wrote).
 *
 * @throws {TarHeaderError} wrong block size, checksum mismatch, malformed numbers.
 *
 * @example
 * ```ts
 * import { parseTarHeader } from "./tar_header.ts";
 * import assert from "node:assert/strict";
 * const block = new Uint8Array(512);
 * const put = (off: number, s: string) => block.set(new TextEncoder().encode(s), off);
 * put(0, "hello.txt"); put(100, "0000644"); put(124, "00000000005"); put(156, "0");
 * put(257, "ustar\x0000");
 * put(148, "        ");
 * const sum = block.reduce((a, b) => a + b, 0);
 * put(148, sum.toString(8).padStart(6, "0") + "\0 ");
 * const h = parseTarHeader(block)!;
 * assert.equal(new TextDecoder().decode(h.name), "hello.txt");
 * assert.equal(h.size, 5);
 * assert.equal(parseTarHeader(new Uint8Array(512)), null);
 * ```
 */
export function parseTarHeader(block: Uint8Array): TarHeader | null {
  if (block.length !== TAR_BLOCK_SIZE) {
    throw new TarHeaderError(`header block is ${block.length} bytes, not ${TAR_BLOCK_SIZE}`);
  }
  if (isZeroBlock(block)) return null;
  const stored = parseTarNumber(block.subarray(148, 156), "checksum");
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < TAR_BLOCK_SIZE; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  if (stored !== unsigned && stored !== signed) {
    throw new TarHeaderError(`checksum mismatch (stored ${stored}, computed ${unsigned})`);
  }
  const magic = block.subarray(257, 265);
  let format: TarFormat = "v7";
  if (magic[0] === 0x75 && utf8.decode(magic.subarray(0, 5)) === "ustar") {
    format = magic[5] === 0x20 ? "gnu" : "ustar";
  }
  let name = cstring(block.subarray(0, 100));
  if (format === "ustar") {
    const prefix = cstring(block.subarray(345, 500));
    if (prefix.length > 0) {
      const joined = new Uint8Array(prefix.length + 1 + name.length);
      joined.set(prefix);
      joined[prefix.length] = 0x2f;
      joined.set(name, prefix.length + 1);
      name = joined;
    }
  }
  return {
    name: name.slice(),
    linkname: cstring(block.subarray(157, 257)).slice(),
    mode: parseTarNumber(block.subarray(100, 108), "mode"),
    uid: parseTarNumber(block.subarray(108, 116), "uid"),
    gid: parseTarNumber(block.subarray(116, 124), "gid"),
    size: parseTarNumber(block.subarray(124, 136), "size"),
    mtime: parseTarNumber(block.subarray(136, 148), "mtime"),
    typeflag: String.fromCharCode(block[156]),
    format,
  };
}

/**
 * Parse a PAX extended header body: records `"<len> <key>=<value>\n"`, where `<len>` counts
 * the whole record. Values are returned as bytes (paths need not be UTF-8). A later record
 * for the same key wins.
 *
 * @throws {TarHeaderError} malformed record.
 *
 * @example
 * ```ts
 * import { parsePaxRecords } from "./tar_header.ts";
 * import assert from "node:assert/strict";
 * const recs = parsePaxRecords(new TextEncoder().encode("12 size=100\n13 path=a/bc\n"));
 * assert.equal(new TextDecoder().decode(recs.get("size")), "100");
 * assert.equal(new TextDecoder().decode(recs.get("path")), "a/bc");
 * ```
 */
export function parsePaxRecords(data: Uint8Array): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  let pos = 0;
  while (pos < data.length) {
    // A PAX body may be NUL-padded at the end.
    if (data[pos] === 0) break;
    const sp = data.indexOf(0x20, pos);
    if (sp < 0) throw new TarHeaderError("PAX record without a length");
    const lenStr = utf8.decode(data.subarray(pos, sp));
    if (!/^[0-9]+$/.test(lenStr)) throw new TarHeaderError(`PAX record length "${lenStr}"`);
    const len = Number(lenStr);
    const end = pos + len;
    if (len <= sp - pos + 1 || end > data.length || data[end - 1] !== 0x0a) {
      throw new TarHeaderError(`PAX record length ${len} does not frame a record`);
    }
    const rec = data.subarray(sp + 1, end - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw new TarHeaderError("PAX record without a key");
    out.set(utf8.decode(rec.subarray(0, eq)), rec.slice(eq + 1));
    pos = end;
  }
  return out;
}

/** Types whose header is the whole entry: their size field is not content (as Go's archive/tar). */
const HEADER_ONLY_TYPES = new Set<string>([
  TarType.HARDLINK,
  TarType.SYMLINK,
  TarType.CHAR,
  TarType.BLOCK,
  TarType.DIRECTORY,
  TarType.FIFO,
]);

/** Bytes of content after a header with this type and size (0 for header-only types). */
export function tarContentSize(typeflag: string, size: number): number {
  return HEADER_ONLY_TYPES.has(typeflag) ? 0 : size;
}

/** `size` rounded up to whole blocks. */
export function tarPaddedSize(size: number): number {
  return Math.ceil(size / TAR_BLOCK_SIZE) * TAR_BLOCK_SIZE;
}

/** True for headers whose content describes the next entry (PAX `x`/`g`, GNU `L`/`K`). */
export function isTarExtension(typeflag: string): boolean {
  return typeflag === TarType.PAX_LOCAL || typeflag === TarType.PAX_GLOBAL ||
    typeflag === TarType.GNU_LONGNAME || typeflag === TarType.GNU_LONGLINK;
}

function hasSparseRecord(records: Map<string, Uint8Array>): boolean {
  for (const k of records.keys()) if (k.startsWith("GNU.sparse.")) return true;
  return false;
}

function paxSize(v: Uint8Array): number {
  const s = utf8.decode(v);
  if (!/^[0-9]+$/.test(s) || Number(s) > Number.MAX_SAFE_INTEGER) {
    throw new TarHeaderError(`PAX size "${s}"`);
  }
  return Number(s);
}

/**
 * Applies extension entries to the entries that follow them. Feed every header in order:
 * {@link addExtension} for extension headers (with their content), {@link resolve} for the
 * others.
 *
 * @example
 * ```ts
 * import { TarEntryResolver, TarType } from "./tar_header.ts";
 * import assert from "node:assert/strict";
 * const r = new TarEntryResolver();
 * const base = { linkname: new Uint8Array(), mode: 0o644, uid: 0, gid: 0, mtime: 0,
 *   format: "gnu" as const };
 * r.addExtension({ ...base, name: new TextEncoder().encode("././@LongLink"), size: 8,
 *   typeflag: TarType.GNU_LONGNAME }, new TextEncoder().encode("long/nm\0"));
 * const e = r.resolve({ ...base, name: new TextEncoder().encode("long/n"), size: 3,
 *   typeflag: TarType.REGULAR });
 * assert.equal(new TextDecoder().decode(e.path), "long/nm");
 * assert.equal(e.contentSize, 3);
 * ```
 */
export class TarEntryResolver {
  #global = new Map<string, Uint8Array>();
  #local = new Map<string, Uint8Array>();
  #longName: Uint8Array | undefined;
  #longLink: Uint8Array | undefined;

  /**
   * Record an extension entry's content for the entries that follow.
   *
   * @throws {TarHeaderError} not an extension type, or malformed PAX records.
   */
  addExtension(header: TarHeader, content: Uint8Array): void {
    switch (header.typeflag) {
      case TarType.PAX_LOCAL:
        for (const [k, v] of parsePaxRecords(content)) this.#local.set(k, v);
        break;
      case TarType.PAX_GLOBAL:
        for (const [k, v] of parsePaxRecords(content)) this.#global.set(k, v);
        break;
      case TarType.GNU_LONGNAME:
        this.#longName = cstring(content).slice();
        break;
      case TarType.GNU_LONGLINK:
        this.#longLink = cstring(content).slice();
        break;
      default:
        throw new TarHeaderError(`type "${header.typeflag}" is not an extension`);
    }
  }

  /** The effective entry for a non-extension header; clears the pending local extensions. */
  resolve(header: TarHeader): TarEntry {
    const rec = (k: string) => this.#local.get(k) ?? this.#global.get(k);
    const sizeRec = rec("size");
    const size = sizeRec !== undefined ? paxSize(sizeRec) : header.size;
    const entry: TarEntry = {
      path: rec("path") ?? this.#longName ?? header.name,
      linkpath: rec("linkpath") ?? this.#longLink ?? header.linkname,
      typeflag: header.typeflag,
      mode: header.mode,
      size,
      contentSize: tarContentSize(header.typeflag, size),
      sparse: header.typeflag === TarType.GNU_SPARSE || hasSparseRecord(this.#local) ||
        hasSparseRecord(this.#global),
    };
    this.#local.clear();
    this.#longName = undefined;
    this.#longLink = undefined;
    return entry;
  }
}

/**
 * A small, deterministic tar writer (ustar headers, PAX records for what ustar cannot hold).
 * Used to build OCI layers for the demo and for tests that need exact, reproducible tars.
 *
 * @module
 */

import { concatBytes } from "../bytes.ts";

/** Tar block size: every header and every content padding unit is 512 bytes. */
const BLOCK = 512;
/** ustar's name field holds 100 bytes; longer paths go to the prefix field or a PAX record. */
const NAME_LEN = 100;
/** ustar's prefix field holds 155 bytes. */
const PREFIX_LEN = 155;
/** Largest size that fits the 11-digit octal size field (8 GiB - 1). */
const MAX_OCTAL_SIZE = 0o77777777777;

/** One entry to write. */
export interface TarEntry {
  /** Path inside the archive, without a leading `/`; directories may end with `/`. */
  path: string;
  /** Entry kind. */
  type: "file" | "dir" | "symlink" | "hardlink";
  /** Permission bits (e.g. 0o644). */
  mode?: number;
  /** Owner uid. */
  uid?: number;
  /** Owner gid. */
  gid?: number;
  /** Modification time, seconds since the epoch. */
  mtime?: number;
  /** Content of a regular file. */
  content?: Uint8Array;
  /** Target of a symlink or hardlink. */
  linkname?: string;
  /** Extended attributes, written as `SCHILY.xattr.<name>` PAX records. */
  xattrs?: Record<string, string>;
}

const enc = new TextEncoder();

function octal(buf: Uint8Array, off: number, len: number, value: number): void {
  const s = value.toString(8).padStart(len - 1, "0");
  buf.set(enc.encode(s), off);
  buf[off + len - 1] = 0;
}

function paxRecord(key: string, value: string): Uint8Array {
  const body = ` ${key}=${value}\n`;
  const bodyLen = enc.encode(body).length;
  let len = bodyLen + 1;
  while (String(len).length + bodyLen !== len) len = String(len).length + bodyLen;
  return enc.encode(`${len}${body}`);
}

function header(
  name: string,
  prefix: string,
  typeflag: string,
  size: number,
  e: Pick<TarEntry, "mode" | "uid" | "gid" | "mtime" | "linkname">,
): Uint8Array {
  const h = new Uint8Array(BLOCK);
  h.set(enc.encode(name).subarray(0, NAME_LEN), 0);
  octal(h, 100, 8, e.mode ?? 0o644);
  octal(h, 108, 8, e.uid ?? 0);
  octal(h, 116, 8, e.gid ?? 0);
  octal(h, 124, 12, size);
  octal(h, 136, 12, e.mtime ?? 0);
  h.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  h[156] = typeflag.charCodeAt(0);
  if (e.linkname) h.set(enc.encode(e.linkname).subarray(0, 100), 157);
  h.set(enc.encode("ustar\x0000"), 257);
  octal(h, 329, 8, 0);
  octal(h, 337, 8, 0);
  h.set(enc.encode(prefix).subarray(0, PREFIX_LEN), 345);
  let sum = 0;
  for (const b of h) sum += b;
  const cs = sum.toString(8).padStart(6, "0");
  h.set(enc.encode(cs), 148);
  h[154] = 0;
  h[155] = 0x20;
  return h;
}

function padTo(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

/** Split a path into ustar (prefix, name) if possible. */
function splitUstar(path: string): [string, string] | null {
  if (enc.encode(path).length <= NAME_LEN) return ["", path];
  for (let i = path.length - 1; i > 0; i--) {
    if (path[i] !== "/") continue;
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (enc.encode(prefix).length <= PREFIX_LEN && enc.encode(name).length <= NAME_LEN && name) {
      return [prefix, name];
    }
  }
  return null;
}

/** Encode one entry (PAX header if needed, ustar header, content, padding). */
export function encodeTarEntry(e: TarEntry): Uint8Array[] {
  const out: Uint8Array[] = [];
  const content = e.type === "file" ? (e.content ?? new Uint8Array(0)) : new Uint8Array(0);
  const typeflag = { file: "0", dir: "5", symlink: "2", hardlink: "1" }[e.type];
  const pax: Uint8Array[] = [];
  let split = splitUstar(e.path);
  if (!split) {
    pax.push(paxRecord("path", e.path));
    split = ["", e.path.slice(-NAME_LEN).replace(/^\/+/, "")];
  }
  if (e.linkname && enc.encode(e.linkname).length > 100) {
    pax.push(paxRecord("linkpath", e.linkname));
  }
  if (content.length > MAX_OCTAL_SIZE) pax.push(paxRecord("size", String(content.length)));
  for (const [k, v] of Object.entries(e.xattrs ?? {})) pax.push(paxRecord(`SCHILY.xattr.${k}`, v));
  if (pax.length) {
    const body = new Uint8Array(pax.reduce((n, r) => n + r.length, 0));
    let off = 0;
    for (const r of pax) {
      body.set(r, off);
      off += r.length;
    }
    out.push(header(`PaxHeaders/${split[1]}`.slice(0, NAME_LEN), "", "x", body.length, {}));
    out.push(body, new Uint8Array(padTo(body.length)));
  }
  out.push(
    header(split[1], split[0], typeflag, Math.min(content.length, MAX_OCTAL_SIZE), e),
  );
  if (content.length) out.push(content, new Uint8Array(padTo(content.length)));
  return out.filter((b) => b.length > 0);
}

/** A whole archive: the entries followed by the two zero blocks of the end marker. */
export function encodeTar(entries: TarEntry[]): Uint8Array {
  const parts = entries.flatMap(encodeTarEntry);
  parts.push(new Uint8Array(2 * BLOCK));
  return concatBytes(parts);
}

/**
 * Object IDs (fs-verity digests as bytes) and their names in `objects/` (repository-format
 * §1.3): `XX/<rest>`, lowercase hex.
 *
 * @module
 */

import { digestSize, type HashAlgorithm } from "../fsverity/algorithm.ts";

/** An object ID: the raw fs-verity digest (32 or 64 bytes). */
export type ObjectId = Uint8Array;

/** A string that is not a valid object name / hex digest / symlink target. */
export class InvalidObjectIdError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "InvalidObjectIdError";
  /** The rejected text. */
  readonly value: string;
  /** Create the error from its structured fields. */
  constructor(value: string, why: string) {
    super(`Invalid object ID "${value}": ${why}`);
    this.value = value;
  }
}

/**
 * Lowercase hex of bytes: the code base's one hex encoder, V8's native
 * `Uint8Array.prototype.toHex` (about 10× faster than a lookup-table loop for a digest).
 */
export function toHex(id: Uint8Array): string {
  return id.toHex();
}

/** Parse hex (upper or lower case) of exactly `size` bytes. */
export function fromHex(hex: string, size?: number): Uint8Array<ArrayBuffer> {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new InvalidObjectIdError(hex, "not an even-length hex string");
  }
  if (size !== undefined && hex.length !== size * 2) {
    throw new InvalidObjectIdError(hex, `expected ${size * 2} hex characters`);
  }
  return Uint8Array.fromHex(hex);
}

/** Parse a full hex digest for `alg`. */
export function parseHexId(hex: string, alg: HashAlgorithm): Uint8Array<ArrayBuffer> {
  return fromHex(hex, digestSize(alg));
}

/** `XX/<rest>`: the object's path below `objects/`. */
export function objectPathOf(id: Uint8Array): string {
  const h = toHex(id);
  return `${h.slice(0, 2)}/${h.slice(2)}`;
}

/** The `objects/` directory name (`XX`) for an id's first byte. */
export function objectDirName(first: number): string {
  return Uint8Array.of(first).toHex();
}

/** `sha256:<hex>` / `sha512:<hex>` (cfsctl's `to_id`). */
export function toIdString(id: Uint8Array, alg: HashAlgorithm): string {
  return `${alg}:${toHex(id)}`;
}

/**
 * Parse an object from its directory entry: `dir` is the `XX` name, `name` must be exactly
 * `2*(N-1)` hex characters.
 */
export function parseObjectEntry(dir: string, name: string, alg: HashAlgorithm): Uint8Array {
  const n = digestSize(alg);
  if (!/^[0-9a-f]{2}$/.test(dir)) throw new InvalidObjectIdError(`${dir}/${name}`, "bad directory");
  if (name.length !== 2 * (n - 1)) {
    throw new InvalidObjectIdError(`${dir}/${name}`, `expected ${2 * (n - 1)} hex characters`);
  }
  return fromHex(dir + name, n);
}

/**
 * Parse a symlink target that ends in `XX/<rest>`: the last `2N+1` characters, with `/` at
 * position 2 (any prefix is ignored, as composefs-rs does).
 */
export function parseObjectLinkTarget(target: string, alg: HashAlgorithm): Uint8Array {
  const n = digestSize(alg);
  const len = 2 * n + 1;
  if (target.length < len) throw new InvalidObjectIdError(target, "symlink target too short");
  const tail = target.slice(target.length - len);
  if (tail[2] !== "/") throw new InvalidObjectIdError(target, "no '/' after the first byte");
  return fromHex(tail.slice(0, 2) + tail.slice(3), n);
}

/** Byte equality of two ids. */
export function idEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

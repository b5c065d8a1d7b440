/**
 * OCI content digests (`sha256:<64 hex>`): parsing, validation and computation.
 *
 * OCI digests are always sha256 here, whatever the repository's fs-verity algorithm
 * (repository-format §4.10). Other registered algorithms (`sha512:`) are parsed so that a
 * layout using them gets a clear "unsupported" error rather than a parse error.
 *
 * @module
 */

import { Sha256, sha256 } from "../../ffi/libcrypto.ts";

/** Hex length of each supported OCI digest algorithm. */
const DIGEST_HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha512: 128 };

/** A digest string that does not have the `<alg>:<lowercase hex>` shape. */
export class InvalidDigestError extends Error {
  override name = "InvalidDigestError";
  /** The rejected string. */
  readonly digest: string;
  /** Why it was rejected. */
  readonly reason: string;
  constructor(digest: string, reason: string, options?: ErrorOptions) {
    super(`Invalid digest "${digest}": ${reason}`, options);
    this.digest = digest;
    this.reason = reason;
  }
}

/** A parsed OCI digest. */
export interface ParsedDigest {
  /** Algorithm name, e.g. `sha256`. */
  algorithm: string;
  /** Lowercase hex. */
  hex: string;
}

/**
 * Parse and validate an OCI digest string. Only `sha256` and `sha512` with lowercase hex of
 * the right length are accepted (the OCI spec's registered algorithms).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDigest, sha256Digest } from "./digest.ts";
 * const d = sha256Digest(new TextEncoder().encode("hello world"));
 * assert.equal(d, "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
 * assert.equal(parseDigest(d).algorithm, "sha256");
 * ```
 */
export function parseDigest(digest: string): ParsedDigest {
  const colon = digest.indexOf(":");
  if (colon <= 0) throw new InvalidDigestError(digest, "expected <algorithm>:<hex>");
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  const len = DIGEST_HEX_LENGTH[algorithm];
  if (len === undefined) {
    throw new InvalidDigestError(digest, `unsupported algorithm "${algorithm}"`);
  }
  if (hex.length !== len || !/^[0-9a-f]+$/.test(hex)) {
    throw new InvalidDigestError(digest, `expected ${len} lowercase hex digits`);
  }
  return { algorithm, hex };
}

/** True when `digest` is a valid `sha256:<64 lowercase hex>` string. */
export function isSha256Digest(digest: string): boolean {
  return /^sha256:[0-9a-f]{64}$/.test(digest);
}

/** Parse a digest and require sha256 (the only algorithm OCI storage here uses). */
export function parseSha256Digest(digest: string): string {
  const d = parseDigest(digest);
  if (d.algorithm !== "sha256") {
    throw new InvalidDigestError(digest, `unsupported algorithm "${d.algorithm}"`);
  }
  return d.hex;
}

/** `sha256:<hex>` of `bytes`. */
export function sha256Digest(bytes: Uint8Array): string {
  return "sha256:" + sha256(bytes).toHex();
}

/**
 * An incremental `sha256:` digest over a stream of chunks, plus a byte count.
 * Disposable: frees the underlying libcrypto context.
 */
export class DigestHasher implements Disposable {
  #h = new Sha256();
  #size = 0;

  /** Feed bytes. */
  update(bytes: Uint8Array): void {
    this.#h.update(bytes);
    this.#size += bytes.length;
  }

  /** Bytes hashed so far. */
  get size(): number {
    return this.#size;
  }

  /** Finish: `sha256:<hex>`. */
  digest(): string {
    return "sha256:" + this.#h.digest().toHex();
  }

  [Symbol.dispose](): void {
    this.#h[Symbol.dispose]();
  }
}

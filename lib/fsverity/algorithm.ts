/**
 * fs-verity hash algorithms as composefs uses them: SHA-256 or SHA-512 over 4 KiB blocks,
 * no salt (repository-format §2.1), named `fsverity-<hash>-12` in `meta.json` (§1.2).
 *
 * @module
 */

/** The hash of an fs-verity Merkle tree (and of object IDs). */
export type HashAlgorithm = "sha256" | "sha512";

/** Both algorithms, in kernel-id order. */
export const HASH_ALGORITHMS: readonly HashAlgorithm[] = ["sha256", "sha512"];

/** log2 of the Merkle tree block size; composefs only uses 4096-byte blocks. */
export const LG_BLOCK_SIZE = 12;

/** The Merkle tree block size in bytes (`1 << LG_BLOCK_SIZE`). */
export const BLOCK_SIZE = 1 << LG_BLOCK_SIZE;

/** Digest length in bytes: 32 for sha256, 64 for sha512. */
export function digestSize(alg: HashAlgorithm): 32 | 64 {
  return alg === "sha256" ? 32 : 64;
}

/** The kernel's `FS_VERITY_HASH_ALG_*` number: 1 = sha256, 2 = sha512 (linux/fsverity.h). */
export function kernelHashId(alg: HashAlgorithm): 1 | 2 {
  return alg === "sha256" ? 1 : 2;
}

/** The algorithm for a kernel hash id, or `undefined` for an unknown id. */
export function algorithmFromKernelId(id: number): HashAlgorithm | undefined {
  return id === 1 ? "sha256" : id === 2 ? "sha512" : undefined;
}

/** A malformed or unsupported `fsverity-<hash>-<lg_blocksize>` algorithm name. */
export class InvalidAlgorithmError extends Error {
  /** Error name. */
  override name = "InvalidAlgorithmError";
  /** The name that was rejected. */
  readonly value: string;

  /** Reject `value` because of `why`. */
  constructor(value: string, why: string, options?: ErrorOptions) {
    super(`Invalid fs-verity algorithm "${value}": ${why}`, options);
    this.value = value;
  }
}

const PREFIX = "fsverity-";

/**
 * Parse `fsverity-sha256-12` / `fsverity-sha512-12` (composefs `meta.json` "algorithm").
 * Like composefs-rs: prefix `fsverity-`, split at the last `-`, the block size must parse as
 * a u8 and equal 12, the hash must be sha256 or sha512.
 */
export function parseAlgorithmName(name: string): HashAlgorithm {
  if (!name.startsWith(PREFIX)) throw new InvalidAlgorithmError(name, `missing "${PREFIX}"`);
  const rest = name.slice(PREFIX.length);
  const dash = rest.lastIndexOf("-");
  if (dash < 0) throw new InvalidAlgorithmError(name, "missing block size");
  const hash = rest.slice(0, dash);
  const lg = rest.slice(dash + 1);
  // Rust's u8::from_str: optional "+", decimal digits, value ≤ 255.
  if (!/^\+?[0-9]+$/.test(lg) || Number(lg.replace("+", "")) > 255) {
    throw new InvalidAlgorithmError(name, `block size "${lg}" is not a u8`);
  }
  if (Number(lg.replace("+", "")) !== LG_BLOCK_SIZE) {
    throw new InvalidAlgorithmError(name, `only lg_blocksize ${LG_BLOCK_SIZE} is supported`);
  }
  if (hash !== "sha256" && hash !== "sha512") {
    throw new InvalidAlgorithmError(name, `unsupported hash "${hash}"`);
  }
  return hash;
}

/** The `meta.json` name of an algorithm: `fsverity-sha256-12` or `fsverity-sha512-12`. */
export function formatAlgorithmName(alg: HashAlgorithm): string {
  return `${PREFIX}${alg}-${LG_BLOCK_SIZE}`;
}

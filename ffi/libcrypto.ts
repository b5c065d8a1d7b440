/**
 * SHA-256 / SHA-512 through OpenSSL's libcrypto: the only `Deno.dlopen("libcrypto.so.3")`
 * in the project (DESIGN decision 5).
 *
 * Per-block one-shot `SHA256()`/`SHA512()` calls with `buffer` arguments are the fastest way
 * to hash fs-verity's 4 KiB blocks from Deno (≈0.3 µs FFI overhead per call, see
 * deno-ffi-notes §6). Streams (OCI digests, diff_ids) use an `EVP_MD_CTX` per hasher.
 * When libcrypto cannot be loaded, everything falls back to `node:crypto` (≈2.5× slower).
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";

/** A hash algorithm libcrypto provides here. */
export type ShaAlgorithm = "sha256" | "sha512";

/** Digest length in bytes of each algorithm. */
export const SHA_DIGEST_SIZE: Readonly<Record<ShaAlgorithm, number>> = {
  sha256: 32,
  sha512: 64,
};

const SYMBOLS = {
  // unsigned char *SHA256(const unsigned char *d, size_t n, unsigned char *md);
  // The result (== md) is declared void: not wrapping it in a pointer object per 4 KiB block
  // keeps the call on V8's fast path.
  SHA256: { parameters: ["buffer", "usize", "buffer"], result: "void" },
  // unsigned char *SHA512(const unsigned char *d, size_t n, unsigned char *md);
  SHA512: { parameters: ["buffer", "usize", "buffer"], result: "void" },
  // const EVP_MD *EVP_sha256(void);
  EVP_sha256: { parameters: [], result: "pointer" },
  // const EVP_MD *EVP_sha512(void);
  EVP_sha512: { parameters: [], result: "pointer" },
  // EVP_MD_CTX *EVP_MD_CTX_new(void);
  EVP_MD_CTX_new: { parameters: [], result: "pointer" },
  // void EVP_MD_CTX_free(EVP_MD_CTX *ctx);
  EVP_MD_CTX_free: { parameters: ["pointer"], result: "void" },
  // int EVP_DigestInit_ex(EVP_MD_CTX *ctx, const EVP_MD *type, ENGINE *impl);
  EVP_DigestInit_ex: { parameters: ["pointer", "pointer", "pointer"], result: "i32" },
  // int EVP_DigestUpdate(EVP_MD_CTX *ctx, const void *d, size_t cnt);
  EVP_DigestUpdate: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  // int EVP_DigestFinal_ex(EVP_MD_CTX *ctx, unsigned char *md, unsigned int *s);
  EVP_DigestFinal_ex: { parameters: ["pointer", "buffer", "pointer"], result: "i32" },
} as const;

type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** The library path; an absolute `--allow-ffi=<path>` must name the same string. */
const LIBCRYPTO = "libcrypto.so.3";

let lib: Symbols | null | undefined;

/** The libcrypto symbols, or null when the library cannot be loaded (node:crypto fallback). */
function crypto(): Symbols | null {
  if (lib === undefined) {
    try {
      lib = Deno.dlopen(LIBCRYPTO, SYMBOLS).symbols;
    } catch {
      // Deliberately not an error: the node:crypto fallback gives the same digests, slower.
      lib = null;
    }
  }
  return lib;
}

/** Which implementation hashes: `"libcrypto"` (FFI) or `"node:crypto"` (fallback). */
export function shaBackend(): "libcrypto" | "node:crypto" {
  return crypto() === null ? "node:crypto" : "libcrypto";
}

/** A failure inside libcrypto (an `EVP_*` call returned 0 or NULL). */
export class LibcryptoError extends Error {
  /** Error name. */
  override name = "LibcryptoError";
  /** The libcrypto function that failed. */
  readonly func: string;

  /** `func` returned failure. */
  constructor(func: string, options?: ErrorOptions) {
    super(`libcrypto call "${func}" failed`, options);
    this.func = func;
  }
}

// FFI `buffer` parameters are typed as ArrayBuffer-backed views; the native side accepts any view.
type Buf = Uint8Array<ArrayBuffer>;
const asBuf = (b: Uint8Array): Buf => b as Buf;

/**
 * Hash `data` with `alg` and write the digest into `out` (which must hold at least the digest
 * size). The allocation-free primitive used by the fs-verity Merkle tree.
 */
export function shaInto(alg: ShaAlgorithm, data: Uint8Array, out: Uint8Array): void {
  const c = crypto();
  if (c !== null) {
    if (alg === "sha256") c.SHA256(asBuf(data), BigInt(data.length), asBuf(out));
    else c.SHA512(asBuf(data), BigInt(data.length), asBuf(out));
    return;
  }
  out.set(createHash(alg).update(data).digest());
}

/**
 * Hash each consecutive `blockSize`-byte block of `src` (whose length must be a multiple of
 * `blockSize`) and store the digests back to back in `dst`. One FFI call per block, no
 * allocation beyond the subarray views.
 */
export function shaBlocksInto(
  alg: ShaAlgorithm,
  src: Uint8Array,
  blockSize: number,
  dst: Uint8Array,
): void {
  const n = src.length / blockSize;
  const ds = SHA_DIGEST_SIZE[alg];
  if (!Number.isInteger(n)) {
    throw new RangeError(`Input length ${src.length} is not a multiple of ${blockSize}`);
  }
  if (dst.length < n * ds) throw new RangeError(`Output too small for ${n} digests`);
  const c = crypto();
  if (c === null) {
    for (let i = 0; i < n; i++) {
      dst.set(
        createHash(alg).update(src.subarray(i * blockSize, (i + 1) * blockSize)).digest(),
        i * ds,
      );
    }
    return;
  }
  const fn = alg === "sha256" ? c.SHA256 : c.SHA512;
  const bs = blockSize;
  const bsBig = BigInt(bs);
  for (let i = 0, s = 0, d = 0; i < n; i++, s += bs, d += ds) {
    fn(asBuf(src.subarray(s, s + bs)), bsBig, asBuf(dst.subarray(d, d + ds)));
  }
}

/** SHA-256 of `data` in one call. */
export function sha256(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(32);
  shaInto("sha256", data, out);
  return out;
}

/** SHA-512 of `data` in one call. */
export function sha512(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(64);
  shaInto("sha512", data, out);
  return out;
}

/** Frees EVP_MD_CTXs of hashers that were dropped without dispose. */
const ctxFinalizer = new FinalizationRegistry<Deno.PointerObject>((ctx) => {
  crypto()?.EVP_MD_CTX_free(ctx);
});

/**
 * An incremental SHA-2 hasher over an `EVP_MD_CTX` (node:crypto when libcrypto is missing).
 * `digest()` finalizes it; dispose frees the context (a finalizer also does, as a safety net).
 */
export class ShaHasher implements Disposable {
  /** The algorithm. */
  readonly algorithm: ShaAlgorithm;
  #ctx: Deno.PointerObject | null = null;
  #node: Hash | null = null;
  #done = false;

  /** Start hashing with `alg`. */
  constructor(alg: ShaAlgorithm) {
    this.algorithm = alg;
    const c = crypto();
    if (c === null) {
      this.#node = createHash(alg);
      return;
    }
    const ctx = c.EVP_MD_CTX_new();
    if (ctx === null) throw new LibcryptoError("EVP_MD_CTX_new");
    const md = alg === "sha256" ? c.EVP_sha256() : c.EVP_sha512();
    if (c.EVP_DigestInit_ex(ctx, md, null) !== 1) {
      c.EVP_MD_CTX_free(ctx);
      throw new LibcryptoError("EVP_DigestInit_ex");
    }
    this.#ctx = ctx;
    ctxFinalizer.register(this, ctx, this);
  }

  /** Digest length in bytes. */
  get size(): number {
    return SHA_DIGEST_SIZE[this.algorithm];
  }

  /** Feed more bytes. */
  update(data: Uint8Array): this {
    if (this.#done) throw new TypeError("Hasher is already finalized");
    if (this.#node !== null) {
      this.#node.update(data);
    } else if (data.length > 0) {
      if (crypto()!.EVP_DigestUpdate(this.#live(), asBuf(data), BigInt(data.length)) !== 1) {
        throw new LibcryptoError("EVP_DigestUpdate");
      }
    }
    return this;
  }

  /** Finish and return the digest; the hasher cannot be updated afterwards. */
  digest(): Uint8Array {
    if (this.#done) throw new TypeError("Hasher is already finalized");
    this.#done = true;
    if (this.#node !== null) return new Uint8Array(this.#node.digest());
    const out = new Uint8Array(this.size);
    const ok = crypto()!.EVP_DigestFinal_ex(this.#live(), out, null);
    this.#free();
    if (ok !== 1) throw new LibcryptoError("EVP_DigestFinal_ex");
    return out;
  }

  #live(): Deno.PointerObject {
    if (this.#ctx === null) throw new TypeError("Hasher is disposed");
    return this.#ctx;
  }

  #free(): void {
    if (this.#ctx !== null) {
      ctxFinalizer.unregister(this);
      crypto()!.EVP_MD_CTX_free(this.#ctx);
      this.#ctx = null;
    }
  }

  /** Free the context; idempotent. */
  [Symbol.dispose](): void {
    this.#done = true;
    this.#node = null;
    this.#free();
  }
}

/** Incremental SHA-256 (OCI digests and diff_ids over streams). */
export class Sha256 extends ShaHasher {
  /** Start a SHA-256 hash. */
  constructor() {
    super("sha256");
  }
}

/** Incremental SHA-512. */
export class Sha512 extends ShaHasher {
  /** Start a SHA-512 hash. */
  constructor() {
    super("sha512");
  }
}

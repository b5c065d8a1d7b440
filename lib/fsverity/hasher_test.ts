import assert from "node:assert/strict";
import fc from "fast-check";
import { createHash } from "node:crypto";
import { fsverityDigest, FsVerityHasher } from "./hasher.ts";
import { fsverityDescriptor } from "./descriptor.ts";
import type { HashAlgorithm } from "./algorithm.ts";

const hex = (b: Uint8Array) => b.toHex();
const fill = (n: number, v: number) => new Uint8Array(n).fill(v);

/** The test helper of composefs-rs: gen(size, seed)[i] = ((i mod 256) + seed) mod 256 * 17 mod 256. */
function gen(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = ((((i % 256) + seed) % 256) * 17) % 256;
  return out;
}

/** Independent, naive reference: whole levels in memory, node:crypto hashes (spec §2.1-2.2). */
function reference(data: Uint8Array, alg: HashAlgorithm): string {
  const H = (b: Uint8Array) => new Uint8Array(createHash(alg).update(b).digest());
  const ds = alg === "sha256" ? 32 : 64;
  const blocks = (b: Uint8Array) => {
    const out: Uint8Array[] = [];
    for (let i = 0; i < b.length; i += 4096) {
      const blk = new Uint8Array(4096);
      blk.set(b.subarray(i, i + 4096));
      out.push(H(blk));
    }
    return out;
  };
  let root: Uint8Array = new Uint8Array(ds);
  if (data.length > 0) {
    let level = blocks(data);
    while (level.length > 1) {
      const cat = new Uint8Array(level.length * ds);
      level.forEach((h, i) => cat.set(h, i * ds));
      level = blocks(cat);
    }
    root = level[0];
  }
  const desc = new Uint8Array(256);
  desc[0] = 1;
  desc[1] = alg === "sha256" ? 1 : 2;
  desc[2] = 12;
  new DataView(desc.buffer).setBigUint64(8, BigInt(data.length), true);
  desc.set(root, 16);
  return hex(H(desc));
}

// repository-format §2.4 (sources and fsverity-utils-derived values).
const VECTORS: [string, Uint8Array, string, string | null][] = [
  [
    "hello world",
    new TextEncoder().encode("hello world"),
    "1e2eaa4202d750a41174ee454970b92c1bc2f925b1e35076d8c7d5f56362ba64",
    "18430270729d162d4e469daca123ae61893db4b0583d8f7081e3bf4f92b88ba514e7982f10733fb6aa895195c5ae8fd2eb2c47a8be05513ce5a0c51a6f570409",
  ],
  [
    "4095 x 00",
    fill(4095, 0),
    "5372beb83c78537c8970c8361e3254119fafdf1763854ecd57d3f0fe2da7c719",
    null,
  ],
  [
    "4096 x 00",
    fill(4096, 0),
    "babc284ee4ffe7f449377fbf6692715b43aec7bc39c094a95878904d34bac97e",
    null,
  ],
  [
    "4097 x 00",
    fill(4097, 0),
    "093756e4ea9683329106d4a16982682ed182c14bf076463a9e7f97305cbac743",
    null,
  ],
  [
    "empty",
    new Uint8Array(0),
    "3d248ca542a24fc62d1c43b916eae5016878e2533c88238480b26128a1f1af95",
    "ccf9e5aea1c2a64efa2f2354a6024b90dffde6bbc017825045dce374474e13d10adb9dadcc6ca8e17a3c075fbd31336e8f266ae6fa93a6c3bed66f9e784e5abf",
  ],
  [
    "1 x 00",
    fill(1, 0),
    "b803429503d95915829b29fdbc8bbad142f3abfd11b1cadf5526582e685c0551",
    "9fcf5172b085b1c8f9365eecb37a1869e193a4705654a5829f11939cd01d5c0fd97276be8cd9d49f76cfc8dcfeb80f8128e3548a1de50b56912b9e3fc7bde27b",
  ],
  [
    "4096 x 5a",
    fill(4096, 0x5a),
    "dae733f4cb5a63767cb1041a2bd774ca90c91dfd490554e5edab17886d474600",
    "17060cff50b93c9fd092ec791ae719fe1e158a3464ad201092affc037fde252aadfbf44eceac836e76317536ea96684ab5a89562d41067583dc2090095f46034",
  ],
  [
    "4097 x 5a",
    fill(4097, 0x5a),
    "d2619d9db529bfcc1b0179d7f22a3275ef40456580ebd246fb1c0faa70cc1f6c",
    "fc1aa4d2aeb1f623ac4c200411eb8529a913f8591af998a357a6462746d9ac163601f975dc0b9b78bf0790f7d3af548e355dccc1b31562b21e1a7f8ee8829ae3",
  ],
  [
    "64*4096+1 x 5a",
    fill(64 * 4096 + 1, 0x5a),
    "db90d7fe2fb0876a440d8bad9483f26ca3a68203e733b0877a7ee91674d19515",
    "ba55b464501c641d2af19858190dc31fd26a5c80da4fdde083aecf096d01e82275eb8c085c0bfc61bbededa0a2badc91daf716d770a36d4406cd68789f3a9129",
  ],
  [
    "128*4096 x 5a",
    fill(128 * 4096, 0x5a),
    "fa6dd50c6117479a8e0691104fd19c93263b8fc12c56a7c581d36a1fe2990845",
    "8f0cc42dcde59bbb14d7b0aa07c9d1c9d80610686f44eec56562f8b075f3ea836c2391b1b1073fee2ee16bbdcc1eea16f7b12139e743325edbfd6efd0aa19c07",
  ],
  [
    "128*4096+1 x 5a",
    fill(128 * 4096 + 1, 0x5a),
    "44a3ceba1c1a2896d0002c3b1e15f332291e8ef3c4760f14531061f17d6dc423",
    "14c1f43801057313ebfd3feef70bf60e0a5a03390101bfdcd043c42f8333020dae5482b864c2b82d05e4b4ababd9f52182a62fb0502b550415c00038ac2f6ee6",
  ],
  [
    "gen(65536, 2)",
    gen(65536, 2),
    "48082e6e540b111ea59d1119028789dae7a93bf267e11032eb1e84516bfee97e",
    "bf20300c62f4fa3882a31e3dec8f776da5c077556eb048fcb928eeda0c8b2ba451941e0a8dae44dd91f5a7599a87f39b712c20c2d3b5beec30e0d9b2848d642e",
  ],
  [
    "1000 x 00",
    fill(1000, 0),
    "f6fa43bbc0a7908e2ef77438244159e9dec289dfc4c49d229237f9797a6a9b79",
    null,
  ],
  [
    "2000 x 00",
    fill(2000, 0),
    "f13c0c1a5b8bc8b8983be2761bae9dd229cc951b260dab7b2558987542c45c23",
    null,
  ],
  [
    "3000 x 00",
    fill(3000, 0),
    "0000610752b6366b2bd42ce92fa0c0089bc132408b8f3dc20f879a06d0e05aaf",
    null,
  ],
];

Deno.test("fsverity: spec known-answer vectors (§2.4)", () => {
  for (const [name, data, s256, s512] of VECTORS) {
    assert.equal(hex(fsverityDigest(data, "sha256")), s256, `${name} sha256`);
    if (s512 !== null) assert.equal(hex(fsverityDigest(data, "sha512")), s512, `${name} sha512`);
  }
});

Deno.test("fsverity: spec vectors byte by byte", () => {
  for (const [name, data, s256] of VECTORS.slice(0, 6)) {
    const h = new FsVerityHasher("sha256");
    for (let i = 0; i < data.length; i++) h.update(data.subarray(i, i + 1));
    assert.equal(h.size, data.length);
    assert.equal(hex(h.digest()), s256, name);
  }
});

Deno.test("fsverity: agrees with a naive reference across level boundaries", () => {
  // sha512 arity 64: 64*64 blocks = a 3-level tree at 16 MiB; sha256 arity 128.
  const sizes = [
    63 * 4096,
    64 * 4096,
    64 * 4096 + 1,
    127 * 4096 + 5,
    128 * 4096 - 1,
    129 * 4096,
    64 * 64 * 4096 - 1,
    64 * 64 * 4096,
    64 * 64 * 4096 + 1,
  ];
  const big = gen(64 * 64 * 4096 + 1, 7);
  for (const alg of ["sha256", "sha512"] as const) {
    for (const n of sizes) {
      assert.equal(
        hex(fsverityDigest(big.subarray(0, n), alg)),
        reference(big.subarray(0, n), alg),
        `${alg} ${n}`,
      );
    }
  }
});

Deno.test("fsverity: descriptor layout", () => {
  const root = new Uint8Array(32).fill(0xab);
  const d = fsverityDescriptor("sha256", 0x0102030405, root);
  assert.equal(d.length, 256);
  assert.deepEqual([...d.subarray(0, 16)], [1, 1, 12, 0, 0, 0, 0, 0, 5, 4, 3, 2, 1, 0, 0, 0]);
  assert.deepEqual(d.subarray(16, 48), root);
  assert.ok(d.subarray(48).every((b) => b === 0));
  assert.equal(fsverityDescriptor("sha512", 1, new Uint8Array(64))[1], 2);
  assert.throws(() => fsverityDescriptor("sha512", 1, root), RangeError);
});

Deno.test("fsverity: finalized hasher refuses more input", () => {
  const h = new FsVerityHasher("sha256");
  h.update(new Uint8Array(10));
  h.digest();
  assert.throws(() => h.update(new Uint8Array(1)), TypeError);
  assert.throws(() => h.digest(), TypeError);
});

Deno.test("fsverity: any update() chunking gives the same digest (property)", () => {
  const data = gen(130 * 4096 + 77, 11);
  const expected = {
    sha256: reference(data, "sha256"),
    sha512: reference(data, "sha512"),
  };
  fc.assert(
    fc.property(
      fc.constantFrom<HashAlgorithm>("sha256", "sha512"),
      fc.integer({ min: 0, max: data.length }),
      fc.array(fc.integer({ min: 0, max: 20000 }), { maxLength: 60 }),
      (alg, len, cuts) => {
        const input = data.subarray(0, len);
        const h = new FsVerityHasher(alg);
        let off = 0;
        for (const c of cuts) {
          const end = Math.min(len, off + c);
          h.update(input.subarray(off, end));
          off = end;
        }
        h.update(input.subarray(off));
        const want = len === data.length ? expected[alg] : hex(fsverityDigest(input, alg));
        assert.equal(hex(h.digest()), want);
      },
    ),
    { seed: 0x5eed, numRuns: 300 },
  );
});

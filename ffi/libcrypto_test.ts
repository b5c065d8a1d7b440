import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  Sha256,
  sha256,
  Sha512,
  sha512,
  shaBackend,
  shaBlocksInto,
  ShaHasher,
  shaInto,
} from "./libcrypto.ts";

const hex = (b: Uint8Array) => b.toHex();
const enc = new TextEncoder();

function pseudoRandom(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

Deno.test("libcrypto: loads through FFI here", () => {
  assert.equal(shaBackend(), "libcrypto");
});

Deno.test("libcrypto: one-shot known answers", () => {
  assert.equal(
    hex(sha256(enc.encode("abc"))),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(
    hex(sha256(new Uint8Array(0))),
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
  assert.equal(
    hex(sha512(enc.encode("abc"))),
    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a" +
      "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
  );
});

Deno.test("libcrypto: one-shot agrees with node:crypto on subarrays", () => {
  const data = pseudoRandom(100_003);
  for (const [s, e] of [[0, 0], [1, 2], [7, 4103], [500, 100_003]]) {
    const v = data.subarray(s, e);
    assert.equal(hex(sha256(v)), createHash("sha256").update(v).digest("hex"));
    assert.equal(hex(sha512(v)), createHash("sha512").update(v).digest("hex"));
  }
});

Deno.test("libcrypto: shaBlocksInto hashes each block into place", () => {
  const data = pseudoRandom(4096 * 5, 3);
  for (const alg of ["sha256", "sha512"] as const) {
    const ds = alg === "sha256" ? 32 : 64;
    const out = new Uint8Array(ds * 5 + 3).fill(0xee);
    shaBlocksInto(alg, data, 4096, out.subarray(1));
    for (let i = 0; i < 5; i++) {
      const want = createHash(alg).update(data.subarray(i * 4096, (i + 1) * 4096)).digest("hex");
      assert.equal(hex(out.subarray(1 + i * ds, 1 + (i + 1) * ds)), want);
    }
    assert.equal(out[0], 0xee, "must not write before dst");
    assert.equal(out[1 + 5 * ds], 0xee, "must not write past the digests");
    const one = new Uint8Array(ds);
    shaInto(alg, data.subarray(0, 4096), one);
    assert.equal(hex(one), hex(out.subarray(1, 1 + ds)));
  }
  assert.throws(() => shaBlocksInto("sha256", new Uint8Array(4095), 4096, new Uint8Array(32)));
  assert.throws(() => shaBlocksInto("sha256", new Uint8Array(8192), 4096, new Uint8Array(32)));
});

Deno.test("libcrypto: incremental hashers equal one-shot for any chunking", () => {
  const data = pseudoRandom(300_000, 9);
  for (const H of [Sha256, Sha512]) {
    using h = new H();
    let off = 0;
    let step = 1;
    while (off < data.length) {
      h.update(data.subarray(off, off + step));
      off += step;
      step = (step * 7 + 13) % 70_000;
    }
    h.update(new Uint8Array(0));
    const want = h.algorithm === "sha256" ? sha256(data) : sha512(data);
    assert.equal(hex(h.digest()), hex(want));
    assert.throws(() => h.update(data), TypeError);
    assert.throws(() => h.digest(), TypeError);
  }
});

Deno.test("libcrypto: disposed hasher refuses updates", () => {
  const h = new ShaHasher("sha512");
  h.update(enc.encode("x"));
  h[Symbol.dispose]();
  h[Symbol.dispose]();
  assert.throws(() => h.update(enc.encode("y")), TypeError);
});

Deno.test("libcrypto: node:crypto fallback without FFI permission gives the same digests", async () => {
  const url = new URL("./libcrypto.ts", import.meta.url).href;
  const code = `
    import { sha256, sha512, Sha256, shaBackend, shaBlocksInto } from ${JSON.stringify(url)};
    const d = new Uint8Array(8192).map((_, i) => i * 31);
    const h = new Sha256(); h.update(d.subarray(0, 100)); h.update(d.subarray(100));
    const blocks = new Uint8Array(64); shaBlocksInto("sha256", d, 4096, blocks);
    const hex = (b) => b.toHex();
    console.log(JSON.stringify([shaBackend(), hex(sha256(d)), hex(sha512(d)), hex(h.digest()), hex(blocks)]));
  `;
  const dir = await Deno.makeTempDir();
  const script = `${dir}/fallback.ts`;
  await Deno.writeTextFile(script, code);
  const out = await new Deno.Command(Deno.execPath(), {
    // No --allow-ffi: dlopen is refused, so the module must fall back to node:crypto.
    args: ["run", "--no-check", "--no-prompt", "--allow-read", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  await Deno.remove(dir, { recursive: true });
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const [backend, s256, s512, inc, blocks] = JSON.parse(new TextDecoder().decode(out.stdout));
  const d = new Uint8Array(8192).map((_, i) => i * 31);
  assert.equal(backend, "node:crypto");
  assert.equal(s256, hex(sha256(d)));
  assert.equal(s512, hex(sha512(d)));
  assert.equal(inc, hex(sha256(d)));
  assert.equal(blocks, hex(sha256(d.subarray(0, 4096))) + hex(sha256(d.subarray(4096))));
});

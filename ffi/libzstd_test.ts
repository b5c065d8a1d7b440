import assert from "node:assert/strict";
import {
  zstdCompress,
  ZstdCompressor,
  zstdDecompress,
  ZstdDecompressor,
  ZstdError,
  zstdVersionNumber,
} from "./libzstd.ts";

const hex = (b: Uint8Array) => b.toHex();
const unhex = (s: string) => new Uint8Array(s.match(/../g)!.map((h) => parseInt(h, 16)));

/** Compressible but not trivial: words from a small vocabulary. */
function text(n: number, seed = 1): Uint8Array {
  const words = ["layer", "tar", "ustar", "0000644", "composefs", "\0\0\0\0", "usr/lib/", "x"];
  const out = new Uint8Array(n);
  let x = seed;
  let i = 0;
  while (i < n) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const w = new TextEncoder().encode(words[x >>> 29]);
    out.set(w.subarray(0, n - i), i);
    i += w.length;
  }
  return out;
}

async function zstdCli(args: string[], input: Uint8Array): Promise<Uint8Array> {
  const p = new Deno.Command("zstd", { args, stdin: "piped", stdout: "piped", stderr: "piped" })
    .spawn();
  const w = p.stdin.getWriter();
  await w.write(input);
  await w.close();
  const out = await p.output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return out.stdout;
}

Deno.test("libzstd: version is 1.5.x (spec §3.7 was validated with 1.5.4)", () => {
  const v = zstdVersionNumber();
  assert.ok(v >= 10500 && v < 10600, `libzstd ${v}`);
});

Deno.test("libzstd: empty input is the 9-byte pledged-size-0 frame (spec §3.7)", () => {
  assert.equal(hex(zstdCompress(new Uint8Array(0))), "28b52ffd2000010000");
});

Deno.test("libzstd: small incompressible input is a raw block without content size", () => {
  const data = unhex("fbffffffffffffff68656c6c6f"); // i64 -5 + "hello" (spec §3.11 HELLO)
  assert.equal(hex(zstdCompress(data)), "28b52ffd005869" + "0000" + hex(data));
});

Deno.test("libzstd: output does not depend on how input is split across writes", () => {
  const data = text(400_000, 5);
  const oneShot = zstdCompress(data);
  for (const step of [1, 7, 4096, 9000, 131_072]) {
    using c = new ZstdCompressor();
    const parts: Uint8Array[] = [];
    for (let off = 0; off < data.length; off += step) {
      c.write(data.subarray(off, off + step), (b) => parts.push(b));
      if (step === 1 && off > 5000) {
        c.write(data.subarray(off + 1), (b) => parts.push(b));
        break;
      }
    }
    c.end((b) => parts.push(b));
    const got = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      got.set(p, o);
      o += p.length;
    }
    assert.equal(hex(got), hex(oneShot), `step ${step}`);
  }
  assert.ok(oneShot.length < data.length / 2, "text must compress");
  assert.equal(oneShot[4], 0x00, "frame header descriptor: no content size, no checksum");
});

Deno.test("libzstd: round-trips with the zstd CLI both ways, multi-frame", async () => {
  const a = text(300_000, 2);
  const b = crypto.getRandomValues(new Uint8Array(65_536));
  const ours = zstdCompress(a);
  assert.deepEqual(await zstdCli(["-d", "-c"], ours), a);
  const cliA = await zstdCli(["-19", "--check", "-c"], a);
  const cliB = await zstdCli(["-1", "-c"], b);
  const multi = new Uint8Array(cliA.length + cliB.length + ours.length);
  multi.set(cliA);
  multi.set(cliB, cliA.length);
  multi.set(ours, cliA.length + cliB.length);
  const out = zstdDecompress(multi);
  assert.equal(out.length, a.length * 2 + b.length);
  assert.deepEqual(out.subarray(0, a.length), a);
  assert.deepEqual(out.subarray(a.length, a.length + b.length), b);
  assert.deepEqual(out.subarray(a.length + b.length), a);
});

Deno.test("libzstd: streaming decompression in arbitrary input pieces with a tiny buffer", () => {
  const data = text(200_000, 3);
  const z = zstdCompress(data);
  using d = new ZstdDecompressor(1000);
  const parts: Uint8Array[] = [];
  for (let off = 0; off < z.length; off += 333) {
    for (const piece of d.decompress(z.subarray(off, off + 333))) {
      assert.ok(piece.length <= 1000);
      parts.push(piece.slice());
    }
  }
  assert.ok(d.atFrameBoundary);
  const got = new Uint8Array(data.length);
  let o = 0;
  for (const p of parts) {
    got.set(p, o);
    o += p.length;
  }
  assert.equal(o, data.length);
  assert.deepEqual(got, data);
});

Deno.test("libzstd: truncated, corrupt and oversized inputs raise ZstdError", () => {
  const z = zstdCompress(text(50_000));
  assert.throws(() => zstdDecompress(z.subarray(0, z.length - 1)), ZstdError);
  assert.throws(() => zstdDecompress(z.subarray(0, 3)), ZstdError);
  assert.throws(() => zstdDecompress(new TextEncoder().encode("not zstd at all")), ZstdError);
  const bad = z.slice();
  bad[0] ^= 1; // frame magic
  assert.throws(() => zstdDecompress(bad), ZstdError);
  const trailing = new Uint8Array(z.length + 4);
  trailing.set(z);
  trailing.set([1, 2, 3, 4], z.length);
  assert.throws(() => zstdDecompress(trailing), ZstdError);
  assert.throws(() => zstdDecompress(z, 1000), ZstdError);
  assert.equal(zstdDecompress(new Uint8Array(0)).length, 0);
});

Deno.test("libzstd: a frame ending exactly at a full output buffer is complete", () => {
  // 1 MiB of zeros = exactly 8 output buffers of 128 KiB.
  assert.equal(zstdDecompress(zstdCompress(new Uint8Array(1 << 20))).length, 1 << 20);
  using d = new ZstdDecompressor(4096);
  let n = 0;
  for (const p of d.decompress(zstdCompress(new Uint8Array(4096 * 3)))) n += p.length;
  assert.equal(n, 4096 * 3);
  assert.ok(d.atFrameBoundary);
  assert.equal([...d.decompress(new Uint8Array(0))].length, 0);
  assert.ok(d.atFrameBoundary);
});

Deno.test("libzstd: disposed contexts refuse work", () => {
  const c = new ZstdCompressor();
  c[Symbol.dispose]();
  c[Symbol.dispose]();
  assert.throws(() => c.write(new Uint8Array(1), () => {}), TypeError);
  const d = new ZstdDecompressor();
  d[Symbol.dispose]();
  assert.throws(() => [...d.decompress(new Uint8Array(1))], TypeError);
  // Disposed while a decompression is suspended: resuming must not touch the freed context.
  const e = new ZstdDecompressor(1024);
  const it = e.decompress(zstdCompress(new Uint8Array(100_000)));
  assert.equal(it.next().value?.length, 1024);
  e[Symbol.dispose]();
  assert.throws(() => it.next(), TypeError);
});

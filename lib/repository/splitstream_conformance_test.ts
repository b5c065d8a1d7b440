/**
 * Format-level ports of composefs-rs's splitstream tests (cf/splitstream.rs
 * `test_splitstream_*`, repository-format §6), with an in-memory object map standing in for
 * the repository: `writeExternal` stores the data under its fs-verity digest, `cat` joins
 * inline chunks and objects back together.
 */
import assert from "node:assert/strict";
import { fsverityDigest } from "../fsverity/hasher.ts";
import { parseSplitstream, SplitstreamWriter } from "./splitstream.ts";

/** composefs-rs `generate_test_data`: ((i as u8) + seed) * 17, wrapping. */
function gen(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (((i & 0xff) + seed) * 17) & 0xff;
  return out;
}

const hex = (b: Uint8Array) => b.toHex();

class Fixture {
  objects = new Map<string, Uint8Array>();
  w: SplitstreamWriter;
  constructor(contentType = 0n) {
    this.w = new SplitstreamWriter("sha256", contentType);
  }
  inline(b: Uint8Array) {
    this.w.writeInline(b);
  }
  external(b: Uint8Array) {
    const id = fsverityDigest(b, "sha256");
    this.objects.set(hex(id), b);
    this.w.writeExternal(id, b.length);
  }
  finish() {
    return this.w.finish();
  }
  cat(bytes: Uint8Array): Uint8Array {
    const parts: Uint8Array[] = [];
    for (const c of parseSplitstream(bytes, "sha256").chunks()) {
      parts.push("inline" in c ? c.inline : this.objects.get(hex(c.external))!);
    }
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
}

const join = (...p: Uint8Array[]) => {
  const out = new Uint8Array(p.reduce((n, x) => n + x.length, 0));
  let off = 0;
  for (const x of p) {
    out.set(x, off);
    off += x.length;
  }
  return out;
};

Deno.test("splitstream conformance: inline only", () => {
  const f = new Fixture();
  const a = gen(32, 0xab);
  const b = gen(48, 0xcd);
  f.inline(a);
  f.inline(b);
  assert.deepEqual(f.cat(f.finish()), join(a, b));
});

Deno.test("splitstream conformance: large external", () => {
  const f = new Fixture();
  const data = gen(128 * 1024, 0x42);
  f.external(data);
  const bytes = f.finish();
  assert.deepEqual(parseSplitstream(bytes, "sha256").objectRefs, [fsverityDigest(data, "sha256")]);
  assert.deepEqual(f.cat(bytes), data);
});

Deno.test("splitstream conformance: mixed content", () => {
  const f = new Fixture();
  const [h, c, t] = [gen(512, 1), gen(64 * 1024, 2), gen(1024, 3)];
  f.inline(h);
  f.external(c);
  f.inline(t);
  const bytes = f.finish();
  assert.deepEqual(parseSplitstream(bytes, "sha256").objectRefs, [fsverityDigest(c, "sha256")]);
  assert.deepEqual(f.cat(bytes), join(h, c, t));
});

Deno.test("splitstream conformance: multiple externals", () => {
  const f = new Fixture();
  const [a, b, c, sep] = [
    gen(32 * 1024, 0x10),
    gen(256 * 1024, 0x20),
    gen(8 * 1024, 0x30),
    gen(64, 0xff),
  ];
  f.external(a);
  f.inline(sep);
  f.external(b);
  f.inline(sep);
  f.external(c);
  const bytes = f.finish();
  assert.deepEqual(
    parseSplitstream(bytes, "sha256").objectRefs,
    [a, b, c].map((x) => fsverityDigest(x, "sha256")),
  );
  assert.deepEqual(f.cat(bytes), join(a, sep, b, sep, c));
});

Deno.test("splitstream conformance: deduplication (4 writes → 2 refs)", () => {
  const f = new Fixture();
  const r = gen(64 * 1024, 0xde);
  const u = gen(32 * 1024, 0xad);
  f.external(r);
  f.external(u);
  f.external(r);
  f.external(r);
  const bytes = f.finish();
  assert.deepEqual(
    parseSplitstream(bytes, "sha256").objectRefs,
    [fsverityDigest(r, "sha256"), fsverityDigest(u, "sha256")],
  );
  assert.deepEqual(f.cat(bytes), join(r, u, r, r));
});

Deno.test("splitstream conformance: object refs in first-appearance order", () => {
  const f = new Fixture();
  const [a, b, i] = [gen(16 * 1024, 0x11), gen(24 * 1024, 0x22), gen(128, 0x33)];
  f.inline(i);
  f.external(a);
  f.external(b);
  const refs = parseSplitstream(f.finish(), "sha256").objectRefs;
  assert.deepEqual(refs.map((id) => f.objects.get(hex(id))), [a, b]);
});

Deno.test("splitstream conformance: boundary sizes", () => {
  for (const size of [4095, 4096, 4097, 65535, 65536, 65537]) {
    const f = new Fixture();
    const data = gen(size, size & 0xff);
    f.external(data);
    const bytes = f.finish();
    assert.deepEqual(parseSplitstream(bytes, "sha256").objectRefs, [
      fsverityDigest(data, "sha256"),
    ]);
    assert.deepEqual(f.cat(bytes), data, `size ${size}`);
  }
});

Deno.test("splitstream conformance: content type and total size", () => {
  const f = new Fixture(0xdeadbeefn);
  f.inline(new TextEncoder().encode("test data"));
  assert.equal(parseSplitstream(f.finish(), "sha256", 0xdeadbeefn).contentType, 0xdeadbeefn);
  const g = new Fixture();
  g.inline(gen(100, 1));
  g.external(gen(1000, 2));
  assert.equal(parseSplitstream(g.finish(), "sha256").streamSize, 1100);
});

Deno.test("splitstream conformance: new files start with the magic", () => {
  const f = new Fixture();
  f.inline(new TextEncoder().encode("world"));
  const bytes = f.finish();
  assert.equal(new TextDecoder().decode(bytes.subarray(0, 11)), "SplitStream");
  assert.deepEqual(f.cat(bytes), new TextEncoder().encode("world"));
});

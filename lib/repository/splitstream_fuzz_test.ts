import assert from "node:assert/strict";
import fc from "fast-check";
import type { HashAlgorithm } from "../fsverity/algorithm.ts";
import {
  parseSplitstream,
  type SplitstreamChunk,
  SplitstreamError,
  SplitstreamWriter,
} from "./splitstream.ts";

type Op =
  | { t: "inline"; bytes: Uint8Array }
  | { t: "external"; id: number; size: number }
  | { t: "named"; name: string; id: number }
  | { t: "stream"; id: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant("inline" as const),
      bytes: fc.oneof(
        fc.uint8Array({ maxLength: 600 }),
        fc.integer({ min: 0, max: 300_000 }).map((n) => new Uint8Array(n).fill(n & 0xff)),
      ),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant("external" as const),
      id: fc.integer({ min: 0, max: 6 }),
      size: fc.integer({ min: 0, max: 1 << 30 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant("named" as const),
      name: fc.string({ unit: "binary", maxLength: 12 }).filter((s) => !s.includes("\0")),
      id: fc.integer({ min: 0, max: 6 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant("stream" as const), id: fc.integer({ min: 0, max: 6 }) }),
  },
);

const idOf = (alg: HashAlgorithm, n: number) =>
  new Uint8Array(alg === "sha256" ? 32 : 64).fill(0x11 * (n + 1));

function build(alg: HashAlgorithm, ops: Op[], ct: bigint): Uint8Array {
  using w = new SplitstreamWriter(alg, ct);
  for (const op of ops) {
    if (op.t === "inline") w.writeInline(op.bytes);
    else if (op.t === "external") w.writeExternal(idOf(alg, op.id), op.size);
    else if (op.t === "named") w.addNamedRef(op.name, idOf(alg, op.id));
    else w.addStreamRef(idOf(alg, op.id));
  }
  return w.finish();
}

/** What a reader must see: the model of §3.4–3.6. */
function model(alg: HashAlgorithm, ops: Op[]) {
  const chunks: SplitstreamChunk[] = [];
  const objectRefs: number[] = [];
  const streamRefs: number[] = [];
  const named = new Map<string, number>();
  let run: number[] = [];
  let size = 0;
  const flush = () => {
    if (run.length > 0) chunks.push({ inline: new Uint8Array(run) });
    run = [];
  };
  for (const op of ops) {
    if (op.t === "inline") {
      for (const b of op.bytes) run.push(b);
      size += op.bytes.length;
    } else if (op.t === "external") {
      flush();
      if (!objectRefs.includes(op.id)) objectRefs.push(op.id);
      chunks.push({ external: idOf(alg, op.id) });
      size += op.size;
    } else {
      if (!streamRefs.includes(op.id)) streamRefs.push(op.id);
      if (op.t === "named") named.set(op.name, op.id);
    }
  }
  flush();
  return { chunks, objectRefs, streamRefs, named, size };
}

Deno.test("splitstream: random writer op sequences round-trip (property)", () => {
  fc.assert(
    fc.property(
      fc.constantFrom<HashAlgorithm>("sha256", "sha512"),
      fc.array(opArb, { maxLength: 25 }),
      fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      (alg, ops, ct) => {
        const bytes = build(alg, ops, ct);
        const m = model(alg, ops);
        const s = parseSplitstream(bytes, alg, ct);
        assert.equal(s.contentType, ct);
        assert.equal(s.streamSize, m.size);
        assert.deepEqual(s.objectRefs, m.objectRefs.map((i) => idOf(alg, i)));
        assert.deepEqual(s.streamRefs, m.streamRefs.map((i) => idOf(alg, i)));
        const sortedNames = [...m.named.keys()].sort((a, b) => {
          const x = new TextEncoder().encode(a);
          const y = new TextEncoder().encode(b);
          for (let i = 0; i < Math.min(x.length, y.length); i++) {
            if (x[i] !== y[i]) return x[i] - y[i];
          }
          return x.length - y.length;
        });
        // Lone surrogates are written as U+FFFD by TextEncoder; compare through the encoder.
        const norm = (n: string) => new TextDecoder().decode(new TextEncoder().encode(n));
        assert.deepEqual([...s.namedRefs.keys()], sortedNames.map(norm));
        for (const [n, i] of m.named) assert.deepEqual(s.namedRefs.get(norm(n)), idOf(alg, i));
        assert.deepEqual([...s.chunks()], m.chunks);
      },
    ),
    { seed: 20261128, numRuns: 150 },
  );
});

/** Parse and fully decode; only SplitstreamError may escape. */
function parseAll(bytes: Uint8Array, alg: HashAlgorithm): void {
  try {
    const s = parseSplitstream(bytes, alg);
    for (const _ of s.chunks()) { /* decode everything */ }
  } catch (e) {
    if (!(e instanceof SplitstreamError)) throw e;
  }
}

Deno.test("splitstream: mutated files only ever raise SplitstreamError (fuzz)", () => {
  const mutation = fc.oneof(
    fc.record({
      k: fc.constant("flip" as const),
      at: fc.nat(),
      v: fc.integer({ min: 1, max: 255 }),
    }),
    fc.record({ k: fc.constant("truncate" as const), at: fc.nat() }),
    fc.record({
      k: fc.constant("u64" as const),
      at: fc.integer({ min: 0, max: 11 }),
      v: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    }),
    fc.record({
      k: fc.constant("small" as const),
      at: fc.integer({ min: 0, max: 11 }),
      v: fc.integer({ min: 0, max: 600 }),
    }),
  );
  fc.assert(
    fc.property(
      fc.constantFrom<HashAlgorithm>("sha256", "sha512"),
      fc.array(opArb, { maxLength: 8 }),
      fc.array(mutation, { minLength: 1, maxLength: 4 }),
      (alg, ops, muts) => {
        let bytes = build(alg, ops, 0n);
        for (const m of muts) {
          if (m.k === "flip") bytes[m.at % bytes.length] ^= m.v;
          else if (m.k === "truncate") bytes = bytes.slice(0, m.at % (bytes.length + 1));
          else if (bytes.length >= 112) {
            // overwrite one of the 12 u64 fields at 16..112 (info range, section ranges, type, size)
            const v = m.k === "u64" ? m.v : BigInt(m.v);
            new DataView(bytes.buffer, bytes.byteOffset).setBigUint64(
              16 + m.at * 8 - (m.at >= 12 ? 0 : 0),
              v,
              true,
            );
          }
        }
        parseAll(bytes, alg);
      },
    ),
    { seed: 424242, numRuns: 1500 },
  );
});

Deno.test("splitstream: random bytes only ever raise SplitstreamError (fuzz)", () => {
  const magic = new TextEncoder().encode("SplitStream");
  fc.assert(
    fc.property(
      fc.constantFrom<HashAlgorithm>("sha256", "sha512"),
      fc.uint8Array({ maxLength: 400 }),
      fc.constantFrom(0, 1, 2),
      (alg, raw, shape) => {
        const bytes = raw.slice();
        if (shape > 0 && bytes.length >= 32) {
          bytes.set(magic, shape === 1 ? 0 : 18);
          const off = shape === 1 ? 11 : 29;
          bytes[off] = 0;
          bytes[off + (shape === 1 ? 3 : 1)] = alg === "sha256" ? 1 : 2;
          bytes[off + (shape === 1 ? 4 : 2)] = 12;
        }
        parseAll(bytes, alg);
      },
    ),
    { seed: 7, numRuns: 3000 },
  );
});

Deno.test("splitstream: each malformation has its reason", () => {
  const good = build("sha256", [
    { t: "inline", bytes: new Uint8Array([1, 2, 3]) },
    { t: "external", id: 1, size: 100 },
    { t: "named", name: "n", id: 2 },
  ], 0n);
  const reason = (bytes: Uint8Array, alg: HashAlgorithm = "sha256", ct?: bigint) => {
    try {
      const s = parseSplitstream(bytes, alg, ct);
      for (const _ of s.chunks()) { /* decode */ }
    } catch (e) {
      if (e instanceof SplitstreamError) return e.reason;
      throw e;
    }
    return "ok";
  };
  const mut = (f: (b: Uint8Array, v: DataView) => void) => {
    const b = good.slice();
    f(b, new DataView(b.buffer));
    return b;
  };
  assert.equal(reason(good), "ok");
  assert.equal(reason(good.subarray(0, 20)), "truncated");
  assert.equal(reason(good.subarray(0, good.length - 1)), "truncated");
  assert.equal(reason(mut((b) => (b[0] = 0x73))), "bad-magic");
  assert.equal(reason(mut((b) => (b[11] = 1))), "bad-version");
  assert.equal(reason(good, "sha512"), "algorithm-mismatch");
  assert.equal(reason(mut((b) => (b[14] = 9))), "algorithm-mismatch");
  assert.equal(reason(mut((b) => (b[15] = 13))), "bad-block-size");
  assert.equal(reason(mut((_, v) => v.setBigUint64(24, 40n, true))), "bad-info");
  assert.equal(reason(mut((_, v) => v.setBigUint64(40, 100n, true))), "bad-range");
  assert.equal(reason(mut((_, v) => v.setBigUint64(56, 1n << 60n, true))), "bad-range");
  assert.equal(reason(mut((_, v) => v.setBigUint64(40, 113n, true))), "bad-refs");
  assert.equal(reason(good, "sha256", 5n), "content-type-mismatch");
  assert.equal(reason(mut((_, v) => v.setBigUint64(104, 1n << 62n, true))), "bad-info");
  // stream section: compressed chunk stream; corrupt its frame magic
  const streamStart = Number(new DataView(good.buffer).getBigUint64(64, true));
  const namedStart = Number(new DataView(good.buffer).getBigUint64(80, true));
  assert.equal(reason(mut((b) => (b[streamStart] ^= 0xff))), "zstd-corrupt");
  assert.equal(reason(mut((b) => (b[namedStart] ^= 0xff))), "zstd-corrupt");
  // external index past object refs: shrink object_refs to 0 entries
  assert.equal(
    reason(mut((_, v) => v.setBigUint64(56, v.getBigUint64(48, true), true))),
    "index-out-of-range",
  );
  // named ref index past stream refs: shrink stream_refs to 0 entries
  assert.equal(
    reason(mut((_, v) => v.setBigUint64(40, v.getBigUint64(32, true), true))),
    "index-out-of-range",
  );
  // stream_size is informational, as in composefs-rs
  assert.equal(reason(mut((_, v) => v.setBigUint64(104, 2n, true))), "ok");
  // An inline chunk claiming more bytes than follow (HELLO's raw block, -5 → -6 / -2^62).
  const hello = build("sha256", [{ t: "inline", bytes: new TextEncoder().encode("hello") }], 0n);
  const at = hello.indexOf(0xfb);
  const short = hello.slice();
  short[at] = 0xfa;
  assert.equal(reason(short), "bad-chunk");
  const huge = hello.slice();
  new DataView(huge.buffer).setBigInt64(at, -(1n << 62n), true);
  assert.equal(reason(huge), "bad-chunk");
});

Deno.test("splitstream: bit flips in the compressed sections decode or fail cleanly (fuzz)", () => {
  const reasons = new Set<string>();
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 3000 }),
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
      (inline, at, v) => {
        using w = new SplitstreamWriter("sha256", 0n);
        w.writeInline(inline);
        w.writeExternal(new Uint8Array(32).fill(1), 100);
        w.addNamedRef("name", new Uint8Array(32));
        w.writeInline(inline.subarray(0, 10));
        const bytes = w.finish();
        bytes[112 + (at % (bytes.length - 112))] ^= v;
        try {
          const s = parseSplitstream(bytes, "sha256");
          for (const _ of s.chunks()) { /* decode everything */ }
          reasons.add("ok");
        } catch (e) {
          if (!(e instanceof SplitstreamError)) throw e;
          reasons.add(e.reason);
        }
      },
    ),
    { seed: 1, numRuns: 1000 },
  );
  // The flips reach every decoding stage, not just the header checks.
  for (const r of ["ok", "zstd-corrupt", "bad-chunk", "bad-named-ref", "index-out-of-range"]) {
    assert.ok(reasons.has(r), `no flip produced "${r}"`);
  }
});

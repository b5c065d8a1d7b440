/**
 * Property tests of the splitdirfdstream codec (fast-check, fixed seeds): encode → decode →
 * reconstruct round trips over real files, and hostile bytes only ever give typed errors.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { openDir } from "../ffi/fs.ts";
import type { OwnedFd } from "../ffi/owned_fd.ts";
import type { Chunk } from "../lib/splitdirfdstream/chunk.ts";
import { encodeChunks } from "../lib/splitdirfdstream/encoder.ts";
import { ChunkDecoder, decodeChunks } from "../lib/splitdirfdstream/decoder.ts";
import { reconstruct } from "../lib/splitdirfdstream/reconstruct.ts";
import { validateFilename } from "../lib/splitdirfdstream/validate_filename.ts";
import { SplitdirfdstreamError } from "../lib/splitdirfdstream/errors.ts";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const SEED = 0x5d75;
const RUNS = 1000;

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Cut `bytes` at the given (unsorted, possibly repeated) points. */
function cut(bytes: Uint8Array, points: number[]): Uint8Array[] {
  const ps = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...ps, bytes.length]) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  return out;
}

function decodePieces(pieces: Uint8Array[]): Chunk[] {
  const d = new ChunkDecoder();
  const out: Chunk[] = [];
  for (const p of pieces) d.push(p, (c) => out.push(c));
  d.finish();
  return out;
}

function norm(chunks: Chunk[]): unknown[] {
  return chunks.map((c) =>
    c.type === "fileBackedData" ? { ...c } : { type: c.type, data: Array.from(c.data) }
  );
}

/** Files shared by the round-trip runs: [dirIndex, name, content]. */
const FILES: [number, string, Uint8Array][] = [
  [0, "a", new TextEncoder().encode("alpha")],
  [0, "sub/b", new Uint8Array(70_000).map((_, i) => i * 7)],
  [0, "empty", new Uint8Array()],
  [1, "é/日本", new TextEncoder().encode("unicode name")],
  [1, "a", new Uint8Array(300_000).map((_, i) => i >> 8)],
];

const bytesArb = fc.uint8Array({ maxLength: 300 });

function chunkArb(): fc.Arbitrary<{ chunk: Chunk; expect: Uint8Array }> {
  return fc.oneof(
    bytesArb.map((data) => ({ chunk: { type: "metadata" as const, data }, expect: data })),
    bytesArb.map((data) => ({ chunk: { type: "inlineData" as const, data }, expect: data })),
    fc.tuple(fc.nat({ max: FILES.length - 1 }), fc.double({ min: 0, max: 1, noNaN: true }))
      .map(([i, frac]) => {
        const [dirfdIndex, filename, content] = FILES[i];
        const contentLength = Math.floor(content.length * frac);
        return {
          chunk: { type: "fileBackedData" as const, contentLength, dirfdIndex, filename },
          expect: content.subarray(0, contentLength),
        };
      }),
  );
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

Deno.test("property: encode → decode (any split) → reconstruct round-trips real files", async () => {
  const dirs = [await Deno.makeTempDir(), await Deno.makeTempDir()];
  try {
    for (const [d, name, content] of FILES) {
      const path = `${dirs[d]}/${name}`;
      await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
      await Deno.writeFile(path, content);
    }
    using d0 = openDir(dirs[0]);
    using d1 = openDir(dirs[1]);
    const dirfds: OwnedFd[] = [d0, d1];
    await fc.assert(
      fc.asyncProperty(
        fc.array(chunkArb(), { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        async (items, splits) => {
          const chunks = items.map((x) => x.chunk);
          const bytes = encodeChunks(chunks);
          const kept = chunks.filter((c) => !(c.type === "metadata" && c.data.length === 0));
          const decoded = decodePieces(cut(bytes, splits));
          assert.deepEqual(norm(decoded), norm(kept));
          assert.deepEqual(encodeChunks(decoded), bytes);
          const out = await new Response(reconstruct(ReadableStream.from(decoded), dirfds))
            .bytes();
          assert.deepEqual(out, concat(items.map((x) => x.expect)));
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
  } finally {
    for (const d of dirs) await Deno.remove(d, { recursive: true });
  }
});

Deno.test("property: any valid chunk (names, u32 index, 2^53-1 length) survives encode → decode", () => {
  const nameArb = fc.string({ unit: "binary", minLength: 1, maxLength: 40 }).filter((s) => {
    try {
      validateFilename(s);
      return true;
    } catch {
      return false;
    }
  });
  const chunk: fc.Arbitrary<Chunk> = fc.oneof(
    bytesArb.map((data) => ({ type: "metadata" as const, data })),
    bytesArb.map((data) => ({ type: "inlineData" as const, data })),
    fc.record({
      type: fc.constant("fileBackedData" as const),
      contentLength: fc.maxSafeNat(),
      dirfdIndex: fc.nat({ max: 0xffffffff }),
      filename: nameArb,
    }),
  );
  fc.assert(
    fc.property(
      fc.array(chunk, { maxLength: 10 }),
      fc.array(fc.nat(), { maxLength: 6 }),
      (cs, splits) => {
        const bytes = encodeChunks(cs);
        const kept = cs.filter((c) => !(c.type === "metadata" && c.data.length === 0));
        assert.deepEqual(norm(decodePieces(cut(bytes, splits))), norm(kept));
      },
    ),
    { seed: SEED + 1, numRuns: RUNS },
  );
});

// ---------------------------------------------------------------------------------------------
// Hostile input
// ---------------------------------------------------------------------------------------------

function typedOrOk(f: () => void): void {
  try {
    f();
  } catch (e) {
    if (!(e instanceof SplitdirfdstreamError)) throw e;
  }
}

Deno.test("fuzz: random and mutated bytes only ever give typed errors; reconstruct too", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/a`, "alpha");
    using d = openDir(dir);
    const valid = encodeChunks([
      { type: "metadata", data: new Uint8Array([1, 2, 3]) },
      { type: "fileBackedData", contentLength: 5, dirfdIndex: 0, filename: "a" },
      { type: "inlineData", data: new Uint8Array([4]) },
      { type: "fileBackedData", contentLength: 2, dirfdIndex: 0, filename: "a" },
    ]);
    const mutated = fc.tuple(
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      fc.nat(),
      fc.uint8Array({ maxLength: 20 }),
    ).map(([edits, trunc, tail]) => {
      const b = valid.slice();
      for (const [at, v] of edits) b[at % b.length] = v;
      return concat([b.subarray(0, trunc % (b.length + 1)), tail]);
    });
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.uint8Array({ maxLength: 200 }), mutated),
        fc.array(fc.nat(), { maxLength: 5 }),
        async (bytes, splits) => {
          typedOrOk(() => decodePieces(cut(bytes, splits)));
          let chunks: Chunk[] = [];
          try {
            chunks = decodeChunks(bytes);
          } catch (e) {
            if (!(e instanceof SplitdirfdstreamError)) throw e;
            return;
          }
          try {
            await new Response(reconstruct(ReadableStream.from(chunks), [d])).bytes();
          } catch (e) {
            if (!(e instanceof SplitdirfdstreamError)) throw e;
          }
        },
      ),
      { seed: SEED + 2, numRuns: RUNS * 3 },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

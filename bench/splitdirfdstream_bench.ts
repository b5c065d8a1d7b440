/**
 * splitdirfdstream throughput.
 *
 * - decode: a 1 GiB mostly-InlineData stream, built in memory from one 4 MiB encoded unit
 *   repeated 256 times and fed in 256 KiB pieces (so most bodies straddle pieces and are
 *   gathered), through the bare `ChunkDecoder` and through `SplitdirfdstreamDecoderStream`;
 *   baseline: copying the same 1 GiB piece by piece into a buffer (memcpy speed).
 * - encode: the same chunks through `SplitdirfdstreamEncoderStream`.
 * - reconstruct: a FileBackedData-heavy stream (64 × 4 MiB files + tar-like metadata),
 *   against `cat` of the same files to /dev/null.
 * - produce: a GNU tar of those files plus their directory → chunks → bytes, against just
 *   reading the tar.
 *
 * Run: `deno bench -A bench/splitdirfdstream_bench.ts`
 *
 * @module
 */

import { openDir } from "../ffi/fs.ts";
import type { Chunk } from "../lib/splitdirfdstream/chunk.ts";
import { encodeChunks, SplitdirfdstreamEncoderStream } from "../lib/splitdirfdstream/encoder.ts";
import { ChunkDecoder, SplitdirfdstreamDecoderStream } from "../lib/splitdirfdstream/decoder.ts";
import { reconstruct } from "../lib/splitdirfdstream/reconstruct.ts";
import { produceFromTar } from "../lib/splitdirfdstream/produce_from_tar.ts";

/** Each decode run moves 1 GiB (about a second): a few runs are enough on a noisy 2-vCPU box. */
const RUNS = { n: 3, warmup: 1 };
const MiB = 1024 * 1024;
const UNIT = 4 * MiB;
const UNITS = 256; // 1 GiB
const PIECE = 256 * 1024;

// ---------------------------------------------------------------------------------------------
// A 4 MiB encoded unit: tar-like metadata, large and small inline files, a few references.
// ---------------------------------------------------------------------------------------------

function unitChunks(): Chunk[] {
  const chunks: Chunk[] = [];
  const inlineSizes = [1 * MiB, 700_000, 300_000, 64 * 1024, 1000, 1_500_000];
  for (const [i, size] of inlineSizes.entries()) {
    chunks.push({ type: "metadata", data: new Uint8Array(512).fill(i) });
    chunks.push({ type: "inlineData", data: new Uint8Array(size).fill(i + 1) });
    chunks.push({
      type: "fileBackedData",
      contentLength: 12345,
      dirfdIndex: 0,
      filename: `ab/${"c".repeat(62)}`,
    });
  }
  // Pad the unit to exactly 4 MiB with one last Metadata chunk.
  const used = encodeChunks(chunks).length;
  chunks.push({ type: "metadata", data: new Uint8Array(UNIT - used - 5) });
  return chunks;
}

const chunks = unitChunks();
const unit = encodeChunks(chunks);
if (unit.length !== UNIT) throw new Error(`Unit is ${unit.length} bytes, expected ${UNIT}`);
const pieces = Array.from(
  { length: UNIT / PIECE },
  (_, i) => unit.subarray(i * PIECE, (i + 1) * PIECE),
);
const inlineBytes = chunks.reduce(
  (n, c) => n + (c.type === "fileBackedData" ? 0 : c.data.length),
  0,
);
if (inlineBytes / UNIT < 0.99) throw new Error("The stream is not mostly inline");

function* allPieces(): Generator<Uint8Array> {
  for (let u = 0; u < UNITS; u++) yield* pieces;
}

Deno.bench({
  name: "memcpy 1 GiB in 256 KiB pieces",
  group: "decode 1 GiB",
  baseline: true,
  ...RUNS,
}, () => {
  const scratch = new Uint8Array(UNIT);
  let off = 0;
  for (const p of allPieces()) {
    scratch.set(p, off);
    off = (off + p.length) % UNIT;
  }
});

Deno.bench({ name: "ChunkDecoder, 256 KiB pieces", group: "decode 1 GiB", ...RUNS }, () => {
  const d = new ChunkDecoder();
  let n = 0;
  for (const p of allPieces()) d.push(p, () => n++);
  d.finish();
  if (n !== UNITS * chunks.length) throw new Error(`Decoded ${n} chunks`);
});

Deno.bench({
  name: "ChunkDecoder, 4 MiB pieces (no body split: views, no copy)",
  group: "decode 1 GiB",
  ...RUNS,
}, () => {
  const d = new ChunkDecoder();
  let n = 0;
  for (let u = 0; u < UNITS; u++) d.push(unit, () => n++);
  d.finish();
  if (n !== UNITS * chunks.length) throw new Error(`Decoded ${n} chunks`);
});

Deno.bench({
  name: "SplitdirfdstreamDecoderStream, 256 KiB pieces",
  group: "decode 1 GiB",
  ...RUNS,
}, async () => {
  let n = 0;
  for await (
    const _ of ReadableStream.from(allPieces()).pipeThrough(new SplitdirfdstreamDecoderStream())
  ) n++;
  if (n !== UNITS * chunks.length) throw new Error(`Decoded ${n} chunks`);
});

// A layer as the repository serves it: tar headers and object references, 200k chunks.
const smallChunks: Chunk[] = [];
for (let i = 0; i < 100_000; i++) {
  smallChunks.push({ type: "metadata", data: new Uint8Array(512 + (i % 3) * 100) });
  smallChunks.push({
    type: "fileBackedData",
    contentLength: 1000 + i,
    dirfdIndex: 1,
    filename: `ab/${(Math.imul(i, 2654435761) >>> 0).toString(16).padStart(62, "0")}`,
  });
}
const smallStream = encodeChunks(smallChunks);
const smallPieces = Array.from(
  { length: Math.ceil(smallStream.length / MiB) },
  (_, i) => smallStream.subarray(i * MiB, (i + 1) * MiB),
);

Deno.bench({
  name: "ChunkDecoder, 200k small chunks (70 MB) in 1 MiB pieces",
  group: "decode small chunks",
  ...RUNS,
}, () => {
  const d = new ChunkDecoder();
  let n = 0;
  for (const p of smallPieces) d.push(p, () => n++);
  d.finish();
  if (n !== smallChunks.length) throw new Error(`Decoded ${n} chunks`);
});

Deno.bench({
  name: "SplitdirfdstreamDecoderStream, 200k small chunks",
  group: "decode small chunks",
  ...RUNS,
}, async () => {
  let n = 0;
  for await (
    const _ of ReadableStream.from(smallPieces).pipeThrough(new SplitdirfdstreamDecoderStream())
  ) n++;
  if (n !== smallChunks.length) throw new Error(`Decoded ${n} chunks`);
});

Deno.bench({ name: "SplitdirfdstreamEncoderStream", group: "encode 1 GiB", ...RUNS }, async () => {
  function* all() {
    for (let u = 0; u < UNITS; u++) yield* chunks;
  }
  let bytes = 0;
  for await (
    const b of ReadableStream.from(all()).pipeThrough(new SplitdirfdstreamEncoderStream())
  ) {
    bytes += b.length;
  }
  if (bytes !== UNITS * UNIT) throw new Error(`Encoded ${bytes} bytes`);
});

// ---------------------------------------------------------------------------------------------
// Reconstruct: FileBackedData-heavy, real files in the page cache
// ---------------------------------------------------------------------------------------------

const FILES = 64;
const FILE_SIZE = 4 * MiB;
const dir = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "cfs-bench-sdfs-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
const content = new Uint8Array(FILE_SIZE).map((_, i) => i & 0xff);
const names: string[] = [];
for (let i = 0; i < FILES; i++) {
  names.push(`f${String(i).padStart(3, "0")}`);
  await Deno.writeFile(`${dir}/${names[i]}`, content);
}
const fileChunks: Chunk[] = names.flatMap((filename) => [
  { type: "metadata" as const, data: new Uint8Array(512) },
  { type: "fileBackedData" as const, contentLength: FILE_SIZE, dirfdIndex: 0, filename },
]);
const fileStream = encodeChunks(fileChunks);
const total = FILES * (FILE_SIZE + 512);

Deno.bench({
  name: "cat 64 × 4 MiB > /dev/null",
  group: "reconstruct 256 MiB",
  baseline: true,
  ...RUNS,
}, async () => {
  const out = await new Deno.Command("cat", {
    args: names,
    cwd: dir,
    stdout: "null",
  }).output();
  if (!out.success) throw new Error("cat failed");
});

function decodedFileChunks(): ReadableStream<Chunk> {
  return ReadableStream.from([fileStream]).pipeThrough(new SplitdirfdstreamDecoderStream());
}

Deno.bench({
  name: "decode + reconstruct, default reader",
  group: "reconstruct 256 MiB",
  ...RUNS,
}, async () => {
  using dirfd = openDir(dir);
  let n = 0;
  for await (const b of reconstruct(decodedFileChunks(), [dirfd])) n += b.length;
  if (n !== total) throw new Error(`Reconstructed ${n} bytes, expected ${total}`);
});

Deno.bench({
  name: "decode + reconstruct, BYOB reader, one reused 1 MiB buffer",
  group: "reconstruct 256 MiB",
  ...RUNS,
}, async () => {
  using dirfd = openDir(dir);
  const reader = reconstruct(decodedFileChunks(), [dirfd]).getReader({ mode: "byob" });
  let buf = new Uint8Array(1024 * 1024);
  let n = 0;
  for (;;) {
    const r = await reader.read(buf);
    if (r.done) break;
    n += r.value.length;
    buf = new Uint8Array(r.value.buffer);
  }
  if (n !== total) throw new Error(`Reconstructed ${n} bytes, expected ${total}`);
});

// ---------------------------------------------------------------------------------------------
// Producer: tar + directory → chunks → bytes (what GetLayer / cstor import run)
// ---------------------------------------------------------------------------------------------

const tarPath = `${dir}.tar`;
globalThis.addEventListener("unload", () => Deno.removeSync(tarPath));
const mkTar = await new Deno.Command("tar", {
  args: ["--format=gnu", "-C", dir, "-cf", tarPath, ...names],
}).output();
if (!mkTar.success) throw new Error("tar failed");

Deno.bench({
  name: "read the 256 MiB tar (Deno file stream)",
  group: "produce 256 MiB tar",
  baseline: true,
  ...RUNS,
}, async () => {
  using f = await Deno.open(tarPath);
  let n = 0;
  for await (const b of f.readable) n += b.length;
  if (n === 0) throw new Error("Empty tar");
});

Deno.bench({
  name: "produceFromTar + encoder (file-backed)",
  group: "produce 256 MiB tar",
  ...RUNS,
}, async () => {
  using dirfd = openDir(dir);
  const f = await Deno.open(tarPath);
  let n = 0;
  for await (
    const b of produceFromTar(f.readable, dirfd).pipeThrough(new SplitdirfdstreamEncoderStream())
  ) n += b.length;
  if (n > 1024 * 1024) throw new Error(`Stream is ${n} bytes: contents were not referenced`);
});

import assert from "node:assert/strict";
import { decompress } from "./decompress.ts";

/** Compressible but not trivial bytes: a few MiB of pseudo-random words. */
function sample(size: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  let x = 12345;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = 97 + ((x >>> 16) % 8);
  }
  return out;
}

async function gzip(data: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const s = new Blob([data]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

/** A stream of `data` in `chunk`-byte pieces, optionally failing with `error` at the end. */
function source(data: Uint8Array, chunk: number, error?: Error): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (off >= data.length) return error ? c.error(error) : c.close();
      const n = Math.min(chunk, data.length - off);
      c.enqueue(data.slice(off, off + n));
      off += n;
    },
  });
}

async function collect(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(s).arrayBuffer());
}

class SourceError extends Error {
  override name = "SourceError";
}

const plain = sample(3 * 1024 * 1024 + 17);
const gz = await gzip(plain);
const MiB = 1024 * 1024;

for (const offload of [false, true, "auto"] as const) {
  Deno.test(`decompress gzip (offload ${offload}): same bytes as the input`, async () => {
    const out = await collect(decompress(source(gz, MiB), "gzip", { offload }));
    assert.equal(out.length, plain.length);
    assert.deepEqual(out, plain);
  });

  Deno.test(`decompress gzip (offload ${offload}): the source's error reaches the reader`, async () => {
    const err = new SourceError("Blob digest mismatch");
    await assert.rejects(
      collect(decompress(source(gz, MiB, err), "gzip", { offload })),
      (e) => e === err,
    );
  });

  Deno.test(`decompress gzip (offload ${offload}): corrupt data is a TypeError`, async () => {
    const bad = gz.slice();
    for (let i = 1000; i < 1200; i++) bad[i] ^= 0x5a;
    await assert.rejects(collect(decompress(source(bad, MiB), "gzip", { offload })), TypeError);
  });
}

Deno.test("decompress gzip auto: a small input (first chunk < 1 MiB) decodes too", async () => {
  const small = sample(5000);
  const out = await collect(decompress(source(await gzip(small), 700), "gzip"));
  assert.deepEqual(out, small);
});

Deno.test("decompress gzip in a worker: cancelling stops the worker and the source", async () => {
  let cancelled = false;
  let off = 0;
  const src = new ReadableStream<Uint8Array>({
    pull(c) {
      // Never ends: only a cancel can finish this stream.
      if (off >= gz.length) return new Promise<void>(() => {});
      c.enqueue(gz.slice(off, off + 64 * 1024));
      off += 64 * 1024;
    },
    cancel() {
      cancelled = true;
    },
  });
  const reader = decompress(src, "gzip", { offload: true }).getReader();
  const first = await reader.read();
  assert.equal(first.done, false);
  await reader.cancel();
  assert.ok(cancelled);
});

import assert from "node:assert/strict";
import { ZstdDecompressStream } from "./zstd_stream.ts";
import { zstdCompress, ZstdError } from "../../ffi/libzstd.ts";

function text(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = "composefs layer "[(i * 7 + (i >> 10)) % 16].charCodeAt(0);
  return out;
}

function chunks(b: Uint8Array, step: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < b.length; i += step) out.push(b.subarray(i, i + step));
  return out;
}

async function collect(r: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(r).arrayBuffer());
}

Deno.test("ZstdDecompressStream: multi-frame input in odd pieces", async () => {
  const a = text(300_000);
  const b = crypto.getRandomValues(new Uint8Array(10_000));
  const za = zstdCompress(a);
  const zb = zstdCompress(b);
  const all = new Uint8Array(za.length + zb.length);
  all.set(za);
  all.set(zb, za.length);
  for (const step of [1, 17, 4096, all.length]) {
    const out = await collect(
      ReadableStream.from(chunks(all, step)).pipeThrough(new ZstdDecompressStream()),
    );
    assert.equal(out.length, a.length + b.length, `step ${step}`);
    assert.deepEqual(out.subarray(0, a.length), a);
    assert.deepEqual(out.subarray(a.length), b);
  }
});

Deno.test("ZstdDecompressStream: decodes the zstd CLI's output (checksummed frames)", async () => {
  const data = text(1_000_000);
  const p = new Deno.Command("zstd", { args: ["-3", "-c"], stdin: "piped", stdout: "piped" })
    .spawn();
  const w = p.stdin.getWriter();
  await w.write(data);
  await w.close();
  const out = await collect(p.stdout.pipeThrough(new ZstdDecompressStream()));
  assert.ok((await p.status).success);
  assert.deepEqual(out, data);
});

Deno.test("ZstdDecompressStream: memory stays bounded by back-pressure (64 MiB bomb)", async () => {
  const bomb = zstdCompress(new Uint8Array(64 << 20)); // zeros: ~2 KiB compressed
  assert.ok(bomb.length < 10_000);
  const ts = new ZstdDecompressStream({ outputChunkSize: 65_536 });
  const writer = ts.writable.getWriter();
  const writeDone = writer.write(bomb);
  const reader = ts.readable.getReader();
  let settled = false;
  writeDone.then(() => (settled = true));
  // Read a few chunks only: the write must not complete, i.e. the rest is not decompressed yet.
  for (let i = 0; i < 4; i++) {
    const r = await reader.read();
    assert.ok(!r.done && r.value.length === 65_536);
  }
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(settled, false, "whole input decompressed ahead of the reader");
  let total = 4 * 65_536;
  const closing = writeDone.then(() => writer.close());
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    total += r.value.length;
  }
  await closing;
  assert.equal(total, 64 << 20);
});

Deno.test("ZstdDecompressStream: truncated and corrupt input error the stream", async () => {
  const z = zstdCompress(text(100_000));
  await assert.rejects(
    collect(
      ReadableStream.from([z.subarray(0, z.length - 5)]).pipeThrough(new ZstdDecompressStream()),
    ),
    ZstdError,
  );
  const bad = z.slice();
  bad[1] ^= 0xff;
  await assert.rejects(
    collect(ReadableStream.from([bad]).pipeThrough(new ZstdDecompressStream())),
    ZstdError,
  );
});

Deno.test("ZstdDecompressStream: cancelling the readable stops the writer", async () => {
  const ts = new ZstdDecompressStream();
  const writer = ts.writable.getWriter();
  const w = writer.write(zstdCompress(new Uint8Array(10 << 20)));
  const reader = ts.readable.getReader();
  await reader.read();
  await reader.cancel(new Error("enough"));
  await assert.rejects(w);
});

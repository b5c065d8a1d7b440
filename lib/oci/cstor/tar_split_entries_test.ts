import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeTarSplit,
  parseTarSplitLine,
  type TarSplitEntry,
  TarSplitFormatError,
} from "./tar_split_entries.ts";
import { crc64 } from "./crc64.ts";

const enc = new TextEncoder();

/** Encode entries the way tar-split's Go `json.Encoder` does (one object per line). */
function encodeEntries(entries: TarSplitEntry[]): Uint8Array<ArrayBuffer> {
  const lines = entries.map((e) => {
    if (e.type === "segment") {
      return JSON.stringify({ type: 2, payload: e.payload.toBase64(), position: e.position });
    }
    const name = new TextDecoder("utf-8", { fatal: false }).decode(e.name);
    const utf8ok = enc.encode(name).every((b, i) => b === e.name[i]) &&
      enc.encode(name).length === e.name.length;
    return JSON.stringify({
      type: 1,
      ...(utf8ok ? { name } : { name_raw: e.name.toBase64() }),
      ...(e.size ? { size: e.size } : {}),
      payload: e.crc ? e.crc.toBase64() : null,
      position: e.position,
    });
  });
  return enc.encode(lines.join("\n") + "\n");
}

Deno.test("tar_split_entries: real lines (c/storage 1.43) decode", () => {
  const seg = parseTarSplitLine('{"type":2,"payload":"LgAA","position":0}', 1);
  assert.deepEqual(seg, { type: "segment", payload: new Uint8Array([0x2e, 0, 0]), position: 0 });
  const dir = parseTarSplitLine('{"type":1,"name":".","payload":null,"position":1}', 2);
  assert.deepEqual(dir, { type: "file", name: enc.encode("."), size: 0, crc: null, position: 1 });
  const f = parseTarSplitLine(
    '{"type":1,"name":"etc/hostname","size":8,"payload":"DUNi0b2EGCc=","position":7}',
    3,
  );
  assert.equal(f.type, "file");
  assert.deepEqual(f.type === "file" && f.crc, crc64(enc.encode("changed\n")));
  const raw = parseTarSplitLine('{"type":1,"name_raw":"/w==","position":9}', 4);
  assert.deepEqual(raw.type === "file" && raw.name, new Uint8Array([0xff]));
});

Deno.test("tar_split_entries: malformed lines → TarSplitFormatError with the line", () => {
  const bad = [
    "{",
    "[]",
    '{"type":3}',
    '{"type":1,"size":1,"payload":"AAAAAAAAAAA="}', // no name
    '{"type":1,"name":"a","size":1,"payload":"AAAA"}', // CRC not 8 bytes
    '{"type":1,"name":"a","size":1,"payload":null}',
    '{"type":1,"name":"a","size":-1}',
    '{"type":1,"name":"a","size":1.5}',
    '{"type":2,"payload":"!!!!"}',
    '{"type":2,"payload":"AAA"}',
    '{"type":2,"payload":"","position":-1}',
  ];
  for (const b of bad) {
    assert.throws(
      () => parseTarSplitLine(b, 42),
      (e) => e instanceof TarSplitFormatError && e.line === 42,
      b,
    );
  }
});

Deno.test("tar_split_entries: stream decoding splits lines across chunks and checks positions", async () => {
  const entries: TarSplitEntry[] = [
    { type: "segment", payload: new Uint8Array(1024).fill(7), position: 0 },
    { type: "file", name: enc.encode("a/b"), size: 3, crc: crc64(enc.encode("abc")), position: 1 },
    { type: "file", name: new Uint8Array([0x61, 0xff]), size: 0, crc: null, position: 2 },
  ];
  const bytes = encodeEntries(entries);
  // Feed one byte at a time: lines straddle every chunk boundary.
  const out: TarSplitEntry[] = [];
  const { TarSplitDecoderStream } = await import("./tar_split_entries.ts");
  const rs = ReadableStream.from(Array.from(bytes, (b) => new Uint8Array([b]))).pipeThrough(
    new TarSplitDecoderStream(),
  );
  for await (const e of rs) out.push(e);
  assert.deepEqual(out, entries);
  // Without the final newline too.
  assert.deepEqual(await decodeTarSplit(bytes.subarray(0, bytes.length - 1)), entries);
  // Through real gzip, as on disk.
  const gz = await new Response(
    ReadableStream.from<BufferSource>([bytes]).pipeThrough(new CompressionStream("gzip")),
  ).bytes();
  const gunzipped = await new Response(
    ReadableStream.from<BufferSource>([gz]).pipeThrough(new DecompressionStream("gzip")),
  ).bytes();
  assert.deepEqual(await decodeTarSplit(gunzipped), entries);
  const swapped = encodeEntries([entries[1], entries[0]]);
  await assert.rejects(() => decodeTarSplit(swapped), /position 0 does not increase/);
  await assert.rejects(() => decodeTarSplit(new Uint8Array([0xff, 0x0a])), TarSplitFormatError);
});

const entryArb: fc.Arbitrary<TarSplitEntry> = fc.oneof(
  fc.uint8Array({ maxLength: 2048 }).map((payload) => ({
    type: "segment" as const,
    payload,
    position: 0,
  })),
  fc.record({
    name: fc.uint8Array({ minLength: 1, maxLength: 40 }),
    size: fc.nat({ max: 1 << 30 }),
    crc: fc.uint8Array({ minLength: 8, maxLength: 8 }),
  }).map(({ name, size, crc }) => ({
    type: "file" as const,
    name,
    size,
    crc: size ? crc : null,
    position: 0,
  })),
);

Deno.test("tar_split_entries: encode → decode round-trips (fast-check)", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(entryArb, { maxLength: 20 }), async (es) => {
      const entries = es.map((e, i) => ({ ...e, position: i }));
      assert.deepEqual(await decodeTarSplit(encodeEntries(entries)), entries);
    }),
    { seed: 21, numRuns: 300 },
  );
});

Deno.test("tar_split_entries: arbitrary bytes only ever raise TarSplitFormatError (fast-check)", async () => {
  const piece = fc.constantFrom(
    '{"type":',
    "1",
    "2",
    ',"name":"a"',
    ',"size":',
    '"payload":',
    '"AAAAAAAAAAA="',
    "null",
    "}",
    "\n",
    ',"position":',
    "3",
    "[",
    '"',
    "\\u0000",
  );
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.array(piece, { maxLength: 30 }).map((a) => enc.encode(a.join(""))),
        fc.uint8Array({ maxLength: 200 }),
      ),
      async (bytes) => {
        try {
          await decodeTarSplit(bytes);
        } catch (e) {
          if (!(e instanceof TarSplitFormatError)) throw e;
        }
      },
    ),
    { seed: 22, numRuns: 1500 },
  );
});

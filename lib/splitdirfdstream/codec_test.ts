import assert from "node:assert/strict";
import type { Chunk } from "./chunk.ts";
import { encodeChunk, encodeChunks, SplitdirfdstreamEncoderStream } from "./encoder.ts";
import { ChunkDecoder, decodeChunks, SplitdirfdstreamDecoderStream } from "./decoder.ts";
import { MAX_FILENAME_LEN, MAX_INLINE_CHUNK_SIZE } from "./constants.ts";
import {
  ContentLengthTooLargeError,
  FilenameTooLongError,
  InlineTooLargeError,
  InvalidFilenameError,
  TruncatedError,
  UnknownChunkTypeError,
} from "./errors.ts";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const te = new TextEncoder();
const hex = (s: string) => Uint8Array.fromHex(s.replace(/\s+/g, ""));

async function encodeViaStream(chunks: Chunk[]): Promise<Uint8Array> {
  return await new Response(
    ReadableStream.from(chunks).pipeThrough(new SplitdirfdstreamEncoderStream()),
  ).bytes();
}

async function decodeViaStream(pieces: Uint8Array[]): Promise<Chunk[]> {
  return await Array.fromAsync(
    ReadableStream.from(pieces).pipeThrough(new SplitdirfdstreamDecoderStream()),
  );
}

/** Normalise chunks for deepEqual (views vs copies compare equal by content anyway). */
function plain(chunks: Chunk[]): unknown[] {
  return chunks.map((c) =>
    c.type === "fileBackedData" ? { ...c } : { type: c.type, data: Array.from(c.data) }
  );
}

// ---------------------------------------------------------------------------------------------
// Golden vectors, written from the wire-format table (varlink-api §4.4)
// ---------------------------------------------------------------------------------------------

const GOLDEN: { name: string; chunks: Chunk[]; bytes: string }[] = [
  {
    name: "metadata",
    chunks: [{ type: "metadata", data: te.encode("hello") }],
    bytes: "00 05000000 68656c6c6f",
  },
  {
    name: "inline_empty",
    chunks: [{ type: "inlineData", data: new Uint8Array() }],
    bytes: "01 00000000",
  },
  {
    name: "inline",
    chunks: [{ type: "inlineData", data: te.encode("abc") }],
    bytes: "01 03000000 616263",
  },
  {
    name: "file_backed",
    chunks: [{ type: "fileBackedData", contentLength: 42, dirfdIndex: 1, filename: "ab/cdef" }],
    bytes: "02 2a00000000000000 01000000 07000000 61622f63646566",
  },
  {
    name: "file_backed_max",
    chunks: [{
      type: "fileBackedData",
      contentLength: Number.MAX_SAFE_INTEGER,
      dirfdIndex: 0xffffffff,
      filename: "é",
    }],
    bytes: "02 ffffffffffff1f00 ffffffff 02000000 c3a9",
  },
  {
    name: "mixed",
    chunks: [
      { type: "metadata", data: new Uint8Array([1, 2]) },
      { type: "fileBackedData", contentLength: 5, dirfdIndex: 0, filename: "x" },
      { type: "inlineData", data: new Uint8Array([9]) },
      { type: "metadata", data: new Uint8Array(0x100).fill(0) },
    ],
    bytes: "00 02000000 0102" +
      "02 0500000000000000 00000000 01000000 78" +
      "01 01000000 09" +
      "00 00010000" + "00".repeat(0x100),
  },
];

Deno.test("golden vectors: encoder bytes, stream encoder bytes, decode, committed files", async (t) => {
  for (const g of GOLDEN) {
    await t.step(g.name, async () => {
      const want = hex(g.bytes);
      assert.deepEqual(encodeChunks(g.chunks), want);
      assert.deepEqual(await encodeViaStream(g.chunks), want);
      assert.deepEqual(plain(decodeChunks(want)), plain(g.chunks));
      assert.deepEqual(encodeChunks(decodeChunks(want)), want, "decode → re-encode identity");
      const file = await Deno.readFile(
        new URL(`../../tests/testdata/splitdirfdstream/${g.name}.sdfs`, import.meta.url),
      );
      assert.deepEqual(file, want, `tests/testdata/splitdirfdstream/${g.name}.sdfs`);
    });
  }
});

Deno.test("encoder drops empty Metadata but keeps empty InlineData", async () => {
  const chunks: Chunk[] = [
    { type: "metadata", data: new Uint8Array() },
    { type: "inlineData", data: new Uint8Array() },
    { type: "metadata", data: new Uint8Array() },
  ];
  assert.deepEqual(encodeChunk(chunks[0]), []);
  assert.deepEqual(await encodeViaStream(chunks), hex("01 00000000"));
  assert.deepEqual(plain(decodeChunks(encodeChunks(chunks))), [
    { type: "inlineData", data: [] },
  ]);
});

Deno.test("decoder accepts a zero-length Metadata chunk written by someone else", () => {
  assert.deepEqual(plain(decodeChunks(hex("00 00000000"))), [{ type: "metadata", data: [] }]);
});

Deno.test("encoder passes large bodies through without copying", () => {
  const big = new Uint8Array(200_000).fill(7);
  const parts = encodeChunk({ type: "inlineData", data: big });
  assert.equal(parts.length, 2);
  assert.deepEqual(parts[0], hex("01 400d0300"));
  assert.equal(parts[1], big);
});

Deno.test("encoder rejects invalid chunks with typed errors", () => {
  const cases: [Chunk, new (...a: never[]) => Error][] = [
    [
      { type: "fileBackedData", contentLength: 1, dirfdIndex: 0, filename: "../x" },
      InvalidFilenameError,
    ],
    [
      { type: "fileBackedData", contentLength: 1, dirfdIndex: 0, filename: "/x" },
      InvalidFilenameError,
    ],
    [
      { type: "fileBackedData", contentLength: 1, dirfdIndex: 0, filename: "" },
      InvalidFilenameError,
    ],
    [
      { type: "fileBackedData", contentLength: 1, dirfdIndex: 0, filename: "a\0b" },
      InvalidFilenameError,
    ],
    [
      { type: "fileBackedData", contentLength: 1, dirfdIndex: 0, filename: "\ud800" },
      InvalidFilenameError,
    ],
    [
      { type: "fileBackedData", contentLength: 1, dirfdIndex: 0, filename: "a".repeat(4097) },
      FilenameTooLongError,
    ],
    [{ type: "fileBackedData", contentLength: -1, dirfdIndex: 0, filename: "x" }, RangeError],
    [{ type: "fileBackedData", contentLength: 1.5, dirfdIndex: 0, filename: "x" }, RangeError],
    [{ type: "fileBackedData", contentLength: 1, dirfdIndex: 2 ** 32, filename: "x" }, RangeError],
  ];
  for (const [chunk, cls] of cases) {
    assert.throws(() => encodeChunk(chunk), cls, JSON.stringify(chunk));
  }
  // The largest body is accepted by length alone; a fake length avoids allocating 256 MiB.
  const huge = { length: MAX_INLINE_CHUNK_SIZE + 1 } as unknown as Uint8Array;
  assert.throws(() => encodeChunk({ type: "metadata", data: huge }), InlineTooLargeError);
  assert.throws(() => encodeChunk({ type: "inlineData", data: huge }), InlineTooLargeError);
});

// ---------------------------------------------------------------------------------------------
// Decoder: splitting, truncation, limits
// ---------------------------------------------------------------------------------------------

const MIXED = hex(GOLDEN.find((g) => g.name === "mixed")!.bytes);

Deno.test("decoder output is identical for every split point and for byte-by-byte input", async () => {
  const whole = plain(decodeChunks(MIXED));
  for (let i = 0; i <= MIXED.length; i++) {
    for (const j of [i, Math.min(MIXED.length, i + 1), Math.min(MIXED.length, i + 7)]) {
      const pieces = [MIXED.subarray(0, i), MIXED.subarray(i, j), MIXED.subarray(j)];
      const out: Chunk[] = [];
      const d = new ChunkDecoder();
      for (const p of pieces) d.push(p, (c) => out.push(c));
      d.finish();
      assert.deepEqual(plain(out), whole, `split at ${i}/${j}`);
    }
  }
  const bytewise = Array.from(MIXED, (b) => new Uint8Array([b]));
  assert.deepEqual(plain(await decodeViaStream(bytewise)), whole);
});

Deno.test("decoder: truncation at every position inside a chunk is TruncatedError", () => {
  // Chunk boundaries of MIXED: clean EOF is allowed exactly there.
  const boundaries = new Set([0, 7, 7 + 18, 7 + 18 + 6, MIXED.length]);
  for (let n = 0; n <= MIXED.length; n++) {
    if (boundaries.has(n)) {
      decodeChunks(MIXED.subarray(0, n));
    } else {
      assert.throws(() => decodeChunks(MIXED.subarray(0, n)), TruncatedError, `length ${n}`);
    }
  }
  assert.throws(() => decodeChunks(hex("01 05000000 6162")), TruncatedError);
  try {
    decodeChunks(hex("00 02000000 0102 01 03000000 61"));
    assert.fail("expected TruncatedError");
  } catch (err) {
    assert.ok(err instanceof TruncatedError);
    assert.equal(err.chunkOffset, 7);
    assert.equal(err.missing, 2);
  }
});

Deno.test("decoder stream errors with TruncatedError at a cut chunk", async () => {
  await assert.rejects(decodeViaStream([hex("01 05000000"), hex("6162")]), TruncatedError);
});

Deno.test("decoder: unknown type byte, limits, content length, non-UTF-8 name", () => {
  const cases: [string, new (...a: never[]) => Error, Record<string, unknown>][] = [
    ["03", UnknownChunkTypeError, { byte: 3, offset: 0 }],
    ["00 01000000 41 ff", UnknownChunkTypeError, { byte: 0xff, offset: 6 }],
    ["00 01000010", InlineTooLargeError, { size: MAX_INLINE_CHUNK_SIZE + 1 }],
    ["01 ffffffff", InlineTooLargeError, { size: 0xffffffff }],
    ["02 0000000000000000 00000000 01100000", FilenameTooLongError, {
      length: MAX_FILENAME_LEN + 1,
    }],
    ["02 ffffffffffffffff 00000000 01000000 78", ContentLengthTooLargeError, {
      contentLength: 0xffffffffffffffffn,
    }],
    ["02 0000000000002000 00000000 01000000 78", ContentLengthTooLargeError, {
      contentLength: 2n ** 53n,
    }],
    ["02 0100000000000000 00000000 02000000 c328", InvalidFilenameError, { reason: "not UTF-8" }],
  ];
  for (const [bytes, cls, fields] of cases) {
    try {
      decodeChunks(hex(bytes));
      assert.fail(`expected ${cls.name} for ${bytes}`);
    } catch (e) {
      assert.ok(e instanceof cls, `${bytes}: got ${e}`);
      for (const [k, v] of Object.entries(fields)) {
        assert.equal((e as unknown as Record<string, unknown>)[k], v, `${bytes}: ${k}`);
      }
    }
  }
  // The largest allowed sizes pass the header check (the body is then merely truncated).
  assert.throws(() => decodeChunks(hex("00 00000010")), TruncatedError);
  assert.throws(() => decodeChunks(hex("02 0000000000000000 00000000 00100000")), TruncatedError);
});

Deno.test("decoder does not validate filename content (reconstruct does)", () => {
  const bytes = hex("02 0100000000000000 00000000 04000000 2e2e2f78");
  assert.deepEqual(decodeChunks(bytes), [
    { type: "fileBackedData", contentLength: 1, dirfdIndex: 0, filename: "../x" },
  ]);
});

Deno.test("decoder is unusable after an error", () => {
  const d = new ChunkDecoder();
  assert.throws(() => d.push(hex("07"), () => {}), UnknownChunkTypeError);
  assert.throws(() => d.push(hex("00 00000000"), () => {}), UnknownChunkTypeError);
  assert.throws(() => d.finish(), UnknownChunkTypeError);
});

Deno.test("decoder memory: a declared 256 MiB body is not allocated before it arrives", () => {
  const d = new ChunkDecoder();
  d.push(hex("01 00000010"), () => assert.fail("no chunk yet"));
  d.push(new Uint8Array(1000), () => assert.fail("no chunk yet"));
  assert.throws(
    () => d.finish(),
    (e) => e instanceof TruncatedError && e.missing === 2 ** 28 - 1000,
  );
});

Deno.test("encoder stream errors on an invalid chunk after writing the valid ones", async () => {
  const out: Uint8Array[] = [];
  await assert.rejects(
    ReadableStream.from<Chunk>([
      { type: "inlineData", data: new Uint8Array([1]) },
      { type: "fileBackedData", contentLength: 1, dirfdIndex: 0, filename: "/etc/shadow" },
    ]).pipeThrough(new SplitdirfdstreamEncoderStream()).pipeTo(
      new WritableStream({ write: (b) => void out.push(b) }),
    ),
    (e) => e instanceof InvalidFilenameError && e.reason === "absolute path",
  );
  assert.deepEqual(out, [hex("01 01000000 01")]);
});

Deno.test("composefs-rs unit-test vectors (external_wire_layout, file_content_wire_layout, boundary sizes)", () => {
  // external_wire_layout: dirfd_index 2, length 9, filename "ab".
  assert.deepEqual(
    encodeChunks([{ type: "fileBackedData", contentLength: 9, dirfdIndex: 2, filename: "ab" }]),
    hex("02 0900000000000000 02000000 02000000 6162"),
  );
  // file_content_wire_layout: InlineData "hello".
  assert.deepEqual(
    encodeChunks([{ type: "inlineData", data: te.encode("hello") }]),
    hex("01 05000000 68656c6c6f"),
  );
  // boundary_inline_sizes.
  for (const size of [1, 7, 8, 9, 255, 256, 257, 4095, 4096, 4097, 65536, 65537]) {
    const data = Uint8Array.from({ length: size }, (_, i) => i % 256);
    const bytes = encodeChunks([{ type: "metadata", data }]);
    assert.equal(bytes.length, 5 + size);
    assert.equal(bytes[0], 0x00);
    assert.equal(new DataView(bytes.buffer).getUint32(1, true), size);
    assert.deepEqual(plain(decodeChunks(bytes)), [{ type: "metadata", data: Array.from(data) }]);
  }
  // empty_stream_returns_none.
  assert.deepEqual(decodeChunks(new Uint8Array()), []);
});

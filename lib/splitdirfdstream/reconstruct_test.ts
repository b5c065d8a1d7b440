import assert from "node:assert/strict";
import { openDir } from "../../ffi/fs.ts";
import { openFdCount, type OwnedFd } from "../../ffi/owned_fd.ts";
import type { Chunk } from "./chunk.ts";
import { reconstruct, RECONSTRUCT_READ_SIZE } from "./reconstruct.ts";
import { encodeChunks } from "./encoder.ts";
import { SplitdirfdstreamDecoderStream } from "./decoder.ts";
import {
  DirfdIndexOutOfRangeError,
  FilenameTooLongError,
  FileOpenError,
  FileShorterThanDeclaredError,
  InvalidFilenameError,
} from "./errors.ts";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const te = new TextEncoder();

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "sdfs-reconstruct-" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

/** Read a reconstruct stream fully; returns the bytes received and the error, if any. */
async function drain(
  chunks: Chunk[],
  dirfds: OwnedFd[],
): Promise<{ bytes: Uint8Array; error: unknown }> {
  const got: Uint8Array[] = [];
  let error: unknown;
  try {
    for await (const b of reconstruct(ReadableStream.from(chunks), dirfds)) got.push(b);
  } catch (e) {
    error = e;
  }
  return { bytes: concat(got), error };
}

const fb = (filename: string, contentLength: number, dirfdIndex = 0): Chunk => ({
  type: "fileBackedData",
  filename,
  contentLength,
  dirfdIndex,
});

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

Deno.test("reconstruct: metadata, inline and file-backed bytes in order; same file twice; prefix", async () => {
  await using d = await tempDir();
  await Deno.mkdir(`${d.path}/ab`);
  await Deno.writeTextFile(`${d.path}/ab/cdef`, "0123456789");
  using dir = openDir(d.path);
  const { bytes, error } = await drain([
    { type: "metadata", data: te.encode("<") },
    fb("ab/cdef", 10),
    { type: "inlineData", data: te.encode("|") },
    fb("./ab//cdef", 4),
    { type: "inlineData", data: new Uint8Array() },
    fb("ab/cdef", 0),
    { type: "metadata", data: te.encode(">") },
  ], [dir]);
  assert.equal(error, undefined);
  assert.equal(new TextDecoder().decode(bytes), "<0123456789|0123>");
});

Deno.test("reconstruct: large file read in fixed-size pieces equals the file", async () => {
  await using d = await tempDir();
  const data = new Uint8Array(3 * RECONSTRUCT_READ_SIZE + 123);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) & 0xff;
  await Deno.writeFile(`${d.path}/big`, data);
  using dir = openDir(d.path);
  const pieces = await Array.fromAsync(
    reconstruct(ReadableStream.from([fb("big", data.length)]), [dir]),
  );
  assert.ok(pieces.every((p) => p.length <= RECONSTRUCT_READ_SIZE));
  assert.deepEqual(concat(pieces), data);
});

Deno.test("reconstruct: multiple dirfds, dummy slots never opened", async () => {
  await using a = await tempDir();
  await using b = await tempDir();
  await Deno.writeTextFile(`${a.path}/f`, "A");
  await Deno.writeTextFile(`${b.path}/f`, "B");
  using da = openDir(a.path);
  using db = openDir(b.path);
  using dummy = openDir("/dev"); // a slot nobody references
  const { bytes, error } = await drain([fb("f", 1, 2), fb("f", 1, 0), fb("f", 1, 2)], [
    da,
    dummy,
    db,
  ]);
  assert.equal(error, undefined);
  assert.equal(new TextDecoder().decode(bytes), "BAB");
});

Deno.test("reconstruct: file shorter than declared → FileShorterThanDeclaredError (also at 2^53-1)", async () => {
  await using d = await tempDir();
  await Deno.writeTextFile(`${d.path}/f`, "abc");
  using dir = openDir(d.path);
  const r = await drain([fb("f", 5)], [dir]);
  assert.ok(r.error instanceof FileShorterThanDeclaredError);
  assert.equal(r.error.declared, 5);
  assert.equal(r.error.actual, 3);
  const huge = await drain([fb("f", Number.MAX_SAFE_INTEGER)], [dir]);
  assert.ok(huge.error instanceof FileShorterThanDeclaredError);
  assert.equal(huge.error.actual, 3);
});

Deno.test("reconstruct: path attacks are refused with typed errors and no byte written", async () => {
  await using outside = await tempDir();
  await Deno.writeTextFile(`${outside.path}/secret`, "SECRET");
  await using d = await tempDir();
  await Deno.writeTextFile(`${d.path}/inside`, "inside");
  await Deno.mkdir(`${d.path}/sub`);
  await Deno.symlink("inside", `${d.path}/link_inside`);
  await Deno.symlink(`${outside.path}/secret`, `${d.path}/link_out`);
  await Deno.symlink("../inside", `${d.path}/sub/link_up`);
  await Deno.symlink(outside.path, `${d.path}/dirlink`);
  await Deno.symlink("/proc/self/root/etc/passwd", `${d.path}/magic`);
  await new Deno.Command("mkfifo", { args: [`${d.path}/fifo`] }).output();
  const rel = outside.path.split("/").length - 1;
  using dir = openDir(d.path);
  const cases: [string, Chunk, (e: unknown) => boolean][] = [
    [
      "..",
      fb(`${"../".repeat(rel)}${outside.path.slice(1)}/secret`, 6),
      isInvalid('".." component'),
    ],
    ["sub/../..", fb("sub/../../x", 1), isInvalid('".." component')],
    ["absolute", fb(`${outside.path}/secret`, 6), isInvalid("absolute path")],
    ["NUL", fb("inside\0x", 1), isInvalid("embedded NUL")],
    ["empty", fb("", 1), isInvalid("empty")],
    ["4097-byte name", fb("a".repeat(4097), 1), (e) => e instanceof FilenameTooLongError],
    ["symlink inside", fb("link_inside", 6), isOpen("ELOOP")],
    ["symlink escaping", fb("link_out", 6), isOpen("ELOOP")],
    ["symlink to parent", fb("sub/link_up", 6), isOpen("ELOOP")],
    ["through dir symlink", fb("dirlink/secret", 6), isOpen("ELOOP")],
    ["magic link", fb("magic", 1), isOpen("ELOOP")],
    ["fifo", fb("fifo", 1), isOpen("not a regular file")],
    ["directory", fb("sub", 1), isOpen("not a regular file")],
    ["missing", fb("nope", 1), isOpen("ENOENT")],
    [
      "index past the array",
      fb("inside", 6, 1),
      (e) => e instanceof DirfdIndexOutOfRangeError && e.index === 1 && e.count === 1,
    ],
    ["index u32 max", fb("inside", 6, 0xffffffff), (e) => e instanceof DirfdIndexOutOfRangeError],
  ];
  const before = openFdCount();
  for (const [what, chunk, check] of cases) {
    const r = await drain([chunk], [dir]);
    assert.ok(check(r.error), `${what}: got ${r.error}`);
    assert.equal(r.bytes.length, 0, `${what}: bytes written`);
  }
  assert.equal(openFdCount(), before, "no fd leaked");
  // Sanity: the legitimate file opens.
  assert.equal(new TextDecoder().decode((await drain([fb("inside", 6)], [dir])).bytes), "inside");
});

function isInvalid(reason: string): (e: unknown) => boolean {
  return (e) => e instanceof InvalidFilenameError && e.reason === reason;
}
function isOpen(reason: string): (e: unknown) => boolean {
  return (e) => e instanceof FileOpenError && e.reason === reason;
}

Deno.test("reconstruct: cancel mid-file closes the file and cancels the input", async () => {
  await using d = await tempDir();
  await Deno.writeFile(`${d.path}/big`, new Uint8Array(4 * RECONSTRUCT_READ_SIZE));
  using dir = openDir(d.path);
  const before = openFdCount();
  let cancelled = false;
  const input = new ReadableStream<Chunk>({
    start(c) {
      c.enqueue(fb("big", 4 * RECONSTRUCT_READ_SIZE));
    },
    cancel() {
      cancelled = true;
    },
  });
  const reader = reconstruct(input, [dir]).getReader();
  assert.equal((await reader.read()).value?.length, RECONSTRUCT_READ_SIZE);
  await reader.cancel();
  assert.ok(cancelled);
  assert.equal(openFdCount(), before);
});

Deno.test("reconstruct: from decoded bytes (decoder stream → reconstruct)", async () => {
  await using d = await tempDir();
  await Deno.writeTextFile(`${d.path}/f`, "file");
  using dir = openDir(d.path);
  const bytes = encodeChunks([{ type: "metadata", data: te.encode("m") }, fb("f", 4)]);
  const chunks = ReadableStream.from([bytes.subarray(0, 3), bytes.subarray(3)])
    .pipeThrough(new SplitdirfdstreamDecoderStream());
  assert.equal(await new Response(reconstruct(chunks, [dir])).text(), "mfile");
});

Deno.test("reconstruct: a BYOB reader reusing one small buffer gets every byte", async () => {
  await using d = await tempDir();
  const data = new Uint8Array(100_000).map((_, i) => i % 251);
  await Deno.writeFile(`${d.path}/f`, data);
  using dir = openDir(d.path);
  const chunks: Chunk[] = [
    { type: "metadata", data: te.encode("head") },
    fb("f", data.length),
    { type: "inlineData", data: new Uint8Array(5000).fill(9) },
  ];
  const reader = reconstruct(ReadableStream.from(chunks), [dir]).getReader({ mode: "byob" });
  const got: Uint8Array[] = [];
  let buf = new Uint8Array(4096);
  for (;;) {
    const r = await reader.read(buf);
    if (r.done) break;
    assert.ok(r.value.length <= 4096);
    got.push(r.value.slice());
    buf = new Uint8Array(r.value.buffer); // the same memory, handed back
  }
  assert.deepEqual(concat(got), concat([te.encode("head"), data, new Uint8Array(5000).fill(9)]));
});

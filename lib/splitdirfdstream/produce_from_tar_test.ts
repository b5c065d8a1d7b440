import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { openDir } from "../../ffi/fs.ts";
import { openFdCount } from "../../ffi/owned_fd.ts";
import { TarHeaderError } from "../tar/tar_header.ts";
import type { Chunk } from "./chunk.ts";
import { encodeChunks, SplitdirfdstreamEncoderStream } from "./encoder.ts";
import { decodeChunks, SplitdirfdstreamDecoderStream } from "./decoder.ts";
import { reconstruct } from "./reconstruct.ts";
import { produceFromTar, ProducerFileError } from "./produce_from_tar.ts";
import { InvalidFilenameError, SplitdirfdstreamError } from "./errors.ts";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const te = new TextEncoder();
const td = new TextDecoder();
const TESTDATA = new URL("../../tests/testdata/splitdirfdstream/", import.meta.url);

async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "sdfs-produce-" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

/** Feed `bytes` in pieces of `piece` bytes (odd sizes exercise unaligned reads). */
function streamOf(bytes: Uint8Array, piece = 4093): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    pull(c) {
      if (off >= bytes.length) return c.close();
      c.enqueue(bytes.slice(off, off + piece));
      off += piece;
    },
  }, { highWaterMark: 0 });
}

async function sha256Of(stream: ReadableStream<Uint8Array>): Promise<string> {
  const h = createHash("sha256");
  for await (const b of stream) h.update(b);
  return h.digest("hex");
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function gnuTar(dir: string, format: string): Promise<Uint8Array> {
  const out = await new Deno.Command("tar", {
    args: [`--format=${format}`, "--sort=name", "-C", dir, "-cf", "-", "."],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, `GNU tar failed: ${td.decode(out.stderr)}`);
  return out.stdout;
}

function summary(chunks: Chunk[]): string[] {
  return chunks.map((c) =>
    c.type === "fileBackedData"
      ? `F ${c.filename} ${c.contentLength} @${c.dirfdIndex}`
      : `${c.type === "metadata" ? "M" : "I"} ${c.data.length}`
  );
}

/** A hand-made ustar archive (for names GNU tar would not write). */
function ustar(entries: { name: string; data: Uint8Array; mode?: number }[]): Uint8Array {
  const blocks: Uint8Array[] = [];
  for (const e of entries) {
    const h = new Uint8Array(512);
    const put = (off: number, s: string) => h.set(te.encode(s), off);
    put(0, e.name);
    put(100, (e.mode ?? 0o644).toString(8).padStart(7, "0") + "\0");
    put(108, "0000000\0");
    put(116, "0000000\0");
    put(124, e.data.length.toString(8).padStart(11, "0") + "\0");
    put(136, "00000000000\0");
    put(156, "0");
    put(257, "ustar\x0000");
    put(148, "        ");
    put(148, h.reduce((a, x) => a + x, 0).toString(8).padStart(6, "0") + "\0 ");
    blocks.push(h);
    const body = new Uint8Array(Math.ceil(e.data.length / 512) * 512);
    body.set(e.data);
    blocks.push(body);
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let off = 0;
  for (const b of blocks) {
    out.set(b, off);
    off += b.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Golden: a small GNU tar committed under tests/testdata/splitdirfdstream/
// ---------------------------------------------------------------------------------------------

Deno.test("golden small.tar: chunk structure, encoded bytes, reconstruct identity", async () => {
  const tar = await Deno.readFile(new URL("small.tar", TESTDATA));
  using dir = openDir(new URL("small_tree", TESTDATA).pathname);
  const chunks = await Array.fromAsync(
    produceFromTar(streamOf(tar, 1000), dir, { inlineUnreadable: false }),
  );
  // Derived by hand from the archive layout: 512-byte headers, content padded to 512,
  // two zero blocks, GNU tar's 10240-byte record.
  assert.deepEqual(summary(chunks), [
    "M 1024", // "./" and "./empty" headers
    "F empty 0 @0",
    "M 512", // "./hello.txt"
    "F hello.txt 6 @0",
    "M 2042", // 506 padding, "./link", "./sub/", "./sub/block.bin"
    "F sub/block.bin 512 @0",
    "M 512", // "./sub/odd.txt"
    "F sub/odd.txt 1000 @0",
    "M 4632", // 24 padding, end-of-archive blocks, record padding
  ]);
  const bytes = encodeChunks(chunks);
  const goldenUrl = new URL("small.sdfs", TESTDATA);
  if (Deno.env.get("UPDATE_GOLDEN") === "1") await Deno.writeFile(goldenUrl, bytes);
  assert.deepEqual(bytes, await Deno.readFile(goldenUrl), "encoder bytes equal small.sdfs");
  assert.deepEqual(encodeChunks(decodeChunks(bytes)), bytes, "decode → re-encode identity");
  const out = reconstruct(
    streamOf(bytes, 333).pipeThrough(new SplitdirfdstreamDecoderStream()),
    [dir],
  );
  assert.equal(await sha256Of(out), sha256(tar));
});

// ---------------------------------------------------------------------------------------------
// Real trees archived by GNU tar
// ---------------------------------------------------------------------------------------------

Deno.test("GNU tar of large, small, empty and 0600 files reconstructs to the same sha256", async (t) => {
  await using d = await tempDir();
  const root = `${d.path}/tree`;
  await Deno.mkdir(`${root}/deep/${"n".repeat(90)}`, { recursive: true });
  const large = new Uint8Array(5 * 1024 * 1024 + 17);
  for (let i = 0; i < large.length; i += 4096) large[i] = i & 0xff;
  await Deno.writeFile(`${root}/large.bin`, large);
  await Deno.writeTextFile(`${root}/small.txt`, "small\n");
  await Deno.writeFile(`${root}/empty`, new Uint8Array());
  const secret = te.encode("top secret ".repeat(1000));
  await Deno.writeFile(`${root}/secret`, secret, { mode: 0o600 });
  await Deno.chmod(`${root}/secret`, 0o600);
  await Deno.writeFile(`${root}/secret-empty`, new Uint8Array(), { mode: 0o600 });
  await Deno.chmod(`${root}/secret-empty`, 0o600);
  const longName = `deep/${"n".repeat(90)}/${"x".repeat(120)}.txt`;
  await Deno.writeTextFile(`${root}/${longName}`, "long name content");
  await Deno.writeFile(`${root}/exact512`, new Uint8Array(512).fill(5));
  await Deno.symlink("small.txt", `${root}/sym`);
  await Deno.link(`${root}/small.txt`, `${root}/zz-hardlink`);
  using dir = openDir(root);

  for (const format of ["gnu", "posix"]) {
    await t.step(format, async () => {
      const tar = await gnuTar(root, format);
      const chunks = await Array.fromAsync(produceFromTar(streamOf(tar), dir));
      const s = summary(chunks);
      assert.ok(s.includes(`F large.bin ${large.length} @0`), s.join("\n"));
      assert.ok(s.includes("F small.txt 6 @0"));
      assert.ok(s.includes("F empty 0 @0"));
      assert.ok(s.includes(`F ${longName} 17 @0`));
      assert.ok(s.includes("F exact512 512 @0"));
      assert.ok(!s.some((x) => x.includes("zz-hardlink")), "hardlinks have no content");
      const inline = chunks.filter((c) => c.type === "inlineData");
      assert.deepEqual(inline.map((c) => c.data), [secret, new Uint8Array()], "0600 files inline");
      assert.ok(chunks.every((c) => c.type !== "metadata" || c.data.length > 0));
      // Round trip through the wire: encode → decode → reconstruct.
      const wire = ReadableStream.from(chunks).pipeThrough(new SplitdirfdstreamEncoderStream())
        .pipeThrough(new SplitdirfdstreamDecoderStream());
      assert.equal(await sha256Of(reconstruct(wire, [dir])), sha256(tar));
      // A consumer with CAP_DAC_OVERRIDE gets references only (we are root, so it reads them).
      const all = await Array.fromAsync(
        produceFromTar(streamOf(tar), dir, { inlineUnreadable: false, dirfdIndex: 1 }),
      );
      assert.ok(all.every((c) => c.type !== "inlineData"));
      assert.ok(summary(all).includes(`F secret ${secret.length} @1`));
      using dummy = openDir("/");
      assert.equal(
        await sha256Of(reconstruct(ReadableStream.from(all), [dummy, dir])),
        sha256(tar),
      );
    });
  }
});

Deno.test("names the consumer could not open travel inline", async () => {
  await using d = await tempDir();
  using dir = openDir(d.path);
  const tar = ustar([
    { name: "../evil", data: te.encode("evil") },
    { name: "/abs", data: te.encode("abs") },
    { name: "a/../../b", data: te.encode("b") },
  ]);
  const chunks = await Array.fromAsync(produceFromTar(streamOf(tar), dir));
  assert.deepEqual(summary(chunks), ["M 512", "I 4", "M 1020", "I 3", "M 1021", "I 1", "M 1535"]);
  assert.equal(await sha256Of(reconstruct(ReadableStream.from(chunks), [dir])), sha256(tar));
  // And the encoder would have refused them as references.
  assert.throws(
    () =>
      encodeChunks([{
        type: "fileBackedData",
        contentLength: 4,
        dirfdIndex: 0,
        filename: "../evil",
      }]),
    InvalidFilenameError,
  );
});

Deno.test("producer errors: missing file, shorter file, symlink in dir, truncated or corrupt tar", async () => {
  await using d = await tempDir();
  await Deno.writeTextFile(`${d.path}/short`, "ab");
  await Deno.writeTextFile(`${d.path}/ok`, "okay");
  await Deno.symlink("ok", `${d.path}/sym`);
  using dir = openDir(d.path);
  const before = openFdCount();
  const run = (tar: Uint8Array) => Array.fromAsync(produceFromTar(streamOf(tar), dir));
  await assert.rejects(
    run(ustar([{ name: "missing", data: te.encode("x") }])),
    (e) => e instanceof ProducerFileError && e.reason === "ENOENT",
  );
  // A size mismatch is not an error: the entry travels inline (its bytes are in the tar).
  assert.deepEqual(
    summary(await run(ustar([{ name: "short", data: te.encode("abc") }]))),
    ["M 512", "I 3", "M 1533"],
  );
  await assert.rejects(
    run(ustar([{ name: "sym", data: te.encode("okay") }])),
    (e) => e instanceof ProducerFileError && e.reason === "ELOOP",
  );
  const good = ustar([{ name: "ok", data: te.encode("okay") }]);
  for (const cut of [100, 512, 515, 1024 + 100]) {
    await assert.rejects(run(good.subarray(0, cut)), TarHeaderError, `cut at ${cut}`);
  }
  // No end-of-archive marker at all, or one cut after its first block: carried verbatim.
  assert.equal(summary(await run(good.subarray(0, 1024))).join(","), "M 512,F ok 4 @0,M 508");
  assert.equal(summary(await run(good.subarray(0, 1636))).join(","), "M 512,F ok 4 @0,M 1120");
  const corrupt = good.slice();
  corrupt[0] ^= 1;
  await assert.rejects(run(corrupt), /checksum mismatch/);
  assert.equal(openFdCount(), before, "no fd leaked");
});

Deno.test("producer pulls the tar only as fast as chunks are consumed", async () => {
  await using d = await tempDir();
  const files = Array.from(
    { length: 50 },
    (_, i) => ({ name: `f${i}`, data: new Uint8Array(100_000) }),
  );
  for (const f of files) await Deno.writeFile(`${d.path}/${f.name}`, f.data);
  using dir = openDir(d.path);
  const tar = ustar(files);
  let pulled = 0;
  const src = streamOf(tar, 65536).pipeThrough(
    new TransformStream(
      {
        transform(b, c) {
          pulled += b.length;
          c.enqueue(b);
        },
      },
    ),
  );
  const reader = produceFromTar(src, dir).getReader();
  for (let i = 0; i < 4; i++) await reader.read();
  assert.ok(pulled < tar.length / 4, `pulled ${pulled} of ${tar.length}`);
  await reader.cancel();
});

Deno.test("fuzz: mutated and truncated tars only give typed errors", async () => {
  const tar = await Deno.readFile(new URL("small.tar", TESTDATA));
  using dir = openDir(new URL("small_tree", TESTDATA).pathname);
  const fc = (await import("fast-check")).default;
  const mutated = fc.tuple(
    fc.array(fc.tuple(fc.nat({ max: 6655 }), fc.integer({ min: 0, max: 255 })), {
      minLength: 1,
      maxLength: 6,
    }),
    fc.nat({ max: tar.length }),
  ).map(([edits, len]) => {
    const b = tar.slice(0, len);
    for (const [at, v] of edits) if (at < b.length) b[at] = v;
    return b;
  });
  await fc.assert(
    fc.asyncProperty(mutated, async (bytes) => {
      try {
        const chunks = await Array.fromAsync(produceFromTar(streamOf(bytes, 777), dir));
        // Whatever was produced must rebuild an archive of the same length (file contents
        // come from the directory, so mutated content bytes are not seen).
        let n = 0;
        for await (const b of reconstruct(ReadableStream.from(chunks), [dir])) n += b.length;
        assert.equal(n, bytes.length);
      } catch (e) {
        if (!(e instanceof TarHeaderError || e instanceof SplitdirfdstreamError)) throw e;
      }
    }),
    { seed: 0x7a7, numRuns: 1000 },
  );
});

Deno.test("a header declaring a huge inline file does not allocate it up front", async () => {
  await using d = await tempDir();
  using dir = openDir(d.path);
  // "../big" must travel inline; the header claims 200 MiB but only 1 KiB follows.
  const full = ustar([{ name: "../big", data: new Uint8Array(1024) }]);
  const h = full.slice(0, 512);
  h.set(te.encode((200 * 1024 * 1024).toString(8).padStart(11, "0") + "\0"), 124);
  h.set(te.encode("        "), 148);
  h.set(te.encode(h.reduce((a, x) => a + x, 0).toString(8).padStart(6, "0") + "\0 "), 148);
  const tar = new Uint8Array([...h, ...new Uint8Array(1024)]);
  await assert.rejects(
    Array.fromAsync(produceFromTar(streamOf(tar), dir)),
    (e) => e instanceof TarHeaderError && /truncated in file content/.test(e.message),
  );
});

Deno.test("GNU sparse files (gnu and posix formats) are carried verbatim", async (t) => {
  await using d = await tempDir();
  const root = `${d.path}/tree`;
  await Deno.mkdir(root);
  using f = await Deno.open(`${root}/sparse`, { create: true, write: true });
  await f.truncate(4 * 1024 * 1024);
  await f.seek(1024 * 1024, Deno.SeekMode.Start);
  await f.write(new Uint8Array(10000).fill(7));
  f.close();
  await Deno.writeTextFile(`${root}/plain`, "plain");
  using dir = openDir(root);
  for (const format of ["gnu", "posix"]) {
    await t.step(format, async () => {
      const out = await new Deno.Command("tar", {
        args: [`--format=${format}`, "--sparse", "--sort=name", "-C", root, "-cf", "-", "."],
        stdout: "piped",
      }).output();
      assert.ok(out.success);
      const chunks = await Array.fromAsync(produceFromTar(streamOf(out.stdout), dir));
      const s = summary(chunks);
      assert.ok(s.includes("F plain 5 @0"), s.join(" "));
      assert.ok(!s.some((x) => x.includes("sparse")), "sparse content is not referenced");
      assert.equal(
        await sha256Of(reconstruct(ReadableStream.from(chunks), [dir])),
        sha256(out.stdout),
      );
    });
  }
});

Deno.test("a path stored twice in the archive still rebuilds the archive", async () => {
  await using d = await tempDir();
  // The directory holds the last copy, as extraction leaves it.
  await Deno.writeTextFile(`${d.path}/twice`, "second, longer copy");
  using dir = openDir(d.path);
  const tar = ustar([
    { name: "twice", data: te.encode("first") },
    { name: "twice", data: te.encode("second, longer copy") },
  ]);
  const chunks = await Array.fromAsync(produceFromTar(streamOf(tar), dir));
  assert.deepEqual(summary(chunks), ["M 512", "I 5", "M 1019", "F twice 19 @0", "M 1517"]);
  assert.equal(await sha256Of(reconstruct(ReadableStream.from(chunks), [dir])), sha256(tar));
});

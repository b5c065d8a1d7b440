import assert from "node:assert/strict";
import { openDir } from "../../../ffi/fs.ts";
import type { Chunk } from "../../splitdirfdstream/chunk.ts";
import { crc64 } from "./crc64.ts";
import { LayerContentError, TarSplitCrcMismatchError } from "./errors.ts";
import { layerChunks, type LayerChunksStats } from "./layer_chunks.ts";
import type { TarSplitEntry } from "./tar_split_entries.ts";

const enc = new TextEncoder();

type FileEntry = Extract<TarSplitEntry, { type: "file" }>;

function file(name: string | Uint8Array, content: Uint8Array, position: number): FileEntry {
  return {
    type: "file",
    name: typeof name === "string" ? enc.encode(name) : name,
    size: content.length,
    crc: content.length ? crc64(content) : null,
    position,
  };
}

async function collect(
  entries: TarSplitEntry[],
  dirs: string[],
  opts: { bypass?: boolean; verifyCrc?: boolean } = {},
): Promise<{ chunks: Chunk[]; stats: LayerChunksStats }> {
  const fds = dirs.map((d) => openDir(d));
  try {
    const stats: LayerChunksStats = { files: 0, fileBacked: 0, inlined: 0, bytes: 0 };
    const chunks: Chunk[] = [];
    const gen = layerChunks(
      (async function* () {
        yield* entries;
      })(),
      fds,
      { layerId: "L", consumerBypassesDac: opts.bypass ?? true, verifyCrc: opts.verifyCrc },
      stats,
    );
    for await (const c of gen) chunks.push(c);
    return { chunks, stats };
  } finally {
    for (const fd of fds) fd.close();
  }
}

async function setXattr(path: string, name: string): Promise<void> {
  const out = await new Deno.Command("python3", {
    args: ["-c", "import os,sys; os.setxattr(sys.argv[1], sys.argv[2], b'')", path, name],
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
}

Deno.test("layer_chunks: segments verbatim, files by name, lowers and metacopy", async () => {
  const top = await Deno.makeTempDir();
  const lower = await Deno.makeTempDir();
  try {
    const a = enc.encode("content of a");
    const b = enc.encode("lower content");
    const c = enc.encode("secret!");
    await Deno.mkdir(`${top}/d`);
    await Deno.writeFile(`${top}/d/a`, a);
    await Deno.writeFile(`${lower}/b`, b);
    await Deno.writeFile(`${top}/meta`, enc.encode("stub!!"));
    await Deno.writeFile(`${lower}/meta`, enc.encode("real!!"));
    await setXattr(`${top}/meta`, "user.overlay.metacopy");
    await Deno.writeFile(`${top}/c`, c, { mode: 0o600 });
    await Deno.chmod(`${top}/c`, 0o600);
    const raw = new Uint8Array([0x78, 0xff]); // "x\xff": not UTF-8
    // Write the non-UTF-8 name with python (Deno paths are strings).
    const out = await new Deno.Command("python3", {
      args: [
        "-c",
        "import os,sys; open(os.fsencode(sys.argv[1]) + b'/x\\xff','wb').write(b'raw-name')",
        top,
      ],
    }).output();
    assert.equal(out.code, 0);
    const seg = { type: "segment" as const, payload: new Uint8Array([1, 2, 3]), position: 0 };
    const entries: TarSplitEntry[] = [
      seg,
      file("./d/a", a, 1),
      { type: "file", name: enc.encode("d"), size: 0, crc: null, position: 2 },
      file("/b", b, 3),
      file("meta", enc.encode("real!!"), 4),
      file("c", c, 5),
      file(raw, enc.encode("raw-name"), 6),
      { type: "segment", payload: new Uint8Array(0), position: 7 },
    ];
    const { chunks, stats } = await collect(entries, [top, lower]);
    assert.deepEqual(chunks, [
      { type: "metadata", data: new Uint8Array([1, 2, 3]) },
      { type: "fileBackedData", contentLength: a.length, dirfdIndex: 0, filename: "d/a" },
      { type: "fileBackedData", contentLength: b.length, dirfdIndex: 1, filename: "b" },
      { type: "fileBackedData", contentLength: 6, dirfdIndex: 1, filename: "meta" },
      { type: "fileBackedData", contentLength: c.length, dirfdIndex: 0, filename: "c" },
      { type: "inlineData", data: enc.encode("raw-name") },
    ]);
    assert.deepEqual(stats, { files: 5, fileBacked: 4, inlined: 1, bytes: 12 + 13 + 6 + 7 + 8 });
    // A consumer without DAC bypass gets the 0600 file inline.
    const nb = await collect(entries, [top, lower], { bypass: false });
    assert.deepEqual(nb.chunks[4], { type: "inlineData", data: c });
  } finally {
    await Deno.remove(top, { recursive: true });
    await Deno.remove(lower, { recursive: true });
  }
});

Deno.test("layer_chunks: missing, resized, non-regular and changed files are typed errors", async () => {
  const top = await Deno.makeTempDir();
  try {
    const a = enc.encode("abcdef");
    await Deno.writeFile(`${top}/a`, a);
    await Deno.mkdir(`${top}/dir`);
    await Deno.symlink("a", `${top}/link`);
    const cases: [TarSplitEntry, RegExp][] = [
      [file("missing", a, 0), /is missing/],
      [{ ...file("a", a, 0), size: 7 }, /has 6 bytes but tar-split recorded 7/],
      [file("dir", a, 0), /not a regular file/],
      [file("link", a, 0), /cannot be opened/],
      [file("./", a, 0), /names the layer root/],
    ];
    for (const [e, re] of cases) {
      await assert.rejects(() => collect([e], [top]), (err) => {
        assert.ok(err instanceof LayerContentError, String(err));
        assert.match(err.message, re);
        return true;
      });
    }
    const changed = { ...file("a", a, 0), crc: crc64(enc.encode("abcdeF")) };
    await assert.rejects(() => collect([changed], [top]), (err) => {
      assert.ok(err instanceof TarSplitCrcMismatchError);
      assert.equal(err.expected, crc64(enc.encode("abcdeF")).toHex());
      assert.equal(err.actual, crc64(a).toHex());
      return true;
    });
    // With the check off, the chunk is produced (the diff_id check downstream still applies).
    assert.equal((await collect([changed], [top], { verifyCrc: false })).chunks.length, 1);
  } finally {
    await Deno.remove(top, { recursive: true });
  }
});

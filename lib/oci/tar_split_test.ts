import { deepStrictEqual as assertEquals, ok, rejects } from "node:assert/strict";
import fc from "fast-check";
import { encodeTar, type TarEntry } from "../tar/tar_writer.ts";
import { INLINE_CONTENT_MAX } from "../erofs/format.ts";
import { TarFormatError, type TarSplitSink, TarSplitter } from "./tar_split.ts";

type Segment = { inline: Uint8Array } | { file: Uint8Array; size: number };

/** A sink that records the split: merged inline runs and external files. */
class RecordingSink implements TarSplitSink {
  segments: Segment[] = [];
  #inline: number[] = [];
  #file: Uint8Array[] | null = null;
  #size = 0;
  writeInline(b: Uint8Array): void {
    if (this.#file) throw new Error("inline inside a file");
    for (const x of b) this.#inline.push(x);
  }
  beginFile(size: number): void {
    this.#flush();
    this.#file = [];
    this.#size = size;
  }
  writeFileChunk(b: Uint8Array): void {
    this.#file!.push(b.slice());
  }
  endFile(): void {
    const bytes = new Uint8Array(this.#file!.reduce((n, c) => n + c.length, 0));
    let o = 0;
    for (const c of this.#file!) {
      bytes.set(c, o);
      o += c.length;
    }
    this.segments.push({ file: bytes, size: this.#size });
    this.#file = null;
  }
  #flush(): void {
    if (this.#inline.length) this.segments.push({ inline: new Uint8Array(this.#inline) });
    this.#inline = [];
  }
  done(): Segment[] {
    this.#flush();
    return this.segments;
  }
}

function concat(segs: Segment[]): Uint8Array {
  const parts = segs.map((s) => ("inline" in s ? s.inline : s.file));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

async function split(tar: Uint8Array, chunk = 4096): Promise<{ segs: Segment[]; s: TarSplitter }> {
  const sink = new RecordingSink();
  const s = new TarSplitter(sink);
  for (let o = 0; o < tar.length; o += chunk) await s.push(tar.subarray(o, o + chunk));
  s.finish();
  return { segs: sink.done(), s };
}

async function gnuTar(args: string[], files: Record<string, Uint8Array | null>) {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/src`);
    for (const [p, c] of Object.entries(files)) {
      const full = `${dir}/src/${p}`;
      await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
      if (c === null) await Deno.mkdir(full, { recursive: true });
      else await Deno.writeFile(full, c);
    }
    const out = await new Deno.Command("tar", {
      args: ["-C", `${dir}/src`, "-cf", `${dir}/t.tar`, ...args, "."],
    }).output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    return await Deno.readFile(`${dir}/t.tar`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("tar_split: §4.12 'alpha' layer splits into header, one external, padding", async () => {
  // The Rust test tar: ustar header, mode 0700, 1000 zero bytes, padding, 1024-byte end marker.
  const tar = encodeTar([{
    path: "alpha",
    type: "file",
    mode: 0o700,
    content: new Uint8Array(1000),
  }]);
  assertEquals(tar.length, 2560);
  const { segs, s } = await split(tar, 7);
  assertEquals(segs.length, 3);
  assertEquals("inline" in segs[0] && segs[0].inline.length, 512);
  assertEquals("file" in segs[1] && segs[1].size, 1000);
  assertEquals("inline" in segs[2] && segs[2].inline.length, 24 + 1024);
  assertEquals(concat(segs), tar);
  assertEquals(s.entries, 1);
});

Deno.test("tar_split: 64-byte threshold and sizes around block boundaries", async () => {
  const sizes = [0, 1, 63, 64, 65, 511, 512, 513, 4095, 4096, 4097];
  const entries: TarEntry[] = sizes.map((n, i) => ({
    path: `f${i}`,
    type: "file",
    content: new Uint8Array(n).fill(i + 1),
  }));
  const tar = encodeTar(entries);
  for (const chunk of [1, 100, 512, 1 << 20]) {
    const { segs } = await split(tar, chunk);
    const files = segs.filter((x) => "file" in x) as { file: Uint8Array; size: number }[];
    assertEquals(files.map((f) => f.size), sizes.filter((n) => n > INLINE_CONTENT_MAX));
    for (const f of files) assertEquals(f.file.length, f.size);
    assertEquals(concat(segs), tar);
  }
});

Deno.test("tar_split: GNU long names, PAX headers, hardlinks and record padding stay inline", async () => {
  const long = "d/" + "n".repeat(150) + "/" + "m".repeat(120);
  const files = {
    [long]: new Uint8Array(3000).fill(3),
    "d/small": new TextEncoder().encode("hi\n"),
    "d/empty": new Uint8Array(0),
  };
  for (const format of ["gnu", "pax"]) {
    const tar = await gnuTar([`--format=${format}`], files);
    // GNU tar pads to a 10240-byte record: everything after the end marker is inline.
    assertEquals(tar.length % 10240, 0);
    const { segs, s } = await split(tar, 333);
    const ext = segs.filter((x) => "file" in x);
    assertEquals(ext.length, 1, format);
    assertEquals(concat(segs), tar);
    ok(s.entries >= 4);
  }
  const withLink = encodeTar([
    { path: "a", type: "file", content: new Uint8Array(100) },
    { path: "b", type: "hardlink", linkname: "a" },
    { path: "c", type: "symlink", linkname: "x".repeat(300) },
  ]);
  const { segs } = await split(withLink);
  assertEquals(segs.filter((x) => "file" in x).length, 1);
  assertEquals(concat(segs), withLink);
});

Deno.test("tar_split: PAX size overrides the header size", async () => {
  // A PAX record announcing 100 bytes with a header size field of 0.
  const big = encodeTar([{ path: "p", type: "file", content: new Uint8Array(100).fill(9) }]);
  const enc = new TextEncoder();
  const rec = enc.encode("12 size=100\n");
  const paxTar = encodeTar([{ path: "PaxHeaders/p", type: "file", content: rec }]);
  // Turn that first entry into an 'x' header and zero the size of the real header.
  const hdr = paxTar.slice(0, 512);
  hdr[156] = "x".charCodeAt(0);
  const real = big.slice(0, 512);
  real.fill(0x30, 124, 135);
  const fixSum = (h: Uint8Array) => {
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  };
  fixSum(hdr);
  fixSum(real);
  const tar = new Uint8Array([
    ...hdr,
    ...paxTar.slice(512, 1024),
    ...real,
    ...big.slice(512),
  ]);
  const { segs } = await split(tar, 50);
  const files = segs.filter((x) => "file" in x) as { size: number }[];
  assertEquals(files.map((f) => f.size), [100]);
  assertEquals(concat(segs), tar);
});

Deno.test("tar_split: truncation, bad checksums and sparse entries are TarFormatErrors", async () => {
  const tar = encodeTar([{ path: "f", type: "file", content: new Uint8Array(1000) }]);
  await rejects(split(tar.subarray(0, 700)), TarFormatError);
  await rejects(split(tar.subarray(0, 100)), TarFormatError);
  const bad = tar.slice();
  bad[0] ^= 1;
  await rejects(
    split(bad),
    (e: Error) => e instanceof TarFormatError && /checksum/.test(e.message),
  );
  const sparse = tar.slice();
  sparse[156] = "S".charCodeAt(0);
  sparse.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of sparse.subarray(0, 512)) sum += b;
  sparse.set(new TextEncoder().encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  await rejects(split(sparse), /sparse/);
  // Empty input and a tar without the end marker are fine.
  assertEquals((await split(new Uint8Array(0))).segs, []);
  const noEnd = tar.subarray(0, tar.length - 1024);
  assertEquals(concat((await split(noEnd)).segs), noEnd);
});

Deno.test("tar_split: property — any tar round-trips; any mutation fails only with TarFormatError", async () => {
  const entry = fc.record({
    path: fc.stringMatching(/^[a-z]{1,8}(\/[a-z]{1,8}){0,2}$/),
    type: fc.constantFrom("file" as const, "dir" as const, "symlink" as const),
    size: fc.integer({ min: 0, max: 3000 }),
    long: fc.boolean(),
  });
  await fc.assert(
    fc.asyncProperty(
      fc.array(entry, { maxLength: 6 }),
      fc.integer({ min: 1, max: 2000 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
      async (es, chunk, mutations) => {
        const tar = encodeTar(es.map((e) => ({
          path: e.long ? e.path + "/" + "q".repeat(200) : e.path,
          type: e.type,
          content: e.type === "file" ? new Uint8Array(e.size).fill(1) : undefined,
          linkname: e.type === "symlink" ? "t" : undefined,
        })));
        const { segs } = await split(tar, chunk);
        assertEquals(concat(segs), tar);
        const m = tar.slice();
        for (const [i, v] of mutations) m[i % m.length] = v;
        try {
          const r = await split(m, chunk);
          assertEquals(concat(r.segs), m);
        } catch (e) {
          if (!(e instanceof TarFormatError)) throw e;
        }
      },
    ),
    { seed: 4242, numRuns: 150 },
  );
});

import assert from "node:assert/strict";
import fc from "fast-check";
import type { SplitstreamChunk } from "../repository/splitstream.ts";
import { encodeTar, type TarEntry } from "../tar/tar_writer.ts";
import { TarHeaderError } from "../tar/tar_header.ts";
import {
  layerEntries,
  type LayerEntry,
  LayerEntryError,
  makedev,
  normalizeTarPath,
  paxMtimeNsec,
} from "./layer_entries.ts";
import { TarSplitter } from "./tar_split.ts";

/** Split a tar like a layer import: inline bytes, external "objects" (sha256 stands in for verity). */
async function split(tar: Uint8Array): Promise<SplitstreamChunk[]> {
  const chunks: SplitstreamChunk[] = [];
  let file: Uint8Array[] = [];
  const s = new TarSplitter({
    writeInline: (b) => void chunks.push({ inline: b.slice() }),
    beginFile: () => void (file = []),
    writeFileChunk: (b) => void file.push(b.slice()),
    endFile: async () => {
      const all = new Uint8Array(file.reduce((n, b) => n + b.length, 0));
      let o = 0;
      for (const b of file) all.set(b, (o += b.length) - b.length);
      chunks.push({ external: new Uint8Array(await crypto.subtle.digest("SHA-256", all)) });
    },
  });
  await s.push(tar);
  s.finish();
  return chunks;
}

const enc = new TextEncoder();
const bytes = (n: number, seed = 1) =>
  Uint8Array.from({ length: n }, (_, i) => (i * seed + 7) & 255);

Deno.test("layerEntries: kinds, inline/external split, PAX xattrs, long names", async () => {
  const big = bytes(5000);
  const entries: TarEntry[] = [
    { path: "./", type: "dir", mode: 0o755, mtime: 5 },
    { path: "usr/", type: "dir", mode: 0o750, uid: 7, gid: 8, mtime: 10 },
    { path: "usr/small", type: "file", content: bytes(64), mode: 0o600 },
    { path: "usr/big", type: "file", content: big, xattrs: { "user.a": "b" } },
    { path: "usr/link", type: "symlink", linkname: "../x" },
    { path: "usr/hard", type: "hardlink", linkname: "./usr/big" },
    { path: `usr/${"n".repeat(150)}`, type: "file", content: enc.encode("x") },
  ];
  const got: LayerEntry[] = [...layerEntries(await split(encodeTar(entries)))];
  assert.deepEqual(got.map((e) => e.path.join("/")), [
    "",
    "usr",
    "usr/small",
    "usr/big",
    "usr/link",
    "usr/hard",
    `usr/${"n".repeat(150)}`,
  ]);
  assert.equal(got[1].stat.mode, 0o750);
  assert.equal(got[1].stat.uid, 7);
  assert.equal(got[1].stat.mtimeSec, 10);
  const small = got[2].item;
  assert.ok(small.kind === "leaf" && small.content.kind === "regular");
  assert.equal(small.content.content.kind, "inline");
  const b = got[3].item;
  assert.ok(b.kind === "leaf" && b.content.kind === "regular");
  assert.equal(b.content.content.kind, "external");
  if (b.content.content.kind === "external") {
    assert.equal(b.content.content.size, 5000);
    assert.deepEqual(
      b.content.content.digest,
      new Uint8Array(await crypto.subtle.digest("SHA-256", big)),
    );
  }
  assert.deepEqual(got[3].stat.xattrs.get("user.a"), enc.encode("b"));
  assert.deepEqual(got[4].item, { kind: "leaf", content: { kind: "symlink", target: "../x" } });
  assert.deepEqual(got[5].item, { kind: "hardlink", target: ["usr", "big"] });
});

Deno.test("layerEntries: an external chunk where inline data belongs is refused", async () => {
  const chunks = await split(encodeTar([{ path: "a", type: "file", content: bytes(100) }]));
  // Turn the external content into inline bytes: a > 64-byte file stored inline.
  const bad = chunks.map((c) => ("external" in c ? { inline: bytes(100) } : c));
  assert.throws(() => [...layerEntries(bad)], LayerEntryError);
  // An external object in place of a header.
  assert.throws(
    () => [...layerEntries([{ external: new Uint8Array(32) }])],
    LayerEntryError,
  );
  // Truncated header.
  assert.throws(
    () => [...layerEntries([{ inline: new Uint8Array(100).fill(1) }])],
    LayerEntryError,
  );
});

Deno.test("normalizeTarPath, paxMtimeNsec, makedev", () => {
  assert.deepEqual(normalizeTarPath(enc.encode("/./a//b/")), ["a", "b"]);
  assert.deepEqual(normalizeTarPath(enc.encode("./")), []);
  assert.throws(() => normalizeTarPath(enc.encode("a/../b")), LayerEntryError);
  assert.equal(paxMtimeNsec("1.5"), 500000000);
  assert.equal(paxMtimeNsec("1.1234567899"), 123456789);
  assert.equal(paxMtimeNsec("12"), 0);
  assert.equal(paxMtimeNsec("1.x"), 0);
  assert.equal(makedev(1, 3), 259);
  assert.equal(makedev(8, 17), 0x811);
});

Deno.test("layerEntries fuzz: corrupted chunk streams only raise typed errors", async () => {
  const base = await split(encodeTar([
    { path: "d/", type: "dir" },
    { path: "d/f", type: "file", content: bytes(200), xattrs: { "user.x": "y" } },
    { path: "d/s", type: "file", content: bytes(10) },
    { path: "d/l", type: "symlink", linkname: "f" },
  ]));
  await fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 8 }),
      fc.nat(),
      fc.boolean(),
      (flips, cut, dropExternal) => {
        const chunks: SplitstreamChunk[] = base.map((c) =>
          "inline" in c ? { inline: c.inline.slice() } : c
        ).filter((c) => !(dropExternal && "external" in c));
        const inl = chunks.filter((c): c is { inline: Uint8Array } => "inline" in c);
        for (const [pos, v] of flips) {
          const c = inl[pos % inl.length];
          c.inline[pos % c.inline.length] = v;
        }
        const last = inl[inl.length - 1];
        last.inline = last.inline.subarray(0, cut % (last.inline.length + 1));
        try {
          for (const _ of layerEntries(chunks));
        } catch (e) {
          if (!(e instanceof LayerEntryError || e instanceof TarHeaderError)) throw e;
        }
      },
    ),
    { seed: 0x1a7e4, numRuns: 400 },
  );
});

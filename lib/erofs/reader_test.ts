import assert from "node:assert/strict";
import fc from "fast-check";
import { genTree } from "../../tests/erofs_tree_gen.ts";
import { parseDumpfile, writeDumpfile } from "./dumpfile.ts";
import { ErofsFormatError, fsckErofs, readErofs } from "./reader.ts";
import type { Directory, Inode } from "./tree.ts";
import { writeErofs } from "./writer.ts";

const SEED = 0xe0f5;

// node:assert's deepEqual is very slow on megabyte arrays and prints them whole on failure.
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

// What writing loses on purpose: V2 drops nanoseconds; V1 overwrites a user's
// trusted.overlay.opaque / user.overlay.opaque in directories that hold a whiteout.
function normalise(root: Directory, version: 0 | 1 | 2): Directory {
  const seen = new Set<Inode>();
  const stack: Inode[] = [root];
  while (stack.length) {
    const ino = stack.pop()!;
    if (seen.has(ino)) continue;
    seen.add(ino);
    if (version === 2) ino.stat.mtimeNsec = 0;
    if (ino.type === "dir") {
      stack.push(...ino.entries.values());
      const wh = [...ino.entries.values()].some((c) =>
        c.type === "leaf" && c.content.kind === "chr" && c.content.rdev === 0
      );
      if (wh && version === 1) {
        ino.stat.xattrs.delete("trusted.overlay.opaque");
        ino.stat.xattrs.delete("user.overlay.opaque");
      }
    }
  }
  return root;
}

Deno.test("readErofs inverts writeErofs on random trees (V0, V1, V2) and fsck finds nothing", () => {
  fc.assert(
    fc.property(fc.gen(), fc.constantFrom(0 as const, 1 as const, 2 as const), (g, version) => {
      const tree = genTree(g);
      const img = writeErofs(tree, { version });
      const back = readErofs(img, { strict: true });
      assert.equal(back.composefsVersion, version);
      assert.deepEqual(fsckErofs(img), []);
      // Same bytes when written again, and the same tree up to the documented losses.
      assert.equal(firstDifference(writeErofs(back.root, { version }), img), -1);
      const expected = writeDumpfile(normalise(parseDumpfile(writeDumpfile(tree)), version));
      assert.equal(writeDumpfile(back.root), expected);
    }),
    { seed: SEED, numRuns: 120, endOnFailure: true },
  );
});

Deno.test("readErofs of the spec's experiment image lists the same tree as composefs-info", () => {
  const dump = [
    "/ 0 40755 3 0 0 0 1700000000.123456789 - - -",
    "/big.txt 100 100644 2 0 0 0 1700000000.123456789 a6/cd192a5d5bb53e8ae9d5e3a0aba764988e91277bef5b796c9ab721f9c682f0 - a6cd192a5d5bb53e8ae9d5e3a0aba764988e91277bef5b796c9ab721f9c682f0 user.foo=bar",
    "/dir 0 40755 2 0 0 0 1700000000.123456789 - - - trusted.overlay.custom=val",
    "/dir/big-hardlink 0 @120000 - - - - 0.0 /big.txt - -",
    "/empty 0 100644 1 0 0 0 1700000000.123456789 - - -",
    "/link 9 120777 1 0 0 0 1700000000.123456789 small.txt - -",
    "/small.txt 12 100644 1 0 0 0 1700000000.123456789 - hello\\x20small\\n - user.foo=bar",
    "/wh 0 20000 1 0 0 0 1700000000.0 - - -",
    "",
  ].join("\n");
  for (const version of [0, 1, 2] as const) {
    const img = writeErofs(parseDumpfile(dump), { version });
    const got = writeDumpfile(readErofs(img, { strict: true }).root);
    assert.equal(got, version === 2 ? dump.replaceAll(".123456789", ".0") : dump);
  }
});

Deno.test("readErofs rejects random bytes with ErofsFormatError only", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 9000 }), (bytes) => {
      // Make the magics right half of the time so parsing gets past the header.
      if (bytes.length >= 1152 && bytes[0] % 2 === 0) {
        new DataView(bytes.buffer).setUint32(0, 0xd078629a, true);
        new DataView(bytes.buffer).setUint32(1024, 0xe0f5e1e2, true);
        bytes[1024 + 12] = 12;
        bytes.fill(0, 1024 + 80, 1024 + 84);
      }
      try {
        readErofs(bytes);
      } catch (e) {
        if (!(e instanceof ErofsFormatError)) throw e;
      }
      assert.ok(Array.isArray(fsckErofs(bytes)));
    }),
    { seed: SEED, numRuns: 400 },
  );
});

Deno.test("readErofs and fsckErofs on mutated valid images raise only ErofsFormatError", () => {
  fc.assert(
    fc.property(
      fc.gen(),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 8,
      }),
      (g, flips) => {
        const img = writeErofs(genTree(g), { version: g(fc.constantFrom, 0, 1, 2) as 0 | 1 | 2 });
        for (const [at, v] of flips) img[1024 + (at % (img.length - 1024))] = v;
        try {
          const r = readErofs(img);
          writeDumpfile(r.root);
        } catch (e) {
          if (!(e instanceof ErofsFormatError)) throw e;
        }
        assert.ok(Array.isArray(fsckErofs(img)));
      },
    ),
    { seed: SEED, numRuns: 300 },
  );
});

Deno.test("fsckErofs reports a wrong link count and a truncated image", () => {
  const img = writeErofs(
    parseDumpfile("/ 0 40755 2 0 0 0 0.0 - - -\n/f 1 100644 1 0 0 0 0.0 - x -\n"),
    {
      version: 2,
    },
  );
  assert.deepEqual(fsckErofs(img), []);
  // Root is nid 36 (extended, V2): i_nlink at +44. Set it to 9.
  const bad = img.slice();
  new DataView(bad.buffer).setUint32(36 * 32 + 44, 9, true);
  assert.match(fsckErofs(bad).join("\n"), /nlink 9, expected 2/);
  assert.ok(fsckErofs(img.subarray(0, 1100)).length > 0);
});

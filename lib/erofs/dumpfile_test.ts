import assert from "node:assert/strict";
import fc from "fast-check";
import { genTree } from "../../tests/erofs_tree_gen.ts";
import { DumpfileParseError, parseDumpfile, writeDumpfile } from "./dumpfile.ts";
import { Directory, Leaf, makeStat } from "./tree.ts";

const SEED = 0xd0d0;
const enc = new TextEncoder();

Deno.test("writeDumpfile escapes like composefs-dump(5)", () => {
  const root = new Directory(makeStat({ mtimeSec: 1, mtimeNsec: 5 }));
  root.stat.xattrs.set("user.a=b", enc.encode("-"));
  root.stat.xattrs.set("user.empty", new Uint8Array(0));
  root.entries.set(
    "with space",
    new Leaf(makeStat({ mode: 0o644 }), {
      kind: "regular",
      content: { kind: "inline", data: enc.encode("-") },
    }),
  );
  root.entries.set("-", new Leaf(makeStat({ mode: 0o777 }), { kind: "symlink", target: "a\\b\n" }));
  assert.equal(
    writeDumpfile(root),
    [
      "/ 0 40755 2 0 0 0 1.5 - - - user.a\\x3db=- user.empty=",
      "/- 4 120777 1 0 0 0 0.0 a\\\\b\\n - -",
      "/with\\x20space 1 100644 1 0 0 0 0.0 - \\x2d -",
      "",
    ].join("\n"),
  );
});

Deno.test("parseDumpfile accepts upper-case hex escapes and raw UTF-8, sorts xattrs", () => {
  const root = parseDumpfile(
    "/ 0 40755 2 0 0 0 0.0 - - - z=1 a=\\x4A\n/\u00fc 1 100600 1 0 0 0 0.0 - \\x4A -\n",
  );
  assert.deepEqual([...root.stat.xattrs.keys()], ["a", "z"]);
  assert.deepEqual(root.stat.xattrs.get("a"), enc.encode("J"));
  const leaf = root.entries.get("\xc3\xbc");
  assert.ok(leaf && leaf.type === "leaf" && leaf.content.kind === "regular");
});

Deno.test("parseDumpfile rejects malformed lines with their line number", () => {
  const cases: [string, RegExp, number][] = [
    ["/a 0 40755 2 0 0 0 0.0 - - -\n", /start with the root/, 1],
    [
      "/ 0 40755 2 0 0 0 0.0 - - -\n/a/b 0 100644 1 0 0 0 0.0 - - -\n",
      /Parent directory not found/,
      2,
    ],
    [
      "/ 0 40755 2 0 0 0 0.0 - - -\n/b 0 @100644 - - - - 0.0 /a - -\n",
      /Hardlink target not found/,
      2,
    ],
    ["/ 0 40755 2 0 0 0 0.0 - - -\n/d 0 @40755 - - - - 0.0 /a - -\n", /hardlinked directory/, 2],
    ["/ 0 40755 2 0 0 0 0.0 - - -\n/w 0 20000 2 0 0 0 0.0 - - -\n", /nlink > 1/, 2],
    ["/ 0 40755 2 0 0 0 1.1000000000 - - -\n", /nanoseconds/, 1],
    [
      "/ 0 40755 2 0 0 0 0.0 - - -\n/f 1 100644 1 0 0 0 0.0 - x " + "ab".repeat(32) + "\n",
      /digest/,
      2,
    ],
    ["/ 0 40755 2 0 0 0 0.0 - - -\n/x\\q 0 100644 1 0 0 0 0.0 - - -\n", /Invalid escape/, 2],
    ["/ 0 40755 2 0 0 0 0.0 - - -\n/a/../b 0 100644 1 0 0 0 0.0 - - -\n", /component/, 2],
    ["/ 0 40755 2 0 0 0 0.0 - - -\n/f 0 100644 1 0 0 7 0.0 - - -\n", /rdev/, 2],
    ["/ 0 40755 2 0 0 0 0.0 - - -\n/f 0 170644 1 0 0 0 0.0 - - -\n", /file type/, 2],
    ["/ 0 40755 2 0 0 0 0.0 - - - novalue\n", /Missing =/, 1],
    ["", /empty/, 0],
  ];
  for (const [text, re, line] of cases) {
    assert.throws(() => parseDumpfile(text), (e: unknown) => {
      assert.ok(e instanceof DumpfileParseError, String(e));
      assert.match(e.message, re);
      assert.equal(e.line, line);
      return true;
    });
  }
});

Deno.test("writeDumpfile and parseDumpfile round-trip random trees", () => {
  fc.assert(
    fc.property(fc.gen(), (g) => {
      const text = writeDumpfile(genTree(g));
      assert.equal(writeDumpfile(parseDumpfile(text)), text);
    }),
    { seed: SEED, numRuns: 150 },
  );
});

Deno.test("parseDumpfile on random and mutated input raises only DumpfileParseError", () => {
  const sample = writeDumpfile(parseDumpfile(
    "/ 0 40755 3 0 0 0 5.7 - - - user.x=1\n/a 0 40700 2 1 2 0 1.0 - - -\n" +
      "/a/f 3 100644 2 0 0 0 1.0 - abc -\n/b 0 @100644 - - - - 0.0 /a/f - -\n" +
      "/c 9 120777 1 0 0 0 1.0 /a/f\\x20x - -\n/d 0 20000 1 0 0 0 1.0 - - -\n" +
      "/e 70 100644 1 0 0 0 1.0 ab/" + "c".repeat(62) + " - ab" + "c".repeat(62) + "\n",
  ));
  const alphabet = [..." /\\x-=@.0123456789abcdef\nn"];
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ maxLength: 300 }),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom(...alphabet), fc.boolean()), { maxLength: 6 })
          .map((edits) => {
            let s = sample;
            for (const [at, ch, insert] of edits) {
              const i = at % (s.length + 1);
              s = s.slice(0, i) + ch + s.slice(insert ? i : i + 1);
            }
            return s;
          }),
      ),
      (text) => {
        let root: Directory;
        try {
          root = parseDumpfile(text);
        } catch (e) {
          if (e instanceof DumpfileParseError) return;
          throw e;
        }
        const once = writeDumpfile(root);
        assert.equal(writeDumpfile(parseDumpfile(once)), once);
      },
    ),
    { seed: SEED, numRuns: 2000 },
  );
});

import assert from "node:assert/strict";
import { type Directory, type Inode, Leaf, makeStat } from "../erofs/tree.ts";
import type { LayerEntry, LayerItem } from "./layer_entries.ts";
import { MergedTreeBuilder, MergeError, MissingUsrError, transformForOci } from "./merged_tree.ts";

const enc = new TextEncoder();

function e(path: string, item: LayerItem | "dir" | "file", stat = {}): LayerEntry {
  const it: LayerItem = item === "dir" ? { kind: "dir" } : item === "file"
    ? {
      kind: "leaf",
      content: { kind: "regular", content: { kind: "inline", data: enc.encode(path) } },
    }
    : item;
  return { path: path.split("/").filter((c) => c !== ""), stat: makeStat(stat), item: it };
}

function build(entries: LayerEntry[]): Directory {
  const b = new MergedTreeBuilder();
  for (const x of entries) b.apply(x);
  return b.root;
}

function names(d: Directory, prefix = ""): string[] {
  const out: string[] = [];
  for (const [n, c] of d.sortedEntries()) {
    out.push(`${prefix}/${n}`);
    if (c.type === "dir") out.push(...names(c, `${prefix}/${n}`));
  }
  return out;
}

function at(d: Directory, path: string): Inode | undefined {
  let cur: Inode | undefined = d;
  for (const c of path.split("/").filter((x) => x)) {
    cur = cur?.type === "dir" ? cur.entries.get(c) : undefined;
  }
  return cur;
}

Deno.test("merge: whiteouts, opaque dirs, re-declared dirs and replacements", () => {
  const root = build([
    e("a", "dir"),
    e("a/x", "file"),
    e("a/sub", "dir"),
    e("a/sub/y", "file"),
    e("b", "dir"),
    e("b/z", "file"),
    e("c", "file"),
    e("d", "dir"),
    e("d/in", "file"),
    // next "layer"
    e("a/.wh.sub", "file"),
    e("b/.wh..wh..opq", "file"),
    e("b/new", "file"),
    e("a", "dir", { mode: 0o700 }),
    e("c", "dir"),
    e("d", "file"),
    e(".wh.missing", "file"),
  ]);
  assert.deepEqual(names(root), ["/a", "/a/x", "/b", "/b/new", "/c", "/d"]);
  assert.equal(at(root, "a")!.stat.mode, 0o700, "re-declared directory: stat replaced");
  assert.equal(at(root, "c")!.type, "dir");
  assert.equal(at(root, "d")!.type, "leaf");
});

Deno.test("merge: a whiteout after a sibling in the same stream deletes it (composefs-rs order)", () => {
  const root = build([e("d", "dir"), e("d/f", "file"), e("d/.wh.f", "file")]);
  assert.deepEqual(names(root), ["/d"]);
  const opq = build([
    e("d", "dir"),
    e("d/f", "file"),
    e("d/.wh..wh..opq", "file"),
    e("d/g", "file"),
  ]);
  assert.deepEqual(names(opq), ["/d", "/d/g"]);
});

Deno.test("merge: hardlinks share the leaf; bad targets and missing parents are errors", () => {
  const root = build([
    e("d", "dir"),
    e("d/f", "file", { mode: 0o640 }),
    e("d/h", { kind: "hardlink", target: ["d", "f"] }, { mode: 0o777 }),
  ]);
  assert.equal(at(root, "d/f"), at(root, "d/h"));
  assert.equal(at(root, "d/h")!.stat.mode, 0o640, "the link header's metadata is ignored");
  assert.ok(at(root, "d/f") instanceof Leaf);
  assert.throws(() => build([e("x", { kind: "hardlink", target: ["nope"] })]), MergeError);
  assert.throws(
    () => build([e("d", "dir"), e("x", { kind: "hardlink", target: ["d"] })]),
    MergeError,
  );
  assert.throws(() => build([e("x", { kind: "hardlink", target: [] })]), MergeError);
  assert.throws(() => build([e("a/b", "file")]), MergeError);
  assert.throws(() => build([e("a", "file"), e("a/b", "file")]), MergeError);
  assert.throws(() => build([e("", "file")]), MergeError);
});

Deno.test("transformForOci: root from /usr, /run emptied, xattrs filtered", () => {
  const x = (o: Record<string, string>) =>
    new Map(Object.entries(o).map(([k, v]) => [k, enc.encode(v)]));
  const root = build([
    e("", "dir", { mode: 0o700, mtimeSec: 1 }),
    e("usr", "dir", {
      mode: 0o751,
      uid: 3,
      gid: 4,
      mtimeSec: 99,
      mtimeNsec: 5,
      xattrs: x({ "security.capability": "c", "user.u": "u", "security.selinux": "s" }),
    }),
    e("run", "dir", { mtimeSec: 7 }),
    e("run/f", "file"),
    e("f", "file", {
      xattrs: x({ "trusted.t": "t", "user.k": "k", "security.capability": "cap" }),
    }),
    e("h", { kind: "hardlink", target: ["f"] }),
  ]);
  transformForOci(root);
  assert.equal(root.stat.mode, 0o751);
  assert.equal(root.stat.uid, 3);
  assert.equal(root.stat.mtimeSec, 99);
  assert.equal(root.stat.mtimeNsec, 5);
  assert.deepEqual([...root.stat.xattrs.keys()], ["security.capability"]);
  assert.deepEqual([...at(root, "f")!.stat.xattrs.keys()], ["security.capability"]);
  const run = at(root, "run") as Directory;
  assert.equal(run.entries.size, 0);
  assert.equal(run.stat.mtimeSec, 99);

  const root2 = build([
    e("usr", "dir", { xattrs: x({ "user.u": "u", "trusted.x": "x" }) }),
    e("f", "file", { xattrs: x({ "user.k": "k", "security.selinux": "s" }) }),
  ]);
  transformForOci(root2, "keep-user-xattrs");
  assert.deepEqual([...root2.stat.xattrs.keys()], ["user.u"]);
  assert.deepEqual([...at(root2, "f")!.stat.xattrs.keys()], ["user.k"]);
  assert.throws(() => transformForOci(build([e("etc", "dir")])), MissingUsrError);
  assert.throws(() => transformForOci(build([e("usr", "file")])), MissingUsrError);
});

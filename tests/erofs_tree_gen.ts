/**
 * Random composefs trees for property tests (spec erofs-format.md Appendix C): names with
 * dashes, bangs, hex, UTF-8, spaces and 120 bytes; directories of up to 250 entries; inline
 * files around 64 bytes, 2 KiB and 4 KiB (up to 5000); external files from 65 bytes to past
 * 4 GiB; symlinks up to 4095 bytes; devices, whiteouts, fifos, sockets, hardlinks; odd uids,
 * mtimes and xattrs (ACLs, `trusted.overlay.*`, `lustre.*`, binary and empty values).
 *
 * @module
 */

import fc from "fast-check";
import {
  Directory,
  Leaf,
  type LeafContent,
  type Stat,
  utf8ToByteString,
} from "../lib/erofs/tree.ts";

/** The generator function fast-check passes for `fc.gen()`. */
export type Gen = fc.GeneratorValue;

const NAME_POOL = [
  "a",
  "b",
  "-x",
  "!bang",
  ".hidden",
  "..dots",
  "00",
  "ff",
  "7e",
  "with space",
  "eq=sign",
  "back\\slash",
  "tab\there",
  "new\nline",
  utf8ToByteString("über"),
  utf8ToByteString("日本"),
  "\xff\x80raw",
  "x".repeat(120),
  "-",
];

const XATTR_NAMES = [
  "user.foo",
  "user.a=b",
  "user.overlay.x",
  "security.selinux",
  "security.capability",
  "trusted.foo",
  "trusted.overlay.custom",
  "trusted.overlay.opaque",
  "system.posix_acl_access",
  "system.posix_acl_default",
  "lustre.lov",
];

const XATTR_VALUES: Uint8Array[] = [
  new Uint8Array(0),
  new TextEncoder().encode("-"),
  new TextEncoder().encode("bar"),
  new Uint8Array([0]),
  new Uint8Array([0, 0]),
  new Uint8Array([0xee]),
  new TextEncoder().encode("system_u:object_r:usr_t:s0"),
  new TextEncoder().encode("va lue=\\x"),
];

function pick<T>(g: Gen, list: readonly T[]): T {
  return list[g(fc.nat, { max: list.length - 1 })];
}

function genName(g: Gen): string {
  if (g(fc.nat, { max: 3 }) === 0) return pick(g, NAME_POOL);
  return g(fc.stringMatching, /^[a-z0-9._-]{1,12}$/).replace(/^\.\.?$/, "dot");
}

function genStat(g: Gen, base: number): Stat {
  const xattrs = new Map<string, Uint8Array>();
  const nx = g(fc.nat, { max: 5 }) < 3 ? 0 : g(fc.integer, { min: 1, max: 3 });
  for (let i = 0; i < nx; i++) xattrs.set(pick(g, XATTR_NAMES), pick(g, XATTR_VALUES));
  return {
    mode: pick(g, [0o755, 0o644, 0o600, 0o4755, 0o1777, 0o000, 0o7777]),
    uid: pick(g, [0, 0, 1000, 70000]),
    gid: pick(g, [0, 0, 1000, 70000]),
    mtimeSec: base + pick(g, [0, 0, 0, 5, 100]),
    mtimeNsec: pick(g, [0, 0, 123456789]),
    xattrs,
  };
}

function genBytes(g: Gen, len: number): Uint8Array {
  // A cheap pattern seeded by one random byte keeps generation fast for 5000-byte files.
  const seed = g(fc.nat, { max: 255 });
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = (seed + i * 31) & 0xff;
  return out;
}

function genInlineSize(g: Gen): number {
  return pick(g, [
    () => g(fc.integer, { min: 0, max: 70 }),
    () => g(fc.integer, { min: 2030, max: 2070 }),
    () => g(fc.integer, { min: 4080, max: 4110 }),
    () => g(fc.integer, { min: 0, max: 5000 }),
  ])();
}

function genLeafContent(g: Gen, atRoot: boolean, name: string): LeafContent {
  switch (g(fc.nat, { max: 11 })) {
    case 0:
    case 1:
    case 2:
      return {
        kind: "regular",
        content: { kind: "inline", data: genBytes(g, genInlineSize(g)) },
      };
    case 3:
    case 4: {
      const size = pick(g, [
        () => g(fc.integer, { min: 65, max: 70 }),
        () => g(fc.integer, { min: 4090, max: 4100 }),
        () => g(fc.integer, { min: 65, max: 2 ** 24 }),
        () => 2 ** 32 + 5,
        () => 2 ** 20,
        () => 2 ** 20 + 1,
      ])();
      const digest = genBytes(g, 32);
      digest[0] = g(fc.nat, { max: 255 });
      return { kind: "regular", content: { kind: "external", digest, size } };
    }
    case 5:
    case 6: {
      const len = pick(g, [
        () => g(fc.integer, { min: 1, max: 40 }),
        () => g(fc.integer, { min: 3900, max: 4095 }),
        () => g(fc.integer, { min: 1, max: 4095 }),
      ])();
      let target = "";
      for (let i = 0; i < len; i++) {
        target += i % 7 === 6 ? "/" : String.fromCharCode(97 + (i % 26));
      }
      return { kind: "symlink", target };
    }
    case 7:
      return { kind: pick(g, ["chr", "blk"] as const), rdev: pick(g, [1, 259, 0x10305, 123]) };
    case 8:
    case 9:
      // Avoid finding F3 (root `00`…`ff` whiteouts that look like stubs are not escaped).
      if (atRoot && /^[0-9a-f]{2}$/.test(name)) return { kind: "fifo" };
      return { kind: "chr", rdev: 0 };
    case 10:
      return { kind: "fifo" };
    default:
      return { kind: "socket" };
  }
}

/** Build a random tree from fast-check's generator. */
export function genTree(g: Gen): Directory {
  const base = 1_700_000_000;
  const root = new Directory(genStat(g, base));
  const leaves: Leaf[] = [];
  let budget = 600; // entries per tree, so one tree stays a few MB at most
  const fill = (dir: Directory, depth: number) => {
    const big = budget > 250 && g(fc.nat, { max: 30 }) === 0;
    const n = big
      ? g(fc.integer, { min: 100, max: 250 })
      : g(fc.nat, { max: depth === 0 ? 10 : 6 });
    for (let i = 0; i < n && budget > 0; i++, budget--) {
      let name = big ? `entry-${i}-${"n".repeat(i % 40)}` : genName(g);
      if (dir.entries.has(name)) name += `.${i}`;
      const r = g(fc.nat, { max: 9 });
      if (r === 0 && depth < 4 && !big) {
        const sub = new Directory(genStat(g, base));
        dir.entries.set(name, sub);
        fill(sub, depth + 1);
      } else if (r === 1 && leaves.length > 0) {
        dir.entries.set(name, pick(g, leaves));
      } else {
        const content = genLeafContent(g, depth === 0, name);
        const leaf = new Leaf(genStat(g, base), content);
        dir.entries.set(name, leaf);
        const isWhiteout = content.kind === "chr" && content.rdev === 0;
        if (!isWhiteout) leaves.push(leaf);
      }
    }
  };
  fill(root, 0);
  return root;
}

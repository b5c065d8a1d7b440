import assert from "node:assert/strict";
import { fsverityDigest } from "../fsverity/mod.ts";
import { parseDumpfile } from "./dumpfile.ts";
import { writeErofs } from "./writer.ts";
import { xxh32 } from "./xxhash.ts";
import { Directory, Leaf, makeStat } from "./tree.ts";

// Known-answer dumpfiles of spec erofs-format.md §7 (composefs-rs tests and the C experiments).
const H = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
const DUMPS: Record<string, string> = {
  empty: "/ 0 40755 2 0 0 0 0.0 - - -\n",
  simple: `/ 0 40755 2 0 0 0 0.0 - - -
/blkdev 0 60000 1 0 0 123 0.0 - - -
/chrdev 0 20000 1 0 0 123 0.0 - - -
/fifo 0 10000 1 0 0 0 0.0 - - -
/regular-external 1234 100000 1 0 0 0 0.0 5a/${H.slice(2)} - ${H}
/regular-inline 4 100000 1 0 0 0 0.0 - hihi -
/socket 0 140000 1 0 0 0 0.0 - - -
/symlink 7 120000 1 0 0 0 0.0 /target - -`,
  special: String.raw`/ 4096 40555 2 0 0 0 1633950376.0 - - - trusted.foo1=bar-1 user.foo2=bar-2
/blockdev 0 60777 1 0 0 107690 1633950376.0 - - - trusted.bar=bar-2
/chardev 0 20777 1 0 0 10769 1633950376.0 - - - trusted.foo=bar-2
/escaped-xattr 0 100777 1 0 0 0 1633950376.0 - - - trusted.overlay.redirect=/foo\n user.overlay.redirect=/foo\n user.foo=bar-2
/fifo 0 10777 1 0 0 0 1633950376.0 - - - trusted.bar=bar-2
/inline 15 100777 1 0 0 0 1633950376.0 - FOOBAR\nINAFILE\n - user.foo=bar-2
/whiteout 0 20777 1 0 0 0 1633950376.0 - - - trusted.foo=bar-2`,
  ocilayout: String.raw`/ 0 40755 3 0 0 0 1234567890.0 - - -
/hello-link.txt 22 100644 2 0 0 0 1234567890.0 - hello\x20from\x20test\x20layer\n -
/hello.txt 0 @100644 - - - - 0.0 /hello-link.txt - -
/usr 0 40755 2 0 0 0 1234567890.0 - - -`,
  wh: String.raw`/ 0 40755 2 0 0 0 1.0 - - -
/d 0 40755 2 0 0 0 1.0 - - -
/d/gone 0 20000 1 0 0 0 1.0 - - -
/d/keep 2 100644 1 0 0 0 1.0 - ok -`,
  t1: String.raw`/ 4096 40755 3 0 0 0 1700000000.123456789 - - -
/big.txt 100 100644 1 0 0 0 1700000000.123456789 a6/cd192a5d5bb53e8ae9d5e3a0aba764988e91277bef5b796c9ab721f9c682f0 - a6cd192a5d5bb53e8ae9d5e3a0aba764988e91277bef5b796c9ab721f9c682f0 user.foo=bar
/dir 72 40755 2 0 0 0 1700000000.123456789 - - - trusted.overlay.custom=val
/dir/big-hardlink 100 100644 1 0 0 0 1700000000.123456789 a6/cd192a5d5bb53e8ae9d5e3a0aba764988e91277bef5b796c9ab721f9c682f0 - a6cd192a5d5bb53e8ae9d5e3a0aba764988e91277bef5b796c9ab721f9c682f0 user.foo=bar
/dir/sixtyfive 65 100644 1 0 0 0 1700000500.0 d3/5383ed2736abbd8313970a786f10579e9ed5d78b323fb24c078cc52f08dd2a - d35383ed2736abbd8313970a786f10579e9ed5d78b323fb24c078cc52f08dd2a
/empty 0 100644 1 0 0 0 1700000000.123456789 - - -
/exactly64 64 100644 1 0 0 0 1700000000.123456789 - xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx -
/link 9 120777 1 0 0 0 1700000000.123456789 small.txt - -
/small.txt 12 100644 1 0 0 0 1700000000.123456789 - hello\x20small\n - user.foo=bar`,
};

const SHA256_IDS: [string, 0 | 1 | 2, string][] = [
  ["empty", 0, "8f589e8f57ecb88823736b0d857ddca1e1068a23e264fad164b28f7038eb3682"],
  ["empty", 1, "14a26c957c84f6eb774b91205476adc13196c7c33b9dd97d08d43725ecb90b63"],
  ["empty", 2, "086b702a519b57d6ef5aea6f8b3f2be24355cd1fb835cd80fb4e3d388b24d5a5"],
  ["simple", 0, "9f3f5620ee0c54708516467d0d58741e7963047c7106b245d94c298259d0fa01"],
  ["simple", 1, "ad6db6427568a1e4fdc772cbab7b6063f5eb4b33cb62982a740ba9213e5962b5"],
  ["simple", 2, "a8fcd41f8b313bede69f462f2af0a38d64b99a6333f5df884ea9ab4037fac722"],
  ["special", 0, "ca8f91c7a310308bb5737cf1ab1d06395f83a2d9266423bfe5fe2b5f2c4e4218"],
  ["special", 1, "b1c78c25db8638be5b9b483472d32ee9624d8d32ded626a91cd536116e8df97c"],
  ["special", 2, "1fdf4ddd0a17123449feb902b32594f30fa121b81735c4540db0d556c9af8c8c"],
  ["ocilayout", 0, "18d2ce8761526481c7d444575cb60c0d62bc2b4d999141575cbb2124fcc812bf"],
  ["ocilayout", 1, "ca4c0cedfe7cf4e19090b65126e5b2ccc2e7fb4eef2af2a1bcdebe7488d5790b"],
  ["ocilayout", 2, "25292507ba4a5baae43630486e299153c8f9e07379ca0a823476d0f9254af97e"],
  ["wh", 0, "83db9bb0862b066e2103678768f64edbd44b7f414687ef159597f37745499f55"],
  ["wh", 1, "263b32c15544c54e5f523eea3d074b200fb1768aaadfa28c537f7444556bb25c"],
  ["wh", 2, "0aea02b2b04653765847a0d3e51d8194665e71f41a8fb92daa2db7bd036fa7c3"],
  ["t1", 0, "82b69f3b6e541bb2cf84da82aa7b45d761b17105987e25fc0c960495956b04dd"],
  ["t1", 1, "ba0989fd270f14a530fb0a2175e528b3ca8d318868537ac0617722f1fcf32d05"],
  ["t1", 2, "27b56a9ec53bbed3899379575c47127d3524df9bb38e41ea74839df3faaa1a44"],
];

Deno.test("writeErofs reproduces the pinned sha256 image ids for V0, V1 and V2", () => {
  for (const [name, version, id] of SHA256_IDS) {
    const img = writeErofs(parseDumpfile(DUMPS[name]), { version });
    assert.equal(fsverityDigest(img, "sha256").toHex(), id, `${name} V${version}`);
    assert.equal(img.length % 4096, 0);
  }
});

Deno.test("writeErofs reproduces the composefs-rs OCI fixture ids (sha512, V1 and V2)", () => {
  const root = parseDumpfile(DUMPS.ocilayout);
  assert.equal(
    fsverityDigest(writeErofs(root, { version: 1 }), "sha512").toHex(),
    "d06f1f6a73f62ed48e05ce9442ff045cdf2a9f5ba1ec623795de3d6177a253d91076459795d94f55d8c3d71dab458bb3fc0071255a50c0a4896d86ffdc870b9a",
  );
  assert.equal(
    fsverityDigest(writeErofs(root, { version: 2 }), "sha512").toHex(),
    "f7684c21050615c02cec250e0c7d4118fb0ff6340af5039e06f2f372a7614fff25dfd38cf7f28ad67d8b86e86371b7deafa9ae4bf543630322aee6196417de92",
  );
});

Deno.test("writeErofs V1 header, superblock and root inode match the spec layout", () => {
  const img = writeErofs(parseDumpfile(DUMPS.t1), { version: 1 });
  const dv = new DataView(img.buffer);
  assert.equal(dv.getUint32(0, true), 0xd078629a);
  assert.equal(dv.getUint32(12, true), 1); // composefs_version
  assert.equal(dv.getUint32(1024, true), 0xe0f5e1e2);
  assert.equal(dv.getUint16(1024 + 14, true), 36); // root nid
  assert.equal(Number(dv.getBigUint64(1024 + 16, true)), 265); // 9 inodes + 256 stubs
  assert.equal(Number(dv.getBigUint64(1024 + 24, true)), 1700000000);
  assert.equal(dv.getUint32(1024 + 32, true), 123456789);
});

Deno.test("writeErofs does not modify the tree and rejects hardlinked whiteouts", () => {
  const root = new Directory(makeStat());
  const wh = new Leaf(makeStat({ mode: 0 }), { kind: "chr", rdev: 0 });
  root.entries.set("a", wh);
  writeErofs(root, { version: 1 });
  assert.equal(root.entries.size, 1);
  root.entries.set("b", wh);
  assert.throws(() => writeErofs(root), { name: "ErofsWriteError" });
});

Deno.test("xxh32 matches the reference values", () => {
  assert.equal(xxh32("", 0), 0x02cc5d05);
  assert.equal(xxh32("abc", 0), 0x32d153ff);
  assert.equal(xxh32("Nobody inspects the spammish repetition", 0), 0xe2293b2f);
});

Deno.test("writeErofs rejects out-of-range metadata with ErofsWriteError", () => {
  const bad = [
    makeStat({ uid: 2 ** 32 }),
    makeStat({ mtimeNsec: 1e9 }),
    makeStat({ mode: 0o170000 }),
    makeStat({ xattrs: new Map([["user." + "x".repeat(300), new Uint8Array(1)]]) }),
  ];
  for (const st of bad) {
    const root = new Directory(makeStat());
    root.entries.set("f", new Leaf(st, { kind: "fifo" }));
    assert.throws(() => writeErofs(root), { name: "ErofsWriteError" });
  }
});

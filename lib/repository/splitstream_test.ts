import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fsverityDigest } from "../fsverity/hasher.ts";
import {
  CONTENT_TYPE,
  contentTypeOf,
  parseSplitstream,
  SplitstreamError,
  SplitstreamWriter,
} from "./splitstream.ts";

const hex = (b: Uint8Array) => b.toHex();
const unhex = (s: string) => new Uint8Array(s.match(/../g)!.map((h) => parseInt(h, 16)));
const enc = new TextEncoder();

// Worked byte vectors of repository-format §3.11 and §4.12 (hex).
const EMPTY_HEX = "53706c697453747265616d000000010c20000000000000007000000000000000" +
  "7000000000000000700000000000000070000000000000007000000000000000" +
  "7900000000000000820000000000000070000000000000007900000000000000" +
  "0000000000000000000000000000000028b52ffd200001000028b52ffd200001" +
  "0000";
const HELLO_HEX = "53706c697453747265616d000000010c20000000000000007000000000000000" +
  "7000000000000000700000000000000070000000000000007000000000000000" +
  "79000000000000008f0000000000000070000000000000007900000000000000" +
  "0000000000000000050000000000000028b52ffd200001000028b52ffd005869" +
  "0000fbffffffffffffff68656c6c6f";
const S512_HEX = "53706c697453747265616d000000020c20000000000000007000000000000000" +
  "7000000000000000b000000000000000b000000000000000f000000000000000" +
  "fd000000000000001901000000000000f000000000000000fd00000000000000" +
  "00000000000000000e00000000000000ccf9e5aea1c2a64efa2f2354a6024b90" +
  "dffde6bbc017825045dce374474e13d10adb9dadcc6ca8e17a3c075fbd31336e" +
  "8f266ae6fa93a6c3bed66f9e784e5abf18430270729d162d4e469daca123ae61" +
  "893db4b0583d8f7081e3bf4f92b88ba514e7982f10733fb6aa895195c5ae8fd2" +
  "eb2c47a8be05513ce5a0c51a6f57040928b52ffd0058210000303a780028b52f" +
  "fd0058990000fdffffffffffffff6864720000000000000000";
const ALPHA_HEX = "53706c697453747265616d000000010c20000000000000007000000000000000" +
  "7000000000000000700000000000000070000000000000009000000000000000" +
  "9900000000000000ed0000000000000090000000000000009900000000000000" +
  "6f63696c61796572000a000000000000f6fa43bbc0a7908e2ef77438244159e9" +
  "dec289dfc4c49d229237f9797a6a9b7928b52ffd200001000028b52ffd00585d" +
  "0200440200feff616c7068610030303030373030303137353637353100307573" +
  "746172003030e8fb0e00144105c080186e2898200624e7a80000831b3463660d" +
  "45c0cd6280df95d62c98d28221";
const CONFIG_HEX = "53706c697453747265616d000000010c20000000000000007000000000000000" +
  "7000000000000000d000000000000000d000000000000000f000000000000000" +
  "84010000000000009501000000000000f0000000000000008401000000000000" +
  "6f6369636f6e66672b0100000000000061c07629b8a41273f190744a8545c132" +
  "e6b784dcb2235bb31ade307a83e092ffce472620ab69da46e385b0936865ef22" +
  "f940e6bf55a083d3be37b1003795e22199ce11df4bb808a1e80ce69425dae527" +
  "b64aa7a270bf99c4a6e24d66be270f3f1dc5a7ea2c7a2d322c8ab613e8427bfe" +
  "3fec9e6775b3c85896421a588d7c0e1728b52ffd00585d0400d2cc1f149025c9" +
  "03c7c00a21cc8cf097ed2e89a4ff7f011b41b3dcbb2813ebc773a216d5c4abeb" +
  "9aa696bdd8b68f842c7683a4f4c8d2c1064e804377588e5257542f7705c90ba5" +
  "1413541fda319dad1db928e4f8e6bb5b7d373c18be917083712e437f7a396955" +
  "2caad9d6141093303f75b87ca344083c09de060b81b349808080040200019058" +
  "9a229c0128b52ffd00584100000000000000000000";

Deno.test("splitstream: content type constants (§3.10)", () => {
  assert.equal(CONTENT_TYPE.OCI_LAYER, 0x726579616c69636fn);
  assert.equal(CONTENT_TYPE.OCI_CONFIG, 0x67666e6f6369636fn);
  assert.equal(CONTENT_TYPE.OCI_MANIFEST, 0x66696e616d69636fn);
  assert.equal(CONTENT_TYPE.OCI_BLOB, 0x626f6c625f69636fn);
  assert.equal(contentTypeOf("osummary"), 0x7972616d6d75736fn);
  assert.throws(() => contentTypeOf("short"), RangeError);
});

Deno.test("splitstream: EMPTY vector (§3.11)", () => {
  using w = new SplitstreamWriter("sha256", 0n);
  const bytes = w.finish();
  assert.equal(hex(bytes), EMPTY_HEX);
  assert.equal(
    hex(fsverityDigest(bytes, "sha256")),
    "7ff9fe4ec4e321464efd75c3fde78232cad5f8d6e7f11d31245043c163e16f8e",
  );
  const s = parseSplitstream(bytes, "sha256", 0n);
  assert.equal(s.streamSize, 0);
  assert.deepEqual([...s.chunks()], []);
  assert.equal(s.namedRefs.size, 0);
});

Deno.test("splitstream: HELLO vector (§3.11)", () => {
  using w = new SplitstreamWriter("sha256", 0n);
  w.writeInline(enc.encode("hel"));
  w.writeInline(new Uint8Array(0));
  w.writeInline(enc.encode("lo"));
  const bytes = w.finish();
  assert.equal(hex(bytes), HELLO_HEX);
  assert.equal(
    hex(fsverityDigest(bytes, "sha256")),
    "fbf48665a4925a6b9a6d6d606228574b6db1ce2002db657c21647e948d3e2c91",
  );
  assert.deepEqual([...parseSplitstream(bytes, "sha256").chunks()], [{
    inline: enc.encode("hello"),
  }]);
});

Deno.test("splitstream: S512 vector (§3.11)", () => {
  const hello = fsverityDigest(enc.encode("hello world"), "sha512");
  const empty = fsverityDigest(new Uint8Array(0), "sha512");
  using w = new SplitstreamWriter("sha512", 0n);
  w.writeInline(enc.encode("hdr"));
  w.writeExternal(hello, 11);
  w.addNamedRef("x", empty);
  const bytes = w.finish();
  assert.equal(hex(bytes), S512_HEX);
  assert.equal(
    hex(fsverityDigest(bytes, "sha512")),
    "0f4872a325a9116e8fbd98c82b016cbb85e5151be7fb05590c5228341565f61088e3ccbce5e9753ba8cd1c2a44a0137716aae6453a320101dd76dbd91a4da2e5",
  );
  const s = parseSplitstream(bytes, "sha512");
  assert.equal(s.streamSize, 14);
  assert.deepEqual(s.streamRefs, [empty]);
  assert.deepEqual(s.objectRefs, [hello]);
  assert.deepEqual([...s.namedRefs], [["x", empty]]);
  assert.deepEqual([...s.chunks()], [{ inline: enc.encode("hdr") }, { external: hello }]);
  assert.throws(
    () => parseSplitstream(bytes, "sha256"),
    (e) => e instanceof SplitstreamError && e.reason === "algorithm-mismatch",
  );
});

/** A one-file ustar archive exactly as Rust `tar` writes it in the §4.12 recipe. */
function rustTar(name: string, size: number): Uint8Array {
  const h = new Uint8Array(512);
  const put = (off: number, s: string) => h.set(enc.encode(s), off);
  put(0, name);
  put(100, "0000700\0");
  put(108, "0000000\0");
  put(116, "0000000\0");
  put(124, size.toString(8).padStart(11, "0") + "\0");
  put(136, "00000000000\0");
  put(148, "        ");
  put(156, "0");
  put(257, "ustar\0");
  put(263, "00");
  const sum = h.reduce((a, b) => a + b, 0);
  put(148, sum.toString(8).padStart(7, "0") + "\0");
  const pad = (512 - (size % 512)) % 512;
  const tar = new Uint8Array(512 + size + pad + 1024);
  tar.set(h);
  return tar;
}

const LAYERS = [
  {
    name: "alpha",
    size: 1000,
    tarLen: 2560,
    checksum: "0006751\0",
    diffId: "757d6903198804b6ed96421a93a9973f5facc0e445a2a6c61cb0129eb67026e2",
    ssLen: 237,
    ssVerity: "61c07629b8a41273f190744a8545c132e6b784dcb2235bb31ade307a83e092ff",
    object: "f6fa43bbc0a7908e2ef77438244159e9dec289dfc4c49d229237f9797a6a9b79",
  },
  {
    name: "beta",
    size: 2000,
    tarLen: 3584,
    checksum: "0006576\0",
    diffId: "77dd145166ef191089dabd4d2c52d32143850a3c81a074fedf48dca360e2dcb9",
    ssLen: 236,
    ssVerity: "ce472620ab69da46e385b0936865ef22f940e6bf55a083d3be37b1003795e221",
    object: "f13c0c1a5b8bc8b8983be2761bae9dd229cc951b260dab7b2558987542c45c23",
  },
  {
    name: "gamma",
    size: 3000,
    tarLen: 4608,
    checksum: "0006753\0",
    diffId: "9b57f0e91c403b650e9391fd5e4154cac5dc1469acc0f3312e6149aa34f160ef",
    ssLen: 237,
    ssVerity: "99ce11df4bb808a1e80ce69425dae527b64aa7a270bf99c4a6e24d66be270f3f",
    object: "0000610752b6366b2bd42ce92fa0c0089bc132408b8f3dc20f879a06d0e05aaf",
  },
];

/** Split a one-file tar per §4.2 (> 64-byte content external, padding + EOA inline). */
function layerSplitstream(
  tar: Uint8Array,
  size: number,
): { bytes: Uint8Array; object: Uint8Array } {
  const object = fsverityDigest(tar.subarray(512, 512 + size), "sha256");
  using w = new SplitstreamWriter("sha256", CONTENT_TYPE.OCI_LAYER);
  w.writeInline(tar.subarray(0, 512));
  w.writeExternal(object, size);
  w.writeInline(tar.subarray(512 + size));
  return { bytes: w.finish(), object };
}

Deno.test("splitstream: ALPHA/BETA/GAMMA layer vectors (§4.12)", () => {
  for (const l of LAYERS) {
    const tar = rustTar(l.name, l.size);
    assert.equal(tar.length, l.tarLen);
    assert.equal(new TextDecoder().decode(tar.subarray(148, 156)), l.checksum, l.name);
    assert.equal(createHash("sha256").update(tar).digest("hex"), l.diffId, l.name);
    const { bytes, object } = layerSplitstream(tar, l.size);
    assert.equal(hex(object), l.object);
    assert.equal(bytes.length, l.ssLen, l.name);
    assert.equal(hex(fsverityDigest(bytes, "sha256")), l.ssVerity, l.name);
    if (l.name === "alpha") assert.equal(hex(bytes), ALPHA_HEX);
    // Reading back reproduces the tar (external content = l.size zero bytes).
    const s = parseSplitstream(bytes, "sha256", CONTENT_TYPE.OCI_LAYER);
    assert.equal(s.streamSize, l.tarLen);
    const out: Uint8Array[] = [];
    for (const c of s.chunks()) out.push("inline" in c ? c.inline : new Uint8Array(l.size));
    assert.deepEqual(concat(out), tar);
  }
});

Deno.test("splitstream: CONFIG vector, end to end (§4.12)", () => {
  const config = enc.encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    rootfs: { type: "layers", diff_ids: LAYERS.map((l) => `sha256:${l.diffId}`) },
  }));
  assert.equal(config.length, 299);
  const configId = fsverityDigest(config, "sha256");
  assert.equal(hex(configId), "1dc5a7ea2c7a2d322c8ab613e8427bfe3fec9e6775b3c85896421a588d7c0e17");
  using w = new SplitstreamWriter("sha256", CONTENT_TYPE.OCI_CONFIG);
  for (const l of LAYERS) {
    const { bytes } = layerSplitstream(rustTar(l.name, l.size), l.size);
    w.addNamedRef(`sha256:${l.diffId}`, fsverityDigest(bytes, "sha256"));
  }
  w.writeExternal(configId, config.length);
  const bytes = w.finish();
  assert.equal(hex(bytes), CONFIG_HEX);
  assert.equal(
    hex(fsverityDigest(bytes, "sha256")),
    "4839518dea22749f8ff233e7f7baec65f23dd5336462f46ad6884769af84bf95",
  );
  const s = parseSplitstream(bytes, "sha256", CONTENT_TYPE.OCI_CONFIG);
  assert.equal(s.streamSize, 299);
  assert.deepEqual(
    [...s.namedRefs].map(([k, v]) => [k, hex(v)]),
    LAYERS.map((l) => [`sha256:${l.diffId}`, l.ssVerity]),
  );
  assert.deepEqual([...s.chunks()], [{ external: configId }]);
  assert.throws(
    () => parseSplitstream(bytes, "sha256", CONTENT_TYPE.OCI_LAYER),
    (e) => e instanceof SplitstreamError && e.reason === "content-type-mismatch",
  );
});

Deno.test("splitstream: old (pre-repr(C)) header layout is read (§3.1)", () => {
  const cur = unhex(S512_HEX);
  const old = cur.slice();
  // old: info @0 (16), flags @16 (2), magic @18 (11), version @29, algorithm @30, lg @31
  old.set(cur.subarray(16, 32), 0);
  old.set(cur.subarray(12, 14), 16);
  old.set(cur.subarray(0, 11), 18);
  old[29] = cur[11];
  old[30] = cur[14];
  old[31] = cur[15];
  const a = parseSplitstream(cur, "sha512");
  const b = parseSplitstream(old, "sha512");
  assert.deepEqual(b.objectRefs, a.objectRefs);
  assert.deepEqual([...b.namedRefs], [...a.namedRefs]);
  assert.deepEqual([...b.chunks()], [...a.chunks()]);
});

Deno.test("splitstream: writer rules — one inline chunk between externals, sorted named refs", () => {
  const id = (n: number) => new Uint8Array(32).fill(n);
  using w = new SplitstreamWriter("sha256", 7n);
  w.writeExternal(id(1), 10);
  w.writeExternal(id(2), 20);
  w.writeExternal(id(1), 10); // dedup: index 0 again
  w.writeInline(enc.encode("a"));
  w.writeInline(enc.encode("bc"));
  w.writeExternal(id(3), 5);
  w.writeInline(enc.encode("d"));
  // Byte-wise (UTF-8) order differs from UTF-16 order for these two.
  w.addNamedRef("\u{ff61}", id(9));
  w.addNamedRef("\u{1f600}", id(8));
  w.addNamedRef("b:c", id(9));
  w.addNamedRef("a", id(7));
  w.addNamedRef("a", id(6)); // re-point; id(7) stays in stream refs
  w.addStreamRef(id(9));
  assert.equal(w.streamSize, 10 + 20 + 10 + 3 + 5 + 1);
  const s = parseSplitstream(w.finish(), "sha256", 7n);
  assert.deepEqual(s.objectRefs, [id(1), id(2), id(3)]);
  assert.deepEqual(s.streamRefs, [id(9), id(8), id(7), id(6)]);
  assert.deepEqual([...s.namedRefs.keys()], ["a", "b:c", "\u{ff61}", "\u{1f600}"]);
  assert.deepEqual(s.namedRefs.get("a"), id(6));
  assert.deepEqual([...s.chunks()], [
    { external: id(1) },
    { external: id(2) },
    { external: id(1) },
    { inline: enc.encode("abc") },
    { external: id(3) },
    { inline: enc.encode("d") },
  ]);
  assert.throws(() => w.writeInline(enc.encode("x")), TypeError);
});

Deno.test("splitstream: writer rejects bad arguments", () => {
  using w = new SplitstreamWriter("sha512");
  assert.throws(() => w.writeExternal(new Uint8Array(32), 1), RangeError);
  assert.throws(() => w.addNamedRef("a\0b", new Uint8Array(64)), RangeError);
  assert.throws(() => w.writeExternal(new Uint8Array(64), -1), RangeError);
  assert.throws(() => new SplitstreamWriter("sha256", 1n << 64n), RangeError);
});

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

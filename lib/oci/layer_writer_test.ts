import { deepStrictEqual as assertEquals, ok, throws } from "node:assert/strict";
import { openPath } from "../../ffi/fs.ts";
import { Repository } from "../repository/repository.ts";
import { toHex } from "../repository/object_id.ts";
import { DiffIdMismatchError } from "./errors.ts";
import { finalizeImage, listTags, resolveImage } from "./image_store.ts";
import { LayerWriter } from "./layer_writer.ts";
import { TarSplitter } from "./tar_split.ts";
import { layerStreamName } from "./names.ts";

const enc = new TextEncoder();

/** A tar as the Rust `tar` crate writes it in the §4.12 test (ustar, 0700, 7-digit checksum). */
function rustTar(name: string, size: number): Uint8Array {
  const h = new Uint8Array(512);
  h.set(enc.encode(name), 0);
  h.set(enc.encode("0000700\0"), 100);
  h.set(enc.encode("0000000\0"), 108);
  h.set(enc.encode("0000000\0"), 116);
  h.set(enc.encode(size.toString(8).padStart(11, "0") + "\0"), 124);
  h.set(enc.encode("00000000000\0"), 136);
  h.fill(0x20, 148, 156);
  h[156] = 0x30;
  h.set(enc.encode("ustar\0" + "00"), 257);
  let sum = 0;
  for (const b of h) sum += b;
  h.set(enc.encode(sum.toString(8).padStart(7, "0") + "\0"), 148);
  const padded = Math.ceil(size / 512) * 512;
  const tar = new Uint8Array(512 + padded + 1024);
  tar.set(h, 0);
  return tar;
}

async function importTar(repo: Repository, tar: Uint8Array, diffId?: string, chunk = 777) {
  using w = new LayerWriter(repo, { diffId });
  const s = new TarSplitter(w);
  for (let o = 0; o < tar.length; o += chunk) await s.push(tar.subarray(o, o + chunk));
  s.finish();
  return w.commit();
}

Deno.test("LayerWriter: §4.12 known answer — layer and config splitstream verities", async () => {
  const dir = await Deno.makeTempDir();
  try {
    using repo = await Repository.init(`${dir}/r`, { algorithm: "sha256", insecure: true });
    const vectors = [
      [
        "alpha",
        1000,
        "757d6903198804b6ed96421a93a9973f5facc0e445a2a6c61cb0129eb67026e2",
        "0006751\0",
        "61c07629b8a41273f190744a8545c132e6b784dcb2235bb31ade307a83e092ff",
      ],
      [
        "beta",
        2000,
        "77dd145166ef191089dabd4d2c52d32143850a3c81a074fedf48dca360e2dcb9",
        "0006576\0",
        "ce472620ab69da46e385b0936865ef22f940e6bf55a083d3be37b1003795e221",
      ],
      [
        "gamma",
        3000,
        "9b57f0e91c403b650e9391fd5e4154cac5dc1469acc0f3312e6149aa34f160ef",
        "0006753\0",
        "99ce11df4bb808a1e80ce69425dae527b64aa7a270bf99c4a6e24d66be270f3f",
      ],
    ] as const;
    const layers = [];
    for (const [name, size, diff, cksum, verity] of vectors) {
      const tar = rustTar(name, size);
      assertEquals(new TextDecoder().decode(tar.subarray(148, 156)), cksum);
      const r = await importTar(repo, tar, `sha256:${diff}`);
      assertEquals(r.diffId, `sha256:${diff}`);
      assertEquals(toHex(r.verity), verity, `${name} layer splitstream verity`);
      assertEquals(r.stats.objectsCopied, 1);
      assertEquals(r.stats.inlineBytes, tar.length - size);
      layers.push({ diffId: r.diffId, verity: r.verity });
    }
    const config = enc.encode(
      `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[${
        layers.map((l) => `"${l.diffId}"`).join(",")
      }]}}`,
    );
    assertEquals(config.length, 299);
    const manifest = enc.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: "sha256:" + new Uint8Array(await crypto.subtle.digest("SHA-256", config)).toHex(),
        size: config.length,
      },
      layers: layers.map((l) => ({
        mediaType: "application/vnd.oci.image.layer.v1.tar",
        digest: l.diffId,
        size: 1,
      })),
    }));
    const fin = finalizeImage(repo, manifest, config, layers, "pinned");
    assertEquals(
      toHex(fin.configVerity),
      "4839518dea22749f8ff233e7f7baec65f23dd5336462f46ad6884769af84bf95",
    );
    const img = resolveImage(repo, "pinned");
    assertEquals(img.configBytes, config);
    assertEquals([...img.configRefs.keys()], layers.map((l) => l.diffId));
    const m = repo.readStream(`oci-manifest-${fin.manifestDigest}`);
    assertEquals(
      [...m.namedRefs.keys()].sort(),
      [
        `config:${fin.configDigest}`,
        ...layers.map((l) => l.diffId),
      ].sort(),
    );
    assertEquals(listTags(repo), ["pinned"]);
    // Re-importing a layer gives the same stream; its object is reported as already present.
    const again = await importTar(repo, rustTar("alpha", 1000), undefined, 100000);
    assertEquals(toHex(again.verity), vectors[0][4]);
    assertEquals(again.stats.objectsAlreadyPresent, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("LayerWriter: wrong diff_id writes no stream; API misuse is refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    using repo = await Repository.init(`${dir}/r`, { algorithm: "sha512", insecure: true });
    const tar = rustTar("x", 100);
    const wrong = "sha256:" + "1".repeat(64);
    let caught: unknown;
    try {
      await importTar(repo, tar, wrong);
    } catch (e) {
      caught = e;
    }
    ok(caught instanceof DiffIdMismatchError);
    assertEquals(caught.expected, wrong);
    assertEquals(repo.hasStream(layerStreamName(wrong)), null);
    assertEquals(repo.listStreamRefs(""), []);
    using w = new LayerWriter(repo);
    throws(() => w.writeFileChunk(new Uint8Array(1)), TypeError);
    w.beginFile(10);
    throws(() => w.writeFileChunk(new Uint8Array(11)), RangeError);
    throws(() => w.endFile(), RangeError);
    // Incremental and whole-file paths produce the same stream as the splitter.
    using a = new LayerWriter(repo);
    a.writeInline(tar.subarray(0, 512));
    await a.writeFileContent([tar.subarray(512, 560), tar.subarray(560, 612)], 100);
    a.writeInline(tar.subarray(612));
    const ra = a.commit();
    const rb = await importTar(repo, tar, undefined, 3);
    assertEquals(toHex(ra.verity), toHex(rb.verity));
    assertEquals(ra.diffId, rb.diffId);
    // From an fd (the containers-storage / splitdirfdstream path): same stream again.
    await Deno.writeFile(`${dir}/content`, tar.subarray(512, 612));
    using fd = openPath(`${dir}/content`);
    using c = new LayerWriter(repo, { diffId: ra.diffId });
    c.writeInline(tar.subarray(0, 512));
    c.writeFileFromFd(fd, 100, { allowReflink: true, allowHardlink: false, allowCopy: true });
    c.writeInline(tar.subarray(612));
    const rc = c.commit();
    assertEquals(toHex(rc.verity), toHex(ra.verity));
    assertEquals(rc.stats.objectsAlreadyPresent + rc.stats.objectsReflinked, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * `oci pull` of a gzip layer big enough (≥ 1 MiB compressed) to be gunzipped in a Worker
 * (lib/oci/decompress.ts): the layer exports byte-identically (sha256 == diff_id), a big
 * file's object holds its bytes, and a corrupted blob still fails with the typed digest
 * error and tags nothing.
 */

import assert from "node:assert/strict";
import { Repository } from "../lib/repository/repository.ts";
import { pullImage } from "../lib/oci/pull.ts";
import { exportLayer } from "../lib/oci/layer_export.ts";
import { listTags } from "../lib/oci/image_store.ts";
import { sha256Digest } from "../lib/oci/digest.ts";
import { BlobDigestMismatchError } from "../lib/oci/errors.ts";
import { fsverityDigest } from "../lib/fsverity/hasher.ts";
import { toHex } from "../lib/repository/object_id.ts";
import { blobPath, readJsonBlob, sh } from "./oci_fixtures.ts";

/** Incompressible file size: makes the gzip layer ≈ 3 MiB, over the 1 MiB offload mark. */
const BIG = 3 * 1024 * 1024 + 123;

async function buildLayout(root: string): Promise<{ layout: string; big: Uint8Array }> {
  const tree = `${root}/tree`;
  await Deno.mkdir(`${tree}/d`, { recursive: true });
  const big = new Uint8Array(BIG);
  for (let o = 0; o < BIG; o += 65536) crypto.getRandomValues(big.subarray(o, o + 65536));
  await Deno.writeFile(`${tree}/big.bin`, big);
  for (let i = 0; i < 50; i++) await Deno.writeTextFile(`${tree}/d/f${i}`, `file ${i}\n`.repeat(i));
  await sh("tar", ["-C", tree, "--format=pax", "-cf", `${root}/layer.tar`, "."]);
  const layout = `${root}/oci`;
  await sh("umoci", ["init", "--layout", layout]);
  await sh("umoci", ["new", "--image", `${layout}:base`]);
  await sh("umoci", [
    "raw",
    "add-layer",
    "--image",
    `${layout}:base`,
    "--tag",
    "img",
    `${root}/layer.tar`,
  ]);
  return { layout, big };
}

async function layerDigest(layout: string): Promise<{ digest: string; size: number }> {
  const idx = JSON.parse(await Deno.readTextFile(`${layout}/index.json`));
  const m = idx.manifests.find((d: { annotations?: Record<string, string> }) =>
    d.annotations?.["org.opencontainers.image.ref.name"] === "img"
  );
  const manifest = await readJsonBlob(layout, m.digest);
  const layers = manifest.layers as { digest: string; size: number }[];
  return layers[layers.length - 1];
}

Deno.test("oci pull: a big gzip layer (Worker gunzip) round-trips", async () => {
  const root = await Deno.makeTempDir();
  try {
    const { layout, big } = await buildLayout(root);
    const layer = await layerDigest(layout);
    assert.ok(layer.size >= 1024 * 1024, `layer blob is ${layer.size} bytes, under 1 MiB`);
    using repo = await Repository.init(`${root}/repo`, { algorithm: "sha256", insecure: true });
    const r = await pullImage(repo, `oci:${layout}:img`, { tag: "img" });
    const diffId = r.layers[r.layers.length - 1].diffId;
    const tar = new Uint8Array(await new Response(exportLayer(repo, diffId)).arrayBuffer());
    assert.equal(sha256Digest(tar), diffId);
    assert.ok(r.stats.externalBytes >= BIG);
    // The big file is an object named by its fs-verity digest, holding exactly its bytes.
    const id = fsverityDigest(big, "sha256");
    assert.ok(repo.hasObject(id), `no object ${toHex(id)}`);
    assert.deepEqual(listTags(repo), ["img"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("oci pull: a corrupted big gzip layer fails with BlobDigestMismatchError", async () => {
  const root = await Deno.makeTempDir();
  try {
    const { layout } = await buildLayout(root);
    const layer = await layerDigest(layout);
    const path = blobPath(layout, layer.digest);
    const bytes = await Deno.readFile(path);
    // Flip bytes in the middle of the deflate data: inflating fails or yields other bytes.
    for (let i = 0; i < 64; i++) bytes[(bytes.length >> 1) + i] ^= 0xff;
    await Deno.chmod(path, 0o644);
    await Deno.writeFile(path, bytes);
    using repo = await Repository.init(`${root}/repo`, { algorithm: "sha256", insecure: true });
    await assert.rejects(
      pullImage(repo, `oci:${layout}:img`, { tag: "img" }),
      (e) => e instanceof BlobDigestMismatchError && e.message.includes(layer.digest),
    );
    assert.deepEqual(listTags(repo), []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

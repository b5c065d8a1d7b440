import assert from "node:assert/strict";
import { join } from "node:path";
import { Repository } from "../repository/repository.ts";
import { toHex } from "../repository/object_id.ts";
import { encodeTar } from "../tar/tar_writer.ts";
import {
  computeImageId,
  ensureComposefsImage,
  IMAGE_REF_V1,
  IMAGE_REF_V2,
  linkedImageId,
  NoComposefsImageError,
} from "./composefs_image.ts";
import { finalizeImage, resolveImage } from "./image_store.ts";
import { ociFsck } from "./oci_fsck.ts";
import { writeOciLayout } from "./layout_writer.ts";
import { pullImage } from "./pull.ts";
import { copyImage } from "./copy.ts";
import { LocalRepositoryEndpoint } from "./copy_endpoint.ts";

/** composefs-rs it/cli.rs create_oci_layout: the pinned V1/V2 ids (repository-format §4.13). */
const PINNED_V2 =
  "f7684c21050615c02cec250e0c7d4118fb0ff6340af5039e06f2f372a7614fff25dfd38cf7f28ad67d8b86e86371b7deafa9ae4bf543630322aee6196417de92";
const PINNED_V1 =
  "d06f1f6a73f62ed48e05ce9442ff045cdf2a9f5ba1ec623795de3d6177a253d91076459795d94f55d8c3d71dab458bb3fc0071255a50c0a4896d86ffdc870b9a";

/** The layer of composefs-rs's create_oci_layout: usr/, hello.txt and a hardlink to it. */
function pinnedFixtureTar(): Uint8Array {
  const m = 1234567890;
  return encodeTar([
    { path: "usr/", type: "dir", mode: 0o755, mtime: m },
    {
      path: "hello.txt",
      type: "file",
      mode: 0o644,
      mtime: m,
      content: new TextEncoder().encode("hello from test layer\n"),
    },
    { path: "hello-link.txt", type: "hardlink", linkname: "hello.txt", mode: 0o644, mtime: m },
  ]);
}

Deno.test("composefs image: pinned composefs-rs ids for V1 and V2, linked from the config", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cfs-img-" });
  try {
    const tar = pinnedFixtureTar();
    await writeOciLayout(join(dir, "layout"), [tar], { tag: "test-image" });
    using repo = await Repository.init(join(dir, "repo"), {
      algorithm: "sha512",
      insecure: true,
      erofsFormats: { default: 1, extra: [2] },
    });
    const r = await pullImage(repo, `oci:${join(dir, "layout")}:test-image`, { tag: "test-image" });
    assert.deepEqual(r.images.map((i) => [i.version, toHex(i.id)]), [[1, PINNED_V1], [
      2,
      PINNED_V2,
    ]]);
    const img = resolveImage(repo, "test-image");
    assert.equal(toHex(img.configRefs.get(IMAGE_REF_V1)!), PINNED_V1);
    assert.equal(toHex(img.configRefs.get(IMAGE_REF_V2)!), PINNED_V2);
    assert.equal(toHex(linkedImageId(repo, "test-image")), PINNED_V1);
    assert.equal(toHex(linkedImageId(repo, "test-image", { erofsVersion: 2 })), PINNED_V2);
    assert.equal(toHex(computeImageId(repo, "test-image", { erofsVersion: 2 })), PINNED_V2);
    assert.equal(toHex(repo.imageId(PINNED_V1)), PINNED_V1);
    assert.equal(repo.fsck().errors.length, 0);
    assert.deepEqual(ociFsck(repo).errors, []);
    // oci fsck follows the linkage: a missing images/<hex> is reported.
    await Deno.remove(join(dir, "repo/images", PINNED_V2));
    const errs = ociFsck(repo).errors;
    assert.equal(errs.length, 1, errs.join("\n"));
    assert.match(errs[0], /missing-composefs-image: test-image: composefs.image /);
    // Re-finalizing regenerates it (a crash-interrupted pull completes on re-run).
    const again = ensureComposefsImage(repo, r.manifestDigest);
    assert.equal(again.changed, true);
    assert.deepEqual(again.configVerity, r.configVerity, "same id: the config stream stays");
    assert.deepEqual(again.manifestVerity, r.manifestVerity);
    assert.deepEqual(ociFsck(repo).errors, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("composefs image: oci copy sha256 → sha512 generates the pinned images in the destination", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cfs-img-" });
  try {
    await writeOciLayout(join(dir, "layout"), [pinnedFixtureTar()], { tag: "test-image" });
    using src = await Repository.init(join(dir, "src"), { algorithm: "sha256", insecure: true });
    await pullImage(src, `oci:${join(dir, "layout")}:test-image`, { tag: "test-image" });
    using dst = await Repository.init(join(dir, "dst"), {
      algorithm: "sha512",
      insecure: true,
      erofsFormats: { default: 1, extra: [2] },
    });
    await copyImage(
      new LocalRepositoryEndpoint(src),
      new LocalRepositoryEndpoint(dst),
      "test-image",
    );
    assert.equal(toHex(linkedImageId(dst, "test-image")), PINNED_V1);
    assert.equal(toHex(linkedImageId(dst, "test-image", { erofsVersion: 2 })), PINNED_V2);
    assert.deepEqual(ociFsck(dst).errors, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("composefs image: every crash point completes on re-run, fsck clean throughout", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cfs-img-" });
  try {
    const tar = encodeTar([
      { path: "usr/", type: "dir" },
      { path: "usr/big", type: "file", content: new Uint8Array(1000).fill(7) },
    ]);
    const w = await writeOciLayout(join(dir, "layout"), [tar], { tag: "v1" });
    using repo = await Repository.init(join(dir, "repo"), { algorithm: "sha256", insecure: true });
    const full = await pullImage(repo, `oci:${join(dir, "layout")}:v1`, { tag: "v1" });
    const manifest = await Deno.readFile(
      join(dir, "layout/blobs/sha256", w.manifestDigest.slice(7)),
    );
    const config = await Deno.readFile(join(dir, "layout/blobs/sha256", w.configDigest.slice(7)));
    const objLink = (id: Uint8Array) => `../objects/${toHex(id).slice(0, 2)}/${toHex(id).slice(2)}`;
    const cLink = join(dir, "repo/streams", `oci-config-${w.configDigest}`);
    const mLink = join(dir, "repo/streams", `oci-manifest-${w.manifestDigest}`);
    // Crash 1: config and manifest streams written, no image linked yet.
    await Deno.remove(cLink);
    await Deno.remove(mLink);
    const bare = finalizeImage(repo, manifest, config, full.layers);
    assert.notDeepEqual(bare.configVerity, full.configVerity, "a config stream without refs");
    assert.deepEqual(repo.fsck().errors, []);
    assert.deepEqual(ociFsck(repo).errors, []);
    assert.throws(() => linkedImageId(repo, "v1"), NoComposefsImageError);
    const r1 = ensureComposefsImage(repo, w.manifestDigest);
    assert.equal(r1.changed, true);
    assert.deepEqual(r1.configVerity, full.configVerity, "deterministic config rewrite");
    assert.deepEqual(r1.manifestVerity, full.manifestVerity, "deterministic manifest rewrite");
    // Crash 2: config rewritten, the manifest stream still on the old config stream.
    await Deno.remove(mLink);
    await Deno.symlink(objLink(bare.manifestVerity), mLink);
    assert.deepEqual(repo.fsck().errors, []);
    assert.deepEqual(ociFsck(repo).errors, []);
    assert.equal(toHex(linkedImageId(repo, "v1")), toHex(full.images[0].id), "mountable meanwhile");
    const r2 = ensureComposefsImage(repo, w.manifestDigest);
    assert.equal(r2.changed, true);
    assert.equal(await Deno.readLink(mLink), objLink(full.manifestVerity));
    assert.equal(ensureComposefsImage(repo, w.manifestDigest).changed, false);
    // GC drops the superseded streams but keeps the image.
    repo.gc();
    assert.deepEqual(ociFsck(repo).errors, []);
    assert.ok(repo.hasObject(full.images[0].id));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("composefs image: an image without /usr is kept, with no image linked", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cfs-img-" });
  try {
    const tar = encodeTar([{ path: "hello.txt", type: "file", content: new Uint8Array(100) }]);
    await writeOciLayout(join(dir, "layout"), [tar], { tag: "v1" });
    using repo = await Repository.init(join(dir, "repo"), { algorithm: "sha256", insecure: true });
    const r = await pullImage(repo, `oci:${join(dir, "layout")}:v1`, { tag: "v1" });
    assert.deepEqual(r.images, []);
    assert.match(r.skipped!, /usr/);
    assert.equal(r.tag, "v1");
    assert.throws(() => linkedImageId(repo, "v1"), NoComposefsImageError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("composefs image: V0 has no config key: linked formats only, V0 reported", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cfs-img-" });
  try {
    await writeOciLayout(join(dir, "layout"), [pinnedFixtureTar()], { tag: "t" });
    using repo = await Repository.init(join(dir, "repo"), {
      algorithm: "sha512",
      insecure: true,
      erofsFormats: { default: 0, extra: [1] },
    });
    const r = await pullImage(repo, `oci:${join(dir, "layout")}:t`, { tag: "t" });
    assert.deepEqual(r.images.map((i) => [i.version, toHex(i.id)]), [[1, PINNED_V1]]);
    assert.match(r.skipped!, /V0/);
    assert.equal(toHex(linkedImageId(repo, "t")), PINNED_V1, "V0 repositories read the V1 key");
    const only0 = await pullImage(repo, `oci:${join(dir, "layout")}:t`, { erofsVersion: 0 });
    assert.deepEqual(only0.images, []);
    assert.match(only0.skipped!, /V0/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

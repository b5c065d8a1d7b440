/**
 * `oci copy` between local repositories of one algorithm moves each layer's closure (its
 * stream object and the objects it references) and the source's composefs image, linked
 * under the names they have. These tests hold that shortcut to the general path: the result
 * must be exactly what the splitdirfdstream path (`--verify`) writes and what regenerating
 * the EROFS gives, and an interrupted batch must leave nothing named.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { Repository } from "../lib/repository/repository.ts";
import { ObjectNotFoundError } from "../lib/repository/errors.ts";
import { pullImage } from "../lib/oci/pull.ts";
import { type CopyEvent, copyImage } from "../lib/oci/copy.ts";
import { LocalRepositoryEndpoint } from "../lib/oci/copy_endpoint.ts";
import { resolveImage } from "../lib/oci/image_store.ts";
import { computeImageId, linkedImageId } from "../lib/oci/composefs_image.ts";
import { importLayerClosures, layerClosure } from "../lib/oci/layer_closure.ts";
import { layerStreamName } from "../lib/oci/names.ts";
import { writeDemoImage } from "../lib/demo/demo_image.ts";
import { writeOciLayout } from "../lib/oci/layout_writer.ts";
import { encodeTar } from "../lib/tar/tar_writer.ts";
import { loopMount, tempDir } from "./_helpers.ts";

const SMALL = { files: 150, maxFileSize: 48 * 1024 };

async function pulled(dir: string): Promise<Repository> {
  await writeDemoImage(join(dir, "layout"), "demo", SMALL);
  const repo = await Repository.init(join(dir, "src"), { algorithm: "sha256", insecure: true });
  await pullImage(repo, `oci:${join(dir, "layout")}:demo`, { tag: "demo" });
  return repo;
}

function objectInode(repoPath: string, id: Uint8Array): number {
  const hex = id.toHex();
  return Deno.lstatSync(join(repoPath, "objects", hex.slice(0, 2), hex.slice(2))).ino!;
}

Deno.test("oci copy closure: same result as the splitdirfdstream path and a regenerated EROFS", async () => {
  await using tmp = await tempDir();
  using src = await pulled(tmp.path);
  const srcImg = resolveImage(src, "demo");
  const endpoints = async (name: string) => {
    const repo = await Repository.init(join(tmp.path, name), {
      algorithm: "sha256",
      insecure: true,
    });
    return repo;
  };
  using linked = await endpoints("linked");
  using streamed = await endpoints("streamed");
  const events: CopyEvent[] = [];
  const a = await copyImage(
    new LocalRepositoryEndpoint(src),
    new LocalRepositoryEndpoint(linked),
    "demo",
    { onEvent: (e) => events.push(e) },
  );
  // Progress per layer, in order: start, (progress…), done with the layer's whole size.
  for (let i = 0; i < 3; i++) {
    const mine = events.filter((e) => "index" in e && e.index === i).map((e) => e.type);
    assert.equal(mine[0], "layer-start", `layer ${i}: ${mine}`);
    assert.equal(mine.at(-1), "layer-done", `layer ${i}: ${mine}`);
  }
  const doneBytes = events.flatMap((e) => e.type === "layer-done" ? [e.bytes] : []);
  assert.equal(doneBytes.reduce((x, y) => x + y, 0), a.bytes);
  const b = await copyImage(
    new LocalRepositoryEndpoint(src),
    new LocalRepositoryEndpoint(streamed),
    "demo",
    { verify: true },
  );
  // Same filesystem (tmp), no reflinks on ext4: the closure is hardlinked.
  assert.ok(a.objectsHardlinked > 0, JSON.stringify(a));
  assert.equal(a.objectsCopied, 0);
  assert.equal(a.layersCopied, 3);
  assert.equal(a.bytes, b.bytes, "layer sizes reported alike");
  for (const diffId of srcImg.config!.diffIds) {
    const name = layerStreamName(diffId);
    assert.equal(linked.hasStream(name)!.toHex(), streamed.hasStream(name)!.toHex(), name);
    assert.equal(linked.hasStream(name)!.toHex(), src.hasStream(name)!.toHex(), name);
  }
  assert.equal(a.configVerity, b.configVerity, "config stream with the same named refs");
  assert.equal(a.manifestVerity, b.manifestVerity);
  assert.equal(a.manifestVerity, srcImg.manifestVerity.toHex());
  // The linked EROFS is the one the destination would generate from its own layers.
  const imageId = linkedImageId(linked, "demo");
  assert.equal(imageId.toHex(), linkedImageId(streamed, "demo").toHex());
  assert.equal(imageId.toHex(), computeImageId(linked, "demo").toHex());
  assert.equal(
    objectInode(join(tmp.path, "linked"), imageId),
    objectInode(join(tmp.path, "src"), imageId),
    "the source's image object was linked, not regenerated",
  );
  assert.equal(linked.fsck().ok, true);
  assert.equal(streamed.fsck().ok, true);
});

Deno.test("oci copy closure: reflinks on xfs; across filesystems the closure is copied", async () => {
  await using xfs = await loopMount("xfs");
  using src = await pulled(xfs.path);
  using dst = await Repository.init(join(xfs.path, "dst"), { algorithm: "sha256", insecure: true });
  const s = await copyImage(
    new LocalRepositoryEndpoint(src),
    new LocalRepositoryEndpoint(dst),
    "demo",
    { zerocopy: true },
  );
  assert.ok(s.objectsReflinked > 0);
  assert.equal(s.objectsHardlinked + s.objectsCopied, 0);
  const id = linkedImageId(dst, "demo");
  assert.notEqual(
    objectInode(join(xfs.path, "dst"), id),
    objectInode(join(xfs.path, "src"), id),
    "a reflink is a new inode",
  );
  assert.equal(dst.fsck().ok, true);

  // Across filesystems without --zerocopy the closure is copied byte for byte.
  await using tmp = await tempDir();
  using other = await Repository.init(join(tmp.path, "dst"), {
    algorithm: "sha256",
    insecure: true,
  });
  const c = await copyImage(
    new LocalRepositoryEndpoint(src),
    new LocalRepositoryEndpoint(other),
    "demo",
  );
  assert.ok(c.objectsCopied > 0);
  assert.equal(c.objectsReflinked + c.objectsHardlinked, 0);
  assert.equal(c.manifestVerity, s.manifestVerity);
  assert.equal(other.fsck().ok, true);
});

Deno.test("oci copy closure: a batch that fails midway names nothing; the re-run completes", async () => {
  await using tmp = await tempDir();
  using src = await pulled(tmp.path);
  using dst = await Repository.init(join(tmp.path, "dst"), { algorithm: "sha256", insecure: true });
  const diffIds = resolveImage(src, "demo").config!.diffIds;
  const layers = diffIds.map((diffId) => ({
    diffId,
    closure: { ...layerClosure(src, diffId)!, objectsDir: src.objectsDirFd() },
  }));
  // The last layer's stream object is missing in the source: every object of the batch is
  // stored before that is found, and no layer may be named.
  const last = layers.at(-1)!.closure;
  const bogus = { ...last, streamId: new Uint8Array(32).fill(0xab) };
  await assert.rejects(
    importLayerClosures(dst, [...layers.slice(0, -1), { ...layers.at(-1)!, closure: bogus }], {
      allowReflink: true,
      allowHardlink: true,
      allowCopy: true,
    }),
    ObjectNotFoundError,
  );
  for (const d of diffIds) assert.equal(dst.hasStream(layerStreamName(d)), null, d);
  const report = dst.fsck();
  assert.equal(report.ok, true, JSON.stringify(report.errors));
  assert.ok(report.objectsChecked > 0, "the objects of the batch were stored");

  const s = await copyImage(
    new LocalRepositoryEndpoint(src),
    new LocalRepositoryEndpoint(dst),
    "demo",
  );
  assert.equal(s.layersCopied, 3);
  assert.ok(s.objectsAlreadyPresent > 0, "objects of the failed batch are reused");
  assert.equal(dst.fsck().ok, true);
  assert.equal(s.manifestVerity, resolveImage(src, "demo").manifestVerity.toHex());
});

Deno.test("oci copy closure: SIGKILL at any object or name leaves fsck clean; the re-run completes", async () => {
  await using tmp = await tempDir();
  using src = await pulled(tmp.path);
  const total = resolveImage(src, "demo").config!.diffIds
    .reduce((n, d) => n + layerClosure(src, d)!.objectIds.length + 1, 0);
  src.close();
  const child = new URL("./copy_kill_child.ts", import.meta.url).pathname;
  // Objects: the first, one in the middle, the last layer stream object; names: the first
  // layer name (after the one sync), the composefs image, the manifest (the last name).
  const points: [string, number][] = [
    ["object", 1],
    ["object", Math.floor(total / 2)],
    ["object", total],
    ["name", 1],
    ["name", 4],
    ["name", 6],
  ];
  for (const [where, n] of points) {
    const dst = join(tmp.path, `dst-${where}-${n}`);
    (await Repository.init(dst, { algorithm: "sha256", insecure: true })).close();
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", child, join(tmp.path, "src"), dst, where, String(n)],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const context = `killed at ${where} ${n}`;
    assert.equal(out.signal, "SIGKILL", `${context}: ${new TextDecoder().decode(out.stderr)}`);
    {
      using d = await Repository.open(dst, { write: false });
      const report = d.fsck();
      assert.equal(report.ok, true, `${context}: ${JSON.stringify(report.errors.slice(0, 3))}`);
      assert.equal(d.listStreamRefs("oci").length, 0, `${context}: the tag is written last`);
      if (where === "name" || n > 1) assert.ok(report.objectsChecked > 0, `${context}: objects`);
    }
    using from = await Repository.open(join(tmp.path, "src"), { write: false });
    using d = await Repository.open(dst, { write: true });
    const s = await copyImage(
      new LocalRepositoryEndpoint(from),
      new LocalRepositoryEndpoint(d),
      "demo",
    );
    assert.equal(s.tag, "demo", context);
    assert.equal(d.fsck().ok, true, context);
    assert.equal(linkedImageId(d, "demo").toHex(), computeImageId(d, "demo").toHex(), context);
  }
});

Deno.test("oci copy: a diff_id listed twice travels once, on both paths", async () => {
  await using tmp = await tempDir();
  const big = new Uint8Array(5000).fill(7);
  const layerA = encodeTar([{ path: "usr/a", type: "file", content: big }]);
  const empty = encodeTar([]);
  await writeOciLayout(join(tmp.path, "layout"), [layerA, empty, empty], { tag: "dup" });
  using src = await Repository.init(join(tmp.path, "src"), { algorithm: "sha256", insecure: true });
  await pullImage(src, `oci:${join(tmp.path, "layout")}:dup`, { tag: "dup" });
  for (const alg of ["sha256", "sha512"] as const) {
    using dst = await Repository.init(join(tmp.path, `dst-${alg}`), {
      algorithm: alg,
      insecure: true,
    });
    const events: CopyEvent[] = [];
    const s = await copyImage(
      new LocalRepositoryEndpoint(src),
      new LocalRepositoryEndpoint(dst),
      "dup",
      { onEvent: (e) => events.push(e) },
    );
    assert.equal(s.layersCopied, 2, alg);
    assert.equal(s.layersSkipped, 1, alg);
    assert.deepEqual(
      events.filter((e) => e.type === "layer-skipped").map((e) => "index" in e && e.index),
      [2],
    );
    const img = resolveImage(dst, "dup");
    assert.equal(img.manifestDigest, resolveImage(src, "dup").manifestDigest);
    assert.equal(img.config!.diffIds.length, 3);
    assert.equal(dst.fsck().ok, true, alg);
  }
});

/**
 * containers-storage as an image source, end to end against real stores made by
 * `skopeo copy` from umoci-made images (overlay and vfs drivers).
 */

import assert from "node:assert/strict";
import { Repository } from "../lib/repository/repository.ts";
import { sha256Digest } from "../lib/oci/digest.ts";
import { DiffIdMismatchError, ImageNotFoundError } from "../lib/oci/errors.ts";
import { listTags } from "../lib/oci/image_store.ts";
import { exportLayer } from "../lib/oci/layer_export.ts";
import { pullImage } from "../lib/oci/pull.ts";
import { pullFromContainersStorage } from "../lib/oci/cstor/pull.ts";
import { CstorImageSource } from "../lib/oci/cstor/source.ts";
import {
  StoreNotFoundError,
  TarSplitCorruptError,
  TarSplitCrcMismatchError,
} from "../lib/oci/cstor/errors.ts";
import { StorageConfError } from "../lib/oci/cstor/storage_conf.ts";
import { DigestHasher } from "../lib/oci/digest.ts";
import { assertObjectsMatchFsverity, loopMount, requireCommand, run, tempDir } from "./_helpers.ts";
import { buildUmociLayout, copyToStore, FIXTURE_NAME, unmountStore } from "./_cstor_fixture.ts";

async function sha256OfStream(s: ReadableStream<Uint8Array>): Promise<string> {
  using h = new DigestHasher();
  for await (const c of s) h.update(c);
  return h.digest();
}

/** Environment with no storage.conf influence except what a test sets. */
function env(extra: Record<string, string> = {}): Record<string, string> {
  return { HOME: "/nonexistent-home", ...extra };
}

Deno.test("cstor: pull from overlay and vfs stores equals the OCI layout pull", async (t) => {
  await using tmp = await tempDir("cfs-cstor-");
  const layout = await buildUmociLayout(tmp.path);
  const ov = `${tmp.path}/ov`;
  const vfs = `${tmp.path}/vfs`;
  await copyToStore(layout, "v3", "overlay", `${ov}/root`, `${ov}/run`);
  await copyToStore(layout, "v3", "vfs", `${vfs}/root`, `${vfs}/run`);
  using ref = await Repository.init(`${tmp.path}/repo-oci`, {
    algorithm: "sha256",
    insecure: true,
  });
  const fromLayout = await pullImage(ref, `oci:${layout}:v3`, { tag: "v3" });
  assert.equal(fromLayout.layers.length, 3);

  for (const driver of ["overlay", "vfs"] as const) {
    await t.step(`${driver}: layers, digests and objects match`, async () => {
      const root = driver === "overlay" ? ov : vfs;
      using repo = await Repository.init(`${tmp.path}/repo-${driver}`, {
        algorithm: "sha512",
        insecure: true,
      });
      const r = await pullFromContainersStorage(
        repo,
        `containers-storage:[${driver}@${root}/root+${root}/run]${FIXTURE_NAME}:v3`,
        { tag: "mine", env: env() },
      );
      assert.equal(r.configDigest, fromLayout.configDigest);
      assert.equal(r.imageId, fromLayout.configDigest.slice(7));
      assert.deepEqual(listTags(repo), ["mine"]);
      assert.ok(r.images.length > 0, "a composefs EROFS image is generated");
      assert.deepEqual(r.layers.map((l) => l.diffId), fromLayout.layers.map((l) => l.diffId));
      // Every layer's export is the exact tar: it hashes to its diff_id.
      for (const l of r.layers) {
        assert.equal(await sha256OfStream(exportLayer(repo, l.diffId)), l.diffId);
      }
      // Store and repository share /tmp's filesystem: reflinked (xfs, btrfs) or else
      // hardlinked (ext4), never copied.
      assert.equal(r.stats.objectsCopied, 0);
      assert.ok(r.stats.objectsHardlinked + r.stats.objectsReflinked > 0);
      // Same algorithm as the layout pull → byte-identical layer splitstreams (same verity).
      using repo256 = await Repository.init(`${tmp.path}/repo-${driver}-256`, {
        algorithm: "sha256",
        insecure: true,
      });
      const r256 = await pullFromContainersStorage(
        repo256,
        `containers-storage:[${driver}@${root}/root+${root}/run]@${r.imageId.slice(0, 12)}`,
        { env: env() },
      );
      assert.deepEqual(
        r256.layers.map((l) => [l.diffId, l.verity.toHex()]),
        fromLayout.layers.map((l) => [l.diffId, l.verity.toHex()]),
      );
      // A second pull skips every layer.
      const again = await pullFromContainersStorage(
        repo256,
        `containers-storage:[${driver}@${root}/root+${root}/run]${r.imageId}`,
        { env: env() },
      );
      assert.ok(again.layers.every((l) => l.skipped));
    });
  }

  await t.step("a Docker v2s2 image keeps its manifest bytes", async () => {
    const dir = `${tmp.path}/dir-v2s2`;
    const ds = `${tmp.path}/ds`;
    const skopeo = requireCommand("skopeo");
    await run(skopeo, ["copy", "-q", "-f", "v2s2", `oci:${layout}:v2`, `dir:${dir}`]);
    await run(requireCommand("unshare"), [
      "-m",
      skopeo,
      "copy",
      "-q",
      `dir:${dir}`,
      `containers-storage:[overlay@${ds}/root+${ds}/run]localhost/docker:v2`,
    ]);
    using repo = await Repository.init(`${tmp.path}/repo-docker`, {
      algorithm: "sha256",
      insecure: true,
    });
    const r = await pullFromContainersStorage(
      repo,
      `containers-storage:[overlay@${ds}/root+${ds}/run]docker:v2`,
      { env: env(), tag: "d" },
    );
    assert.equal(r.manifestDigest, sha256Digest(await Deno.readFile(`${dir}/manifest.json`)));
    assert.deepEqual(
      r.layers.map((l) => [l.diffId, l.verity.toHex()]),
      fromLayout.layers.slice(0, 2).map((l) => [l.diffId, l.verity.toHex()]),
    );
  });

  await t.step("a store behind c/storage's own overlay bind mount", async () => {
    const bm = `${tmp.path}/bindmounted`;
    try {
      await copyToStore(layout, "v3", "overlay", `${bm}/root`, `${bm}/run`, true);
      using repo = await Repository.init(`${tmp.path}/repo-bind`, {
        algorithm: "sha256",
        insecure: true,
      });
      const r = await pullFromContainersStorage(
        repo,
        `containers-storage:[overlay@${bm}/root+${bm}/run]${FIXTURE_NAME}:v3`,
        { env: env() },
      );
      assert.deepEqual(
        r.layers.map((l) => [l.diffId, l.verity.toHex()]),
        fromLayout.layers.map((l) => [l.diffId, l.verity.toHex()]),
      );
    } finally {
      await unmountStore(`${bm}/root`);
    }
  });

  await t.step("read locks make a real c/storage writer (skopeo) wait", async () => {
    // c/storage writers take fcntl F_WRLCK on layers.lock / images.lock; /proc/locks lists a
    // blocked request as "-> POSIX ... WRITE <pid> <dev>:<inode>": proof that skopeo waits
    // for our OFD read locks.
    const inodes = ["overlay-layers/layers.lock", "overlay-images/images.lock"].map((f) =>
      Deno.statSync(`${ov}/root/${f}`).ino!
    );
    const src = CstorImageSource.open(`[overlay@${ov}/root+${ov}/run]${FIXTURE_NAME}:v3`, {
      env: env(),
    });
    const child = new Deno.Command(requireCommand("unshare"), {
      args: [
        "-m",
        requireCommand("skopeo"),
        "copy",
        "-q",
        `oci:${layout}:v1`,
        `containers-storage:[overlay@${ov}/root+${ov}/run]localhost/other:v1`,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    let finished = false;
    const status = child.status.then((s) => (finished = true, s));
    try {
      const deadline = Date.now() + 20_000;
      const blocked = () =>
        Deno.readTextFileSync("/proc/locks").split("\n").some((l) =>
          /-> POSIX\s+ADVISORY\s+WRITE/.test(l) && inodes.some((i) => l.includes(`:${i} `))
        );
      while (!blocked()) {
        assert.ok(!finished, "skopeo finished while we held the read lock");
        assert.ok(Date.now() < deadline, "skopeo never waited on our locks");
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      src[Symbol.dispose]();
    }
    assert.equal((await status).code, 0);
  });

  await t.step("storage.conf: CONTAINERS_STORAGE_CONF and additional image stores", async () => {
    // Main store: vfs with v3 only; an additional store (overlay) has v1.
    const extra = `${tmp.path}/extra`;
    await copyToStore(layout, "v1", "overlay", `${extra}/root`, `${extra}/run`);
    const conf = `${tmp.path}/storage.conf`;
    await Deno.writeTextFile(
      conf,
      `[storage]\ndriver = "overlay"\ngraphroot = "${ov}/root"\nrunroot = "${ov}/run"\n` +
        `[storage.options]\nadditionalimagestores = [ "${extra}/root" ]\n`,
    );
    await Deno.writeTextFile(
      `${tmp.path}/plain.conf`,
      `[storage]\ndriver = "overlay"\ngraphroot = "${ov}/root"\nrunroot = "${ov}/run"\n`,
    );
    using repo = await Repository.init(`${tmp.path}/repo-conf`, {
      algorithm: "sha256",
      insecure: true,
    });
    const r = await pullFromContainersStorage(repo, `containers-storage:test:v1`, {
      env: env({ CONTAINERS_STORAGE_CONF: conf }),
      tag: "v1",
    });
    assert.equal(r.store, `${extra}/root`);
    assert.equal(r.layers.length, 1);
    // Found in the main store (and by its short name).
    const r3 = await pullFromContainersStorage(repo, `containers-storage:test:v3`, {
      env: env({ CONTAINERS_STORAGE_CONF: conf }),
    });
    assert.equal(r3.store, `${ov}/root`);
    // STORAGE_OPTS=additionalimagestore=… (composefs-rs's test spelling) names it too.
    const viaOpts = await pullFromContainersStorage(repo, `containers-storage:test:v1`, {
      env: env({
        CONTAINERS_STORAGE_CONF: `${tmp.path}/plain.conf`,
        STORAGE_OPTS: `additionalimagestore=${extra}/root`,
      }),
    });
    assert.equal(viaOpts.store, `${extra}/root`);
    // STORAGE_OPTS replaces the configured additional stores.
    await assert.rejects(
      () =>
        pullFromContainersStorage(repo, `containers-storage:test:v1`, {
          env: env({ CONTAINERS_STORAGE_CONF: conf, STORAGE_OPTS: "overlay.mountopt=nodev" }),
        }),
      ImageNotFoundError,
    );
    await assert.rejects(
      () =>
        pullFromContainersStorage(repo, `containers-storage:test:v1`, {
          env: env({ CONTAINERS_STORAGE_CONF: `${tmp.path}/missing.conf` }),
        }),
      StorageConfError,
    );
  });

  await t.step("missing store and unknown image: typed errors, nothing tagged", async () => {
    using repo = await Repository.init(`${tmp.path}/repo-err`, {
      algorithm: "sha256",
      insecure: true,
    });
    await assert.rejects(
      () =>
        pullFromContainersStorage(repo, `containers-storage:[overlay@${tmp.path}/nope]x`, {
          env: env(),
          tag: "t",
        }),
      StoreNotFoundError,
    );
    await assert.rejects(
      () =>
        pullFromContainersStorage(repo, `containers-storage:[vfs@${vfs}/root]localhost/other:v9`, {
          env: env(),
          tag: "t",
        }),
      (e) => e instanceof ImageNotFoundError && e.message.includes("localhost/other:v9"),
    );
    assert.deepEqual(listTags(repo), []);
  });

  await t.step("corrupted tar-split and a diff file changed behind the store's back", async () => {
    const copy = `${tmp.path}/ov-copy`;
    await run(requireCommand("cp"), ["-a", ov, copy]);
    const spec = `containers-storage:[overlay@${copy}/root+${copy}/run]${FIXTURE_NAME}:v3`;
    const layers = (() => {
      using s = CstorImageSource.open(spec, { env: env() });
      return s.layers.map((l) => l.layerId);
    })();
    // Change `etc/hostname` of layer 2 ("changed\n"), keeping its size.
    const hostname = `${copy}/root/overlay/${layers[1]}/diff/etc/hostname`;
    await Deno.writeTextFile(hostname, "CHANGED\n");
    using repo = await Repository.init(`${tmp.path}/repo-crc`, {
      algorithm: "sha256",
      insecure: true,
    });
    await assert.rejects(
      () => pullFromContainersStorage(repo, spec, { env: env(), tag: "t" }),
      (e) =>
        e instanceof TarSplitCrcMismatchError && e.file === "etc/hostname" &&
        e.layerId === layers[1],
    );
    assert.deepEqual(listTags(repo), []);
    // Without the CRC check, the diff_id check refuses the layer, and the CRCs then name
    // the file.
    await assert.rejects(
      () => pullFromContainersStorage(repo, spec, { env: env(), tag: "t", verifyCrc: false }),
      (e) =>
        e instanceof TarSplitCrcMismatchError && e.file === "etc/hostname" &&
        e.cause instanceof DiffIdMismatchError,
    );
    assert.deepEqual(listTags(repo), []);
    await Deno.writeTextFile(hostname, "changed\n");
    // Now corrupt the top layer's tar-split.
    await Deno.writeFile(
      `${copy}/root/overlay-layers/${layers[2]}.tar-split.gz`,
      new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7]),
    );
    await assert.rejects(
      () => pullFromContainersStorage(repo, spec, { env: env(), tag: "t" }),
      (e) => e instanceof TarSplitCorruptError && e.layerId === layers[2],
    );
    assert.deepEqual(listTags(repo), []);
  });
});

Deno.test("cstor: on xfs, objects are reflinked from the store, never copied", async () => {
  await using tmp = await tempDir("cfs-cstor-xfs-");
  const layout = await buildUmociLayout(tmp.path);
  await using xfs = await loopMount("xfs");
  const root = `${xfs.path}/store`;
  await copyToStore(layout, "v3", "overlay", `${root}/root`, `${root}/run`);
  for (const zeroCopy of [false, true]) {
    using repo = await Repository.init(`${xfs.path}/repo-${zeroCopy}`, {
      algorithm: "sha256",
      insecure: true,
    });
    const r = await pullFromContainersStorage(
      repo,
      `containers-storage:[overlay@${root}/root+${root}/run]${FIXTURE_NAME}:v3`,
      { env: env(), zeroCopy, tag: "x" },
    );
    // 4 distinct external files (big, secret, var/gone/sub/f, opt/data); big's hardlink and
    // the chmod-only copy of opt/data in layer 3 are the same objects again.
    assert.equal(r.stats.objectsReflinked, 4, JSON.stringify(r.stats));
    assert.equal(r.stats.objectsCopied, 0);
    assert.equal(r.stats.objectsHardlinked, 0);
    for (const l of r.layers) {
      assert.equal(await sha256OfStream(exportLayer(repo, l.diffId)), l.diffId);
    }
    // Reflinked objects are hashed from the store's files: their names must still be the
    // fs-verity digests of what was linked.
    await assertObjectsMatchFsverity(`${xfs.path}/repo-${zeroCopy}`, "sha256");
  }
});

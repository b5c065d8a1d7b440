/**
 * End to end: `oci copy` between real repositories — cross-algorithm round trips, reflinks on
 * a loop-mounted xfs, hardlinks on ext4, --zerocopy refusals, and a copy killed mid-layer.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { Repository } from "../lib/repository/repository.ts";
import { pullImage } from "../lib/oci/pull.ts";
import { copyImage, ZeroCopyUnavailableError } from "../lib/oci/copy.ts";
import { LocalRepositoryEndpoint } from "../lib/oci/copy_endpoint.ts";
import { resolveImage } from "../lib/oci/image_store.ts";
import { layerStreamName } from "../lib/oci/names.ts";
import { writeDemoImage } from "../lib/demo/demo_image.ts";
import type { HashAlgorithm } from "../lib/fsverity/mod.ts";
import { assertObjectsMatchFsverity, loopMount, tempDir } from "./_helpers.ts";

const SMALL = { files: 120, maxFileSize: 48 * 1024 };

async function sha256Hex(stream: ReadableStream<Uint8Array>): Promise<string> {
  const { createHash } = await import("node:crypto");
  const h = createHash("sha256");
  for await (const c of stream) h.update(c);
  return h.digest("hex");
}

/** Every layer of `tag` in `repo` reconstructs to bytes whose sha256 is its diff_id. */
async function assertLayersMatchDiffIds(repo: Repository, tag: string): Promise<number> {
  const img = resolveImage(repo, tag);
  const diffIds = img.config!.diffIds;
  for (const d of diffIds) {
    assert.equal("sha256:" + await sha256Hex(repo.catStream(layerStreamName(d))), d);
  }
  return diffIds.length;
}

async function pulledRepo(
  dir: string,
  alg: HashAlgorithm,
  tag = "demo",
  opts = SMALL,
): Promise<Repository> {
  await writeDemoImage(join(dir, "layout"), tag, opts);
  const repo = await Repository.init(join(dir, `src-${alg}`), { algorithm: alg, insecure: true });
  await pullImage(repo, `oci:${join(dir, "layout")}:${tag}`, { tag });
  return repo;
}

Deno.test("oci copy: sha256 -> sha512 -> sha256 keeps digests and reproduces the same streams", async () => {
  await using tmp = await tempDir();
  using src = await pulledRepo(tmp.path, "sha256");
  const srcImg = resolveImage(src, "demo");
  using mid = await Repository.init(join(tmp.path, "mid"), { algorithm: "sha512", insecure: true });
  const s1 = await copyImage(
    new LocalRepositoryEndpoint(src),
    new LocalRepositoryEndpoint(mid),
    "demo",
  );
  assert.equal(s1.tag, "demo", "--name defaults to the source tag");
  assert.equal(s1.layersCopied, 3);
  assert.equal(s1.manifestDigest, srcImg.manifestDigest);
  assert.equal(s1.manifestVerity.length, 128, "sha512 verity in the destination");
  assert.ok(s1.objectsCopied > 0);
  assert.equal(s1.objectsHardlinked, 0, "no hardlinks across algorithms");
  const midImg = resolveImage(mid, "demo");
  assert.deepEqual(midImg.manifestBytes, srcImg.manifestBytes);
  assert.deepEqual(midImg.configBytes, srcImg.configBytes);
  assert.equal(await assertLayersMatchDiffIds(mid, "demo"), 3);
  assert.equal(mid.fsck().ok, true);
  await assertObjectsMatchFsverity(join(tmp.path, "mid"), "sha512");

  using back = await Repository.init(join(tmp.path, "back"), {
    algorithm: "sha256",
    insecure: true,
  });
  const s2 = await copyImage(
    new LocalRepositoryEndpoint(mid),
    new LocalRepositoryEndpoint(back),
    "demo",
  );
  assert.equal(s2.manifestDigest, srcImg.manifestDigest);
  const backImg = resolveImage(back, "demo");
  // Same algorithm as the source again: every stream is byte-identical, so the verities are.
  assert.equal(backImg.manifestVerity.toHex(), srcImg.manifestVerity.toHex());
  assert.equal(backImg.configVerity.toHex(), srcImg.configVerity.toHex());
  assert.equal(back.fsck().ok, true);
  await assertObjectsMatchFsverity(join(tmp.path, "back"), "sha256");

  // Idempotent: a second copy transfers nothing.
  const s3 = await copyImage(
    new LocalRepositoryEndpoint(mid),
    new LocalRepositoryEndpoint(back),
    "demo",
  );
  assert.equal(s3.layersCopied, 0);
  assert.equal(s3.layersSkipped, 3);
});

Deno.test("oci copy: same algorithm on xfs reflinks every object (also with --zerocopy)", async () => {
  await using xfs = await loopMount("xfs");
  using src = await pulledRepo(xfs.path, "sha256");
  for (const zerocopy of [false, true]) {
    const path = join(xfs.path, `dst-${zerocopy}`);
    using dst = await Repository.init(path, { algorithm: "sha256", insecure: true });
    const s = await copyImage(
      new LocalRepositoryEndpoint(src),
      new LocalRepositoryEndpoint(dst),
      "demo",
      {
        zerocopy,
      },
    );
    assert.ok(s.objectsReflinked > 0, "objects were reflinked");
    assert.equal(s.objectsCopied, 0);
    assert.equal(s.objectsHardlinked, 0);
    assert.equal(await assertLayersMatchDiffIds(dst, "demo"), 3);
    assert.equal(dst.fsck().ok, true);
    // Shared extents: xfs_io-free check — a reflinked object is a separate inode.
    await assertObjectsMatchFsverity(path, "sha256");
  }
});

Deno.test("oci copy: sha256 -> sha512 on xfs reflinks the bytes and names them by sha512", async () => {
  await using xfs = await loopMount("xfs");
  using src = await pulledRepo(xfs.path, "sha256");
  const path = join(xfs.path, "dst512");
  using dst = await Repository.init(path, { algorithm: "sha512", insecure: true });
  const s = await copyImage(
    new LocalRepositoryEndpoint(src),
    new LocalRepositoryEndpoint(dst),
    "demo",
  );
  // The clone is hashed from the (immutable, cached) source object: the names must still be
  // the sha512 fs-verity digests of what was linked.
  assert.ok(s.objectsReflinked > 0, JSON.stringify(s));
  assert.equal(s.objectsCopied + s.objectsHardlinked, 0);
  assert.equal(await assertLayersMatchDiffIds(dst, "demo"), 3);
  assert.equal(dst.fsck().ok, true);
  await assertObjectsMatchFsverity(path, "sha512");
});

Deno.test("oci copy: same algorithm on ext4 hardlinks objects (no reflink there)", async () => {
  await using ext4 = await loopMount("ext4");
  using src = await pulledRepo(ext4.path, "sha512");
  using dst = await Repository.init(join(ext4.path, "dst"), {
    algorithm: "sha512",
    insecure: true,
  });
  const s = await copyImage(
    new LocalRepositoryEndpoint(src),
    new LocalRepositoryEndpoint(dst),
    "demo",
    {
      zerocopy: true,
    },
  );
  assert.ok(s.objectsHardlinked > 0, "objects were hardlinked");
  assert.equal(s.objectsCopied + s.objectsReflinked, 0);
  assert.equal(dst.fsck().ok, true);
  assert.equal(await assertLayersMatchDiffIds(dst, "demo"), 3);
  await assertObjectsMatchFsverity(join(ext4.path, "dst"), "sha512");
});

Deno.test("oci copy: --zerocopy refuses across algorithms and filesystems before writing", async () => {
  await using tmp = await tempDir();
  await using xfs = await loopMount("xfs");
  using src = await pulledRepo(tmp.path, "sha256");
  using other = await Repository.init(join(tmp.path, "dst512"), {
    algorithm: "sha512",
    insecure: true,
  });
  await assert.rejects(
    copyImage(new LocalRepositoryEndpoint(src), new LocalRepositoryEndpoint(other), "demo", {
      zerocopy: true,
    }),
    (e) => e instanceof ZeroCopyUnavailableError && e.reason === "algorithm",
  );
  using far = await Repository.init(join(xfs.path, "dst"), { algorithm: "sha256", insecure: true });
  await assert.rejects(
    copyImage(new LocalRepositoryEndpoint(src), new LocalRepositoryEndpoint(far), "demo", {
      zerocopy: true,
    }),
    (e) => e instanceof ZeroCopyUnavailableError && e.reason === "filesystem",
  );
  for (const p of [join(tmp.path, "dst512"), join(xfs.path, "dst")]) {
    const names = [...Deno.readDirSync(p)].map((e) => e.name).sort();
    assert.deepEqual(names, ["meta.json"], `nothing written to ${p}`);
  }
});

Deno.test("oci copy: a copy killed mid-layer leaves an fsck-clean destination; a re-run completes", async () => {
  await using tmp = await tempDir();
  using src = await pulledRepo(tmp.path, "sha256", "demo", { files: 400, maxFileSize: 512 * 1024 });
  src.close();
  const dst = join(tmp.path, "dst");
  (await Repository.init(dst, { algorithm: "sha512", insecure: true })).close();
  const cli = new URL("../cli.ts", import.meta.url).pathname;
  const args = [
    "run",
    "-A",
    cli,
    "--repo",
    dst,
    "oci",
    "copy",
    "--from",
    join(tmp.path, "src-sha256"),
    "demo",
  ];
  // Deno starts in ~100-300 ms here; the copy itself takes a few seconds: these delays land
  // before, during and (maybe) after the transfer.
  const delays = [300, 700, 1200, 1800, 2600];
  let interrupted = 0;
  for (const delay of delays) {
    const child = new Deno.Command(Deno.execPath(), { args, stdout: "null", stderr: "null" })
      .spawn();
    await new Promise((r) => setTimeout(r, delay));
    try {
      child.kill("SIGKILL");
    } catch {
      // already exited: fine, the check below still applies
    }
    await child.status;
    using d = await Repository.open(dst, { write: false });
    const report = d.fsck();
    assert.equal(
      report.ok,
      true,
      `fsck after kill at ${delay} ms: ${JSON.stringify(report.errors)}`,
    );
    // Killed mid-copy: objects exist, but the tag (written last) does not.
    const tagged = d.listStreamRefs("oci").length > 0;
    if (report.objectsChecked > 0 && !tagged) interrupted++;
  }
  assert.ok(interrupted > 0, "no kill landed while the copy was in progress");
  const done = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" })
    .output();
  assert.equal(done.code, 0, new TextDecoder().decode(done.stderr));
  using d = await Repository.open(dst, { write: false });
  assert.equal(d.fsck().ok, true);
  assert.equal(await assertLayersMatchDiffIds(d, "demo"), 3);
});

Deno.test("oci copy: same algorithm links objects unread; --verify re-hashes and catches a bad source", async () => {
  await using tmp = await tempDir();
  using src = await pulledRepo(tmp.path, "sha256");
  // Corrupt one large object of the source in place (same size, different bytes).
  const objects = join(tmp.path, "src-sha256", "objects");
  let victim = "";
  for (const d of Deno.readDirSync(objects)) {
    for (const f of Deno.readDirSync(join(objects, d.name))) {
      const p = join(objects, d.name, f.name);
      if (Deno.statSync(p).size > 4096 && victim === "") victim = p;
    }
  }
  assert.notEqual(victim, "");
  const bytes = Deno.readFileSync(victim);
  bytes[0] ^= 0xff;
  Deno.chmodSync(victim, 0o644);
  Deno.writeFileSync(victim, bytes);

  using checked = await Repository.init(join(tmp.path, "checked"), {
    algorithm: "sha256",
    insecure: true,
  });
  await assert.rejects(
    copyImage(new LocalRepositoryEndpoint(src), new LocalRepositoryEndpoint(checked), "demo", {
      verify: true,
    }),
    (e) => e instanceof Error && e.name === "DiffIdMismatchError",
  );
  assert.equal(checked.listStreamRefs("oci").length, 0, "nothing tagged after a failed verify");
  assert.equal(checked.fsck().ok, true);

  // Without --verify the names are trusted: the copy succeeds and fsck of the destination
  // reports the object the source had already lost.
  using fast = await Repository.init(join(tmp.path, "fast"), {
    algorithm: "sha256",
    insecure: true,
  });
  const s = await copyImage(
    new LocalRepositoryEndpoint(src),
    new LocalRepositoryEndpoint(fast),
    "demo",
  );
  assert.equal(s.layersCopied, 3);
  assert.equal(fast.fsck().ok, false);
  assert.equal(src.fsck().ok, false);
});

/**
 * End-to-end OCI pull on real images built with umoci/skopeo/GNU tar: every layer exports
 * byte-identically (sha256 == diff_id), and the stored file objects equal `fsverity digest`
 * over the tree umoci unpacks. Broken layouts fail with typed errors, tag nothing, and leave
 * a repository that fsck accepts.
 */

import { deepStrictEqual as assertEquals, ok, rejects, throws } from "node:assert/strict";
import { openFdCount } from "../ffi/owned_fd.ts";
import { Repository } from "../lib/repository/repository.ts";
import { CONTENT_TYPE } from "../lib/repository/splitstream.ts";
import { toHex } from "../lib/repository/object_id.ts";
import { pullImage } from "../lib/oci/pull.ts";
import { exportLayer, layerInfo } from "../lib/oci/layer_export.ts";
import {
  listImages,
  listTags,
  resolveImage,
  tagImage,
  untagImage,
} from "../lib/oci/image_store.ts";
import { ociFsck } from "../lib/oci/oci_fsck.ts";
import { TarSplitter } from "../lib/oci/tar_split.ts";
import { layerStreamName } from "../lib/oci/names.ts";
import {
  BlobDigestMismatchError,
  BlobSizeMismatchError,
  DiffIdMismatchError,
  ImageNotFoundError,
  InvalidOciDocumentError,
  NoMatchingPlatformError,
} from "../lib/oci/errors.ts";
import { sha256Digest } from "../lib/oci/digest.ts";
import {
  blobPath,
  buildFixtures,
  type Fixtures,
  layoutIndex,
  readJsonBlob,
  sh,
  writeBlob,
} from "./oci_fixtures.ts";

const dec = new TextDecoder();

async function newRepo(root: string, name: string, alg: "sha256" | "sha512" = "sha256") {
  return await Repository.init(`${root}/${name}`, { algorithm: alg, insecure: true });
}

async function collect(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(s).arrayBuffer());
}

/**
 * The merged tree's regular files from the repository: path → object hex (external files)
 * or "inline", applying whiteouts and opaque markers layer by layer, resolving hardlinks.
 */
async function repoTree(repo: Repository, diffIds: string[]): Promise<Map<string, string>> {
  const tree = new Map<string, string>();
  const norm = (p: Uint8Array) => dec.decode(p).replace(/^\.?\/+/, "").replace(/\/+$/, "");
  for (const d of diffIds) {
    const name = layerStreamName(d);
    const ids = [...repo.readStream(name).chunks()].filter((c) => "external" in c).map((c) =>
      toHex((c as { external: Uint8Array }).external)
    );
    let next = 0;
    const entries: { path: string; type: string; link: string; id?: string }[] = [];
    const splitter = new TarSplitter({
      writeInline: () => {},
      beginFile: () => {},
      writeFileChunk: () => {},
      endFile: () => {},
    }, (e) => {
      entries.push({
        path: norm(e.path),
        type: e.typeflag,
        link: norm(e.linkpath),
        id: e.external ? ids[next++] : undefined,
      });
    });
    for await (const c of repo.catStream(name)) await splitter.push(c);
    splitter.finish();
    assertEquals(next, ids.length, "every external chunk belongs to a file entry");
    // Whiteouts of this layer apply to the lower layers only.
    for (const e of entries) {
      const base = e.path.slice(e.path.lastIndexOf("/") + 1);
      const dir = e.path.includes("/") ? e.path.slice(0, e.path.lastIndexOf("/") + 1) : "";
      if (base === ".wh..wh..opq") {
        for (const k of [...tree.keys()]) if (k.startsWith(dir)) tree.delete(k);
      } else if (base.startsWith(".wh.")) {
        const victim = dir + base.slice(4);
        for (const k of [...tree.keys()]) {
          if (k === victim || k.startsWith(victim + "/")) tree.delete(k);
        }
      }
    }
    for (const e of entries) {
      const base = e.path.slice(e.path.lastIndexOf("/") + 1);
      if (base.startsWith(".wh.")) continue;
      if (e.type === "0" || e.type === "\0" || e.type === "7") tree.set(e.path, e.id ?? "inline");
      else if (e.type === "1") tree.set(e.path, tree.get(e.link) ?? "missing-link-target");
      else tree.delete(e.path);
    }
  }
  return tree;
}

/** Regular files of an unpacked tree: path → `fsverity digest` hex (> 64 bytes) or "inline". */
async function unpackedTree(root: string, alg: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const big: string[] = [];
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(rel ? `${root}/${rel}` : root)) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(p);
      else if (e.isFile) {
        const st = await Deno.stat(`${root}/${p}`);
        if (st.size > 64) big.push(p);
        else out.set(p, "inline");
      }
    }
  };
  await walk("");
  if (big.length) {
    const lines = await sh("fsverity", [
      "digest",
      `--hash-alg=${alg}`,
      "--block-size=4096",
      ...big.map((p) => `${root}/${p}`),
    ]);
    for (const l of lines.trim().split("\n")) {
      const sp = l.indexOf(" ");
      const hex = l.slice(0, sp).replace(/^sha(256|512):/, "");
      out.set(l.slice(sp + 1).slice(root.length + 1), hex);
    }
  }
  return out;
}

/** Pull, then check every layer export and the merged tree against umoci's unpack. */
async function pullAndVerify(
  fx: Fixtures,
  repo: Repository,
  source: string,
  tag: string,
  expectCompression: string,
) {
  const r = await pullImage(repo, source, { tag });
  assertEquals(r.tag, tag);
  const img = resolveImage(repo, tag);
  for (const l of img.manifest.layers) ok(l.mediaType.includes(expectCompression), l.mediaType);
  const diffIds = img.config!.diffIds;
  assertEquals(r.layers.map((l) => l.diffId), diffIds);
  for (const d of diffIds) {
    const tar = await collect(exportLayer(repo, d));
    assertEquals(sha256Digest(tar), d, `layer ${d} exports byte-identically`);
    const info = await layerInfo(repo, d);
    assertEquals(info.size, tar.length);
  }
  const mine = await repoTree(repo, diffIds);
  const theirs = await unpackedTree(fx.unpacked, repo.algorithm);
  assertEquals(new Map([...mine].sort()), new Map([...theirs].sort()));
  for (const id of mine.values()) {
    if (id !== "inline") ok(repo.hasObject(Uint8Array.fromHex(id)), `object ${id} stored`);
  }
  return r;
}

let fx: Fixtures;

Deno.test("oci pull: real umoci/skopeo images", async (t) => {
  fx = await buildFixtures();
  const repoRoot = await Deno.makeTempDir({ prefix: "cfs-oci-repo-" });
  try {
    await t.step(
      "gzip layout, 4 layers: whiteouts, opaque dir, GNU/PAX names, xattrs",
      async () => {
        using repo = await newRepo(repoRoot, "gzip");
        const r = await pullAndVerify(fx, repo, `oci:${fx.oci}:v4`, "img:v4", "gzip");
        assertEquals(r.layers.length, 4);
        ok(r.stats.objectsCopied > 0);
        // Pulling v1 again skips its (shared) base layer; v2 shares two layers.
        const r1 = await pullImage(repo, `oci:${fx.oci}:v1`, { tag: "v1" });
        assertEquals(r1.layers.map((l) => l.skipped), [true]);
        assertEquals(listTags(repo), ["img:v4", "v1"]);
        const images = listImages(repo);
        assertEquals(images.map((i) => [i.name, i.layer_count, i.is_container]), [
          ["img:v4", 4, true],
          ["v1", 1, true],
        ]);
        const f = ociFsck(repo);
        assertEquals([f.ok, f.errors, f.imagesChecked], [true, [], 2]);
      },
    );

    await t.step("zstd layers (skopeo --dest-compress-format zstd)", async () => {
      using repo = await newRepo(repoRoot, "zstd");
      await pullAndVerify(fx, repo, `oci:${fx.zstd}:v4`, "z", "zstd");
    });

    await t.step("uncompressed layers", async () => {
      using repo = await newRepo(repoRoot, "unc");
      await pullAndVerify(fx, repo, `oci:${fx.uncompressed}:v4`, "u", "tar");
    });

    await t.step("Docker v2s2 manifest and media types", async () => {
      using repo = await newRepo(repoRoot, "docker");
      const r = await pullAndVerify(fx, repo, `oci:${fx.docker}:v4`, "d", "docker");
      const img = resolveImage(repo, "d");
      assertEquals(img.manifestDigest, r.manifestDigest);
      ok(img.isContainer);
    });

    await t.step("oci-archive read in place (sha512 repository)", async () => {
      using repo = await newRepo(repoRoot, "archive", "sha512");
      await pullAndVerify(fx, repo, `oci-archive:${fx.archive}:v4`, "a", "gzip");
      assertEquals(ociFsck(repo).ok, true);
    });

    await t.step("image index: host platform by default, --platform picks the other", async () => {
      using repo = await newRepo(repoRoot, "index");
      const host = await pullImage(repo, `oci:${fx.index}:multi`, { tag: "host" });
      const cfg = JSON.parse(dec.decode(resolveImage(repo, "host").configBytes));
      const hostArch = cfg.architecture;
      const other = hostArch === "amd64" ? "arm64" : "amd64";
      const o = await pullImage(repo, `oci:${fx.index}:multi`, {
        tag: "other",
        platform: { os: "linux", architecture: other },
      });
      ok(host.manifestDigest !== o.manifestDigest);
      assertEquals(
        JSON.parse(dec.decode(resolveImage(repo, "other").configBytes)).architecture,
        other,
      );
      await rejects(
        pullImage(repo, `oci:${fx.index}:multi`, {
          platform: { os: "linux", architecture: "s390x" },
        }),
        NoMatchingPlatformError,
      );
      // By manifest digest, and tag/untag.
      const byDigest = await pullImage(repo, `oci:${fx.oci}@${host.manifestDigest}`, {});
      assertEquals(byDigest.manifestDigest, host.manifestDigest);
      tagImage(repo, o.manifestDigest, "again");
      assertEquals(resolveImage(repo, "again").manifestDigest, o.manifestDigest);
      untagImage(repo, "again");
      assertEquals(listTags(repo), ["host", "other"]);
      throws(() => untagImage(repo, "again"), ImageNotFoundError);
    });

    await t.step("oci fsck finds a missing layer stream and a tampered manifest", async () => {
      using repo = await newRepo(repoRoot, "fsck");
      const r = await pullImage(repo, `oci:${fx.oci}:v2`, { tag: "v2" });
      await pullImage(repo, `oci:${fx.oci}:v1`, { tag: "v1" });
      assertEquals(ociFsck(repo).ok, true);
      // Drop the second layer's stream link: only v2 uses it.
      await Deno.remove(`${repo.path}/streams/${layerStreamName(r.layers[1].diffId)}`);
      let f = ociFsck(repo);
      assertEquals([f.ok, f.imagesChecked, f.imagesCorrupted], [false, 2, 1]);
      ok(
        f.errors.some((e) => e.includes("missing-layer-stream") && e.includes(": v2: ")),
        f.errors[0],
      );
      assertEquals(ociFsck(repo, "v1").ok, true);
      throws(() => ociFsck(repo, "nope"), ImageNotFoundError);
      // Re-pulling repairs it: the missing layer is imported again.
      const again = await pullImage(repo, `oci:${fx.oci}:v2`, { tag: "v2" });
      assertEquals(again.layers.map((l) => l.skipped), [true, false]);
      assertEquals(ociFsck(repo).ok, true);
      // Point a tag at a manifest stream whose bytes do not hash to the tagged digest.
      const fake = "sha256:" + "e".repeat(64);
      await Deno.symlink(
        await Deno.readLink(`${repo.path}/streams/oci-manifest-${r.manifestDigest}`),
        `${repo.path}/streams/oci-manifest-${fake}`,
      );
      tagImage(repo, fake, "liar");
      f = ociFsck(repo, "liar");
      ok(!f.ok && f.errors.some((e) => e.includes("digest-mismatch")), f.errors.join("; "));
      throws(() => resolveImage(repo, "liar"), BlobDigestMismatchError);
      assertEquals(listImages(repo, () => {}).map((i) => i.name), ["v1", "v2"]);
    });

    await t.step("artifact: non-tar layer stored as one oci_blob object", async () => {
      const dir = `${fx.root}/artifact`;
      await sh("umoci", ["init", "--layout", dir]);
      const enc = new TextEncoder();
      const payload = new Uint8Array(10000).fill(42);
      const cfg = await writeBlob(dir, enc.encode("{}"));
      const blob = await writeBlob(dir, payload);
      const m = await writeBlob(
        dir,
        enc.encode(JSON.stringify({
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          artifactType: "application/vnd.example.thing",
          config: { mediaType: "application/vnd.oci.empty.v1+json", ...cfg },
          layers: [{ mediaType: "application/octet-stream", ...blob }],
        })),
      );
      await Deno.writeTextFile(
        `${dir}/index.json`,
        JSON.stringify({
          schemaVersion: 2,
          manifests: [{
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            ...m,
            annotations: { "org.opencontainers.image.ref.name": "art" },
          }],
        }),
      );
      using repo = await newRepo(repoRoot, "artifact");
      const r = await pullImage(repo, `oci:${dir}:art`, { tag: "art" });
      assertEquals(r.layers.map((l) => l.diffId), [blob.digest]);
      const img = resolveImage(repo, "art");
      assertEquals([img.isContainer, img.config], [false, undefined]);
      const s = repo.readStream(layerStreamName(blob.digest), CONTENT_TYPE.OCI_BLOB);
      assertEquals(s.objectRefs.length, 1);
      assertEquals(await collect(repo.catStream(layerStreamName(blob.digest))), payload);
      assertEquals(listImages(repo).map((i) => [i.name, i.architecture]), [["art", ""]]);
      assertEquals(ociFsck(repo).ok, true);
    });

    await t.step("broken layouts: typed errors, nothing tagged, fsck clean", async () => {
      const v1 = (await layoutIndex(fx.oci)).find((m) =>
        m.annotations?.["org.opencontainers.image.ref.name"] === "v1"
      )!;
      const manifest = await readJsonBlob(fx.oci, v1.digest);
      const cfgDesc = manifest.config as { digest: string; size: number; mediaType: string };
      const layer = (manifest.layers as { digest: string; size: number; mediaType: string }[])[0];
      const cfg = await readJsonBlob(fx.oci, cfgDesc.digest);
      const enc = new TextEncoder();
      /** A copy of the layout whose index.json names one image "bad": `edit`'s manifest. */
      const variant = async (name: string, edit: (dir: string) => Promise<unknown>) => {
        const dir = `${fx.root}/bad-${name}`;
        await sh("cp", ["-a", fx.oci, dir]);
        const m = await edit(dir);
        const md = await writeBlob(
          dir,
          enc.encode(typeof m === "string" ? m : JSON.stringify(m)),
        );
        await Deno.writeTextFile(
          `${dir}/index.json`,
          JSON.stringify({
            schemaVersion: 2,
            manifests: [{
              mediaType: "application/vnd.oci.image.manifest.v1+json",
              ...md,
              annotations: { "org.opencontainers.image.ref.name": "bad" },
            }],
          }),
        );
        return dir;
      };
      using repo = await newRepo(repoRoot, "errors");
      let fds = -1;
      const expectFailure = async (dir: string, check: (e: Error) => boolean, ref = "bad") => {
        await rejects(pullImage(repo, `oci:${dir}:${ref}`, { tag: "t" }), (e: Error) => {
          ok(check(e), `${e.name}: ${e.message}`);
          return true;
        });
        assertEquals(listTags(repo), []);
        const f = ociFsck(repo);
        assertEquals([f.ok, f.errors, f.repo.errors], [true, [], []]);
      };
      // 1. A config whose diff_id is wrong.
      const wrong = "sha256:" + "0".repeat(64);
      const badCfg = { ...cfg, rootfs: { type: "layers", diff_ids: [wrong] } };
      const d1 = await variant("diffid", async (dir) => {
        const c = await writeBlob(dir, enc.encode(JSON.stringify(badCfg)));
        return { ...manifest, config: { ...cfgDesc, ...c } };
      });
      await expectFailure(
        d1,
        (e) =>
          e instanceof DiffIdMismatchError && e.layer === layer.digest && e.expected === wrong &&
          e.actual === (cfg.rootfs as { diff_ids: string[] }).diff_ids[0],
      );
      fds = openFdCount(); // after the first pull opened the repository's directories
      // 2. A truncated layer blob.
      const d2 = await variant("trunc", async (dir) => {
        const p = blobPath(dir, layer.digest);
        const b = await Deno.readFile(p);
        await Deno.writeFile(p, b.subarray(0, b.length - 100));
        return manifest;
      });
      await expectFailure(
        d2,
        (e) =>
          e instanceof BlobSizeMismatchError && e.expected === layer.size &&
          e.actual === layer.size - 100,
      );
      // 3. A layer blob with a wrong digest (same size, one byte changed).
      const d3 = await variant("digest", async (dir) => {
        const p = blobPath(dir, layer.digest);
        const b = await Deno.readFile(p);
        b[b.length >> 1] ^= 0xff;
        await Deno.writeFile(p, b);
        return manifest;
      });
      await expectFailure(
        d3,
        (e) => e instanceof BlobDigestMismatchError && e.expected === layer.digest,
      );
      // 4. A manifest that is not JSON.
      const d4 = await variant("notjson", () => Promise.resolve("this is not json"));
      await expectFailure(d4, (e) => e instanceof InvalidOciDocumentError && e.kind === "manifest");
      // 5. A tag that does not exist.
      await expectFailure(
        fx.oci,
        (e) => e instanceof ImageNotFoundError && e.reference === "nope",
        "nope",
      );
      assertEquals(openFdCount(), fds, "no file descriptor leaked by failed pulls");
    });
  } finally {
    await Deno.remove(repoRoot, { recursive: true });
    await Deno.remove(fx.root, { recursive: true });
  }
});

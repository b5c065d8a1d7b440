/** The `oci` CLI commands in-process, on a real umoci/skopeo-built layout. */

import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { runCli } from "../lib/cli/main.ts";
import { Output, type TextSink } from "../lib/cli/output.ts";
import { Repository } from "../lib/repository/repository.ts";
import { sha256Digest } from "../lib/oci/digest.ts";
import { buildFixtures } from "./oci_fixtures.ts";

class Buf implements TextSink {
  text = "";
  bytes: Uint8Array[] = [];
  constructor(readonly tty = false) {}
  write(t: string) {
    this.text += t;
  }
  writeBytes(b: Uint8Array) {
    this.bytes.push(b.slice());
  }
  isTerminal() {
    return this.tty;
  }
  all(): Uint8Array {
    const out = new Uint8Array(this.bytes.reduce((n, b) => n + b.length, 0));
    let o = 0;
    for (const b of this.bytes) {
      out.set(b, o);
      o += b.length;
    }
    return out;
  }
}

async function cli(args: string[], tty = false) {
  const stdout = new Buf(tty);
  const stderr = new Buf();
  const code = await runCli(args, { output: new Output(stdout, stderr) });
  return { code, stdout, stderr };
}

Deno.test("oci CLI: pull, images, inspect, tag/untag, layer, fsck", async () => {
  const fx = await buildFixtures();
  const repo = `${fx.root}/repo`;
  try {
    (await Repository.init(repo, { algorithm: "sha512", insecure: true })).close();
    const g = ["--repo", repo];
    const pull = await cli([
      ...g,
      "oci",
      "pull",
      `oci-archive:${fx.archive}:v4`,
      "img/x:1",
      "--json",
    ]);
    assertEquals(pull.code, 0, pull.stderr.text);
    const pr = JSON.parse(pull.stdout.text);
    assertEquals(pr.tag, "img/x:1");
    assertEquals(pr.layers.length, 4);
    ok(pull.stderr.text.includes("layer 4/4"), "progress on stderr");
    // Default NAME is the source string itself.
    const p2 = await cli([...g, "oci", "pull", `oci:${fx.zstd}:v4`]);
    assertEquals(p2.code, 0, p2.stderr.text);
    ok(p2.stdout.text.includes(`tagged   oci:${fx.zstd}:v4`));
    const imgs = await cli([...g, "oci", "images", "--json"]);
    const list = JSON.parse(imgs.stdout.text).images;
    assertEquals(
      list.map((i: { name: string }) => i.name).sort(),
      ["img/x:1", `oci:${fx.zstd}:v4`].sort(),
    );
    assertEquals(Object.keys(list[0]).sort(), [
      "architecture",
      "created",
      "is_container",
      "layer_count",
      "manifest_digest",
      "name",
      "os",
      "referrer_count",
    ]);
    const table = await cli([...g, "oci", "images"]);
    ok(/^NAME\s+DIGEST\s+ARCH\s+LAYERS\s+REFS$/m.test(table.stdout.text), table.stdout.text);
    // inspect: raw manifest bytes and the combined JSON.
    const man = await cli([...g, "oci", "inspect", "img/x:1", "--manifest"]);
    assertEquals(
      sha256Digest(new TextEncoder().encode(man.stdout.text.slice(0, -1))),
      pr.manifest_digest,
    );
    const ins = JSON.parse(
      (await cli([...g, "oci", "inspect", `@${pr.manifest_digest}`])).stdout.text,
    );
    assertEquals(Object.keys(ins).sort(), [
      "composefs_boot_erofs",
      "composefs_erofs",
      "config",
      "manifest",
      "referrers",
    ]);
    const cfg = JSON.parse(ins.config);
    // layer: exact tar bytes on stdout; JSON description; refusal on a terminal.
    for (const d of cfg.rootfs.diff_ids) {
      const l = await cli([...g, "oci", "layer", d]);
      assertEquals(l.code, 0, l.stderr.text);
      assertEquals(sha256Digest(l.stdout.all()), d);
    }
    const lj = JSON.parse(
      (await cli([...g, "oci", "layer", cfg.rootfs.diff_ids[0], "--json"])).stdout.text,
    );
    assertEquals(Object.keys(lj).sort(), ["diffId", "entryCount", "size", "splitstream", "verity"]);
    assertEquals(lj.verity.length, 128);
    const tty = await cli([...g, "oci", "layer", cfg.rootfs.diff_ids[0]], true);
    assertEquals(tty.code, 2);
    ok(tty.stderr.text.includes("terminal"));
    // tag / untag.
    const t = await cli([...g, "oci", "tag", pr.manifest_digest, "again"]);
    assertEquals(t.stdout.text, `Tagged ${pr.manifest_digest} as again\n`);
    assertEquals((await cli([...g, "oci", "untag", "again"])).stdout.text, "Removed tag again\n");
    const gone = await cli([...g, "oci", "untag", "again"]);
    assertEquals(gone.code, 1);
    ok(gone.stderr.text.includes('Image "again" not found'), gone.stderr.text);
    // fsck JSON shape; a bad pull fails with a typed error and tags nothing.
    const bad = await cli([...g, "oci", "pull", `oci:${fx.oci}:nope`, "--json"]);
    assertEquals(bad.code, 1);
    assertEquals(JSON.parse(bad.stdout.text).error.name, "ImageNotFoundError");
    const f = await cli([...g, "oci", "fsck", "--json"]);
    const fr = JSON.parse(f.stdout.text);
    assertEquals([fr.ok, fr.images_checked, fr.images_corrupted, fr.errors], [true, 2, 0, []]);
    assertEquals(fr.repo.ok, true);
    assertEquals((await cli([...g, "oci", "fsck", "img/x:1"])).code, 0);
    assertEquals((await cli([...g, "oci", "fsck", "missing"])).code, 1);
  } finally {
    await Deno.remove(fx.root, { recursive: true });
  }
});

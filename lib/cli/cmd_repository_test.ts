import assert from "node:assert/strict";
import { runCli } from "./main.ts";
import { Output, type TextSink } from "./output.ts";
import { resolveRepoPath } from "./repo_path.ts";
import { Repository } from "../repository/repository.ts";
import { SplitstreamWriter } from "../repository/splitstream.ts";
import { objectPathOf, toHex } from "../repository/object_id.ts";
import { composefsImage } from "../../tests/repository_image_fixture.ts";

function buffers() {
  let out = "";
  let err = "";
  const bytes: Uint8Array[] = [];
  const stdout: TextSink = {
    write: (t) => (out += t),
    writeBytes: (b) => bytes.push(b.slice()),
    isTerminal: () => false,
  };
  const stderr: TextSink = { write: (t) => (err += t), isTerminal: () => false };
  return { output: new Output(stdout, stderr), out: () => out, err: () => err, bytes };
}

async function cli(args: string[]) {
  const b = buffers();
  const code = await runCli(args, { output: b.output });
  return { code, out: b.out(), err: b.err(), bytes: b.bytes };
}

Deno.test("resolveRepoPath follows cfsctl: --repo, --system, --user, then by euid", () => {
  const env = { home: "/home/u", uid: 1000 };
  assert.equal(resolveRepoPath({ repo: "/x" }, env), "/x");
  assert.equal(resolveRepoPath({ system: true }, env), "/sysroot/composefs");
  assert.equal(
    resolveRepoPath({ user: true }, { home: "/root", uid: 0 }),
    "/root/.var/lib/composefs",
  );
  assert.equal(resolveRepoPath({}, env), "/home/u/.var/lib/composefs");
  assert.equal(resolveRepoPath({}, { home: "/root", uid: 0 }), "/sysroot/composefs");
  assert.throws(() => resolveRepoPath({}, { uid: 1000 }), /HOME/);
});

Deno.test("cli: init, fsck, gc, cat, images, image-objects", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cfs-cli-repo-" });
  try {
    const path = `${dir}/repo`;
    let r = await cli(["init", "--insecure", path]);
    assert.equal(r.code, 0, r.err);
    assert.equal(
      r.out,
      `Initialized composefs repository at ${path}\n  algorithm: fsverity-sha512-12\n  verity:    not required (insecure)\n`,
    );
    r = await cli(["init", "--insecure", path]);
    assert.equal(r.out, `Repository already initialized at ${path}\n`);
    r = await cli(["init", "--insecure", "--algorithm", "fsverity-sha256-12", path]);
    assert.equal(r.code, 1);
    assert.match(r.err, /different configuration/);
    r = await cli(["init", "--algorithm", "fsverity-sha256-13", `${dir}/x`]);
    assert.equal(r.code, 2);
    r = await cli(["init", "--ensure", path]);
    assert.equal(
      r.out,
      `Repository already initialized at ${path} (existing configuration preserved)\n`,
    );
    r = await cli(["init", "--insecure", "--erofs-version", "2", `${dir}/v2`]);
    assert.equal(r.code, 0, r.err);
    assert.match(await Deno.readTextFile(`${dir}/v2/meta.json`), /"default": 2/);
    r = await cli(["--repo", path, "--hash", "sha256", "fsck"]);
    assert.equal(r.code, 1);
    assert.match(r.err, /configured for "fsverity-sha512-12"/);

    const content = new TextEncoder().encode("hello from a stream ".repeat(50));
    let imageId = "";
    let objId: Uint8Array;
    {
      using repo = await Repository.open(path, { write: true });
      objId = repo.storeObject(content);
      const w = new SplitstreamWriter("sha512");
      w.writeInline(new TextEncoder().encode("<"));
      w.writeExternal(objId, content.length);
      w.writeInline(new TextEncoder().encode(">"));
      repo.writeStream("s1", w.finish(), "mine");
      imageId = toHex(
        repo.writeImage(composefsImage([objId]), "img"),
      );
      repo.storeObject(new TextEncoder().encode("garbage"));
    }
    r = await cli(["--repo", path, "cat", "refs/mine"]);
    assert.equal(r.code, 0, r.err);
    const catted = new Uint8Array(r.bytes.reduce((n, b) => n + b.length, 0));
    let off = 0;
    for (const b of r.bytes) (catted.set(b, off), off += b.length);
    assert.equal(new TextDecoder().decode(catted), `<${new TextDecoder().decode(content)}>`);

    r = await cli(["--repo", path, "images"]);
    assert.equal(r.out, `NAME  DIGEST\nimg   ${imageId.slice(0, 12)}\n`);
    r = await cli(["--repo", path, "images", "--json"]);
    assert.deepEqual(JSON.parse(r.out), { images: [{ name: "img", digest: imageId }] });
    r = await cli(["--repo", path, "image-objects", "img"]);
    assert.equal(r.out, `sha512:${toHex(objId)}\n`);

    r = await cli(["--repo", path, "fsck"]);
    assert.equal(r.code, 0, r.err);
    assert.equal(
      r.out,
      "meta.json: ok\nobjects: 4/4 ok\nstreams: 1/1 ok\nimages: 1/1 ok\nstatus: ok\n",
    );
    r = await cli(["--repo", path, "fsck", "--json"]);
    const j = JSON.parse(r.out);
    assert.equal(j.ok, true);
    assert.equal(j.objects_checked, 4);

    r = await cli(["--repo", path, "gc", "-n"]);
    assert.equal(r.out, "Dry run (no files deleted):\nObjects: 1 removed (7 bytes)\n");
    r = await cli(["--repo", path, "gc", "--json"]);
    assert.deepEqual(JSON.parse(r.out), {
      result: { objects_removed: 1, objects_bytes: 7, images_pruned: 0, streams_pruned: 0 },
      dry_run: false,
    });

    // Corruption makes text-mode fsck exit 1, JSON mode exit 0 with ok=false.
    await Deno.writeTextFile(`${path}/objects/${objectPathOf(objId)}`, "tampered");
    r = await cli(["--repo", path, "fsck"]);
    assert.equal(r.code, 1);
    assert.match(r.out, /status: 1 error\(s\)\n {2}- fsck: object-digest-mismatch: objects\//);
    r = await cli(["--repo", path, "fsck", "--json"]);
    assert.equal(r.code, 0);
    assert.equal(JSON.parse(r.out).ok, false);
    r = await cli(["--repo", path, "fsck", "--metadata-only"]);
    assert.equal(r.code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: init --reset-metadata switches algorithm keeping objects; --ensure upgrades", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cfs-cli-repo-" });
  try {
    const path = `${dir}/repo`;
    assert.equal((await cli(["init", "--insecure", path])).code, 0);
    {
      using repo = await Repository.open(path, { write: true });
      repo.storeObject(new TextEncoder().encode("x"));
    }
    const r = await cli([
      "init",
      "--insecure",
      "--reset-metadata",
      "--algorithm",
      "fsverity-sha256-12",
      path,
    ]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /algorithm: fsverity-sha256-12/);
    assert.ok([...Deno.readDirSync(`${path}/objects`)].length > 0);

    // A legacy repository (objects/ only) is upgraded by --ensure.
    const legacy = `${dir}/legacy`;
    const id = "ab" + "cd".repeat(31);
    await Deno.mkdir(`${legacy}/objects/ab`, { recursive: true });
    await Deno.writeTextFile(`${legacy}/objects/ab/${id.slice(2)}`, "whatever");
    const u = await cli(["init", "--ensure", legacy]);
    assert.equal(u.code, 0, u.err);
    assert.equal(u.out, `Upgraded legacy repository at ${legacy}\n`);
    assert.match(await Deno.readTextFile(`${legacy}/meta.json`), /fsverity-sha256-12/);
    const fresh = await cli(["init", "--ensure", "--insecure", `${dir}/fresh`]);
    assert.match(fresh.out, /^Initialized composefs repository at /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

import assert from "node:assert/strict";
import { Repository } from "./repository.ts";
import { type FsckReport, fsckReportJson } from "./fsck.ts";
import { objectPathOf, toHex } from "./object_id.ts";
import { SplitstreamWriter } from "./splitstream.ts";
import { fsverityDigest } from "../fsverity/hasher.ts";
import { composefsImage } from "../../tests/repository_image_fixture.ts";

const enc = (s: string) => new TextEncoder().encode(s);

async function withRepo(fn: (repo: Repository, path: string) => Promise<void> | void) {
  const dir = await Deno.makeTempDir({ prefix: "cfs-fsck-test-" });
  try {
    using repo = await Repository.init(`${dir}/r`, { algorithm: "sha256", insecure: true });
    await fn(repo, `${dir}/r`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function types(r: FsckReport): string[] {
  return r.errors.map((e) => e.type).sort();
}

/** A healthy repository: a referenced stream with a named ref, a named image. */
function populate(repo: Repository) {
  const obj = repo.storeObject(enc("object ".repeat(100)));
  const inner = new SplitstreamWriter("sha256");
  inner.writeExternal(obj, 700);
  const innerId = repo.writeStream("inner", inner.finish());
  const outer = new SplitstreamWriter("sha256");
  outer.writeInline(enc("x"));
  outer.addNamedRef("inner", innerId);
  const outerId = repo.writeStream("outer", outer.finish(), "oci/tag");
  const img = repo.writeImage(composefsImage([obj]), "img");
  return { obj, innerId, outerId, img };
}

Deno.test("fsck of a healthy repository is ok, with counts and the CLI JSON shape", async () => {
  await withRepo((repo) => {
    populate(repo);
    const r = repo.fsck();
    assert.deepEqual(r.errors, []);
    assert.equal(r.ok, true);
    assert.equal(r.hasMetadata, true);
    assert.equal(r.objectsChecked, 4);
    assert.equal(r.streamsChecked, 2);
    assert.equal(r.imagesChecked, 1);
    assert.deepEqual(Object.keys(fsckReportJson(r)), [
      "ok",
      "has_metadata",
      "objects_checked",
      "objects_corrupted",
      "streams_checked",
      "streams_corrupted",
      "images_checked",
      "images_corrupted",
      "broken_links",
      "missing_objects",
      "errors",
    ]);
    const meta = repo.fsck({ metadataOnly: true });
    assert.equal(meta.ok, true);
    assert.equal(meta.objectsChecked, 0);
  });
});

Deno.test("fsck finds objects whose content does not match their name, and bad names", async () => {
  await withRepo(async (repo, path) => {
    const { obj } = populate(repo);
    const p = `${path}/objects/${objectPathOf(obj)}`;
    await Deno.chmod(p, 0o644);
    await Deno.writeTextFile(p, "tampered");
    await Deno.writeTextFile(`${path}/objects/${toHex(obj).slice(0, 2)}/xyz`, "bad name");
    const r = repo.fsck();
    assert.equal(r.ok, false);
    assert.deepEqual(types(r), ["object-digest-mismatch", "object-invalid-name"]);
    assert.equal(r.objectsCorrupted, 2);
    const mm = r.errors.find((e) => e.type === "object-digest-mismatch")!;
    assert.equal(
      (mm as { measured: string }).measured,
      toHex(fsverityDigest(enc("tampered"), "sha256")),
    );
    assert.match(fsckReportJson(r).errors + "", /fsck: object-digest-mismatch: objects\//);
    assert.equal(repo.fsck({ metadataOnly: true }).ok, true);
  });
});

Deno.test("fsck finds missing objects, broken links, non-symlinks and bad refs", async () => {
  await withRepo(async (repo, path) => {
    const { obj, innerId } = populate(repo);
    await Deno.remove(`${path}/objects/${objectPathOf(obj)}`);
    await Deno.remove(`${path}/objects/${objectPathOf(innerId)}`);
    await Deno.writeTextFile(`${path}/streams/plainfile`, "x");
    await Deno.symlink("../nothing-here", `${path}/streams/refs/broken`);
    const r = repo.fsck();
    assert.deepEqual(types(r), [
      "broken-symlink", // streams/inner → missing object
      "broken-symlink", // streams/refs/broken
      "entry-not-symlink",
      "image-missing-object",
      "missing-named-ref",
    ]);
    assert.equal(r.brokenLinks, 2);
    assert.equal(r.missingObjects, 2);
    assert.equal(r.streamsCorrupted, 2);
    assert.equal(r.imagesCorrupted, 1);
  });
});

Deno.test("fsck reports a missing object ref and a corrupt meta.json without throwing", async () => {
  await withRepo(async (repo, path) => {
    const { obj } = populate(repo);
    await Deno.remove(`${path}/objects/${objectPathOf(obj)}`);
    await Deno.writeTextFile(`${path}/meta.json`, "{ not json");
    const r = repo.fsck();
    assert.ok(types(r).includes("missing-object-ref"));
    assert.ok(types(r).includes("metadata-parse-failed"));
    assert.equal(r.ok, false);
  });
});

Deno.test("fsck reports a truncated splitstream as stream-open-failed", async () => {
  await withRepo(async (repo, path) => {
    const w = new SplitstreamWriter("sha256");
    w.writeInline(enc("some inline data ".repeat(30)));
    const bytes = w.finish();
    const truncated = repo.storeObject(bytes.subarray(0, 60));
    await Deno.mkdir(`${path}/streams`, { recursive: true });
    await Deno.symlink(`../objects/${objectPathOf(truncated)}`, `${path}/streams/trunc`);
    const r = repo.fsck();
    assert.deepEqual(types(r), ["stream-open-failed"]);
    assert.equal(r.streamsCorrupted, 1);
  });
});

Deno.test("fsck reports an image that is not a composefs EROFS image as image-invalid", async () => {
  await withRepo((repo) => {
    repo.writeImage(enc("not an erofs image ".repeat(300)), "junk");
    const r = repo.fsck();
    assert.deepEqual(types(r), ["image-invalid"]);
    assert.equal(r.imagesCorrupted, 1);
  });
});

import assert from "node:assert/strict";
import { Repository } from "./repository.ts";
import { RepositoryBusyError, RepositoryCorruptError } from "./errors.ts";
import { objectPathOf, toHex } from "./object_id.ts";
import { SplitstreamWriter } from "./splitstream.ts";
import { composefsImage } from "../../tests/repository_image_fixture.ts";

const enc = (s: string) => new TextEncoder().encode(s);

async function withRepo(fn: (repo: Repository, path: string) => Promise<void> | void) {
  const dir = await Deno.makeTempDir({ prefix: "cfs-gc-test-" });
  try {
    using repo = await Repository.init(`${dir}/r`, { algorithm: "sha256", insecure: true });
    await fn(repo, `${dir}/r`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A stream with one external object of `content`, optional named refs. */
function stream(repo: Repository, content: string, named: [string, Uint8Array][] = []) {
  const obj = repo.storeObject(enc(content.repeat(100)));
  const w = new SplitstreamWriter("sha256");
  w.writeInline(enc("hdr"));
  w.writeExternal(obj, content.length * 100);
  for (const [n, id] of named) w.addNamedRef(n, id);
  return { bytes: w.finish(), obj };
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("gc removes unreferenced objects and counts bytes", async () => {
  await withRepo((repo, path) => {
    const a = repo.storeObject(enc("aaaa"));
    const b = repo.storeObject(new Uint8Array(5000));
    const r = repo.gc();
    assert.deepEqual(r, {
      objectsRemoved: 2,
      objectsBytes: 5004,
      imagesPruned: 0,
      streamsPruned: 0,
      dryRun: false,
    });
    assert.ok(!exists(`${path}/objects/${objectPathOf(a)}`));
    assert.ok(!repo.hasObject(b));
    assert.equal(repo.gc().objectsRemoved, 0);
  });
});

Deno.test("gc: a stream without a ref is garbage (and its link is pruned); a ref keeps it", async () => {
  await withRepo((repo, path) => {
    const s1 = stream(repo, "one");
    const id1 = repo.writeStream("s1", s1.bytes);
    const s2 = stream(repo, "two");
    const id2 = repo.writeStream("s2", s2.bytes, "keep/me");
    const r = repo.gc();
    assert.equal(r.objectsRemoved, 2); // s1's splitstream and its object
    assert.equal(r.streamsPruned, 1);
    assert.equal(repo.hasStream("s1"), null);
    assert.ok(!exists(`${path}/streams/s1`));
    assert.ok(!repo.hasObject(id1) && !repo.hasObject(s1.obj));
    assert.deepEqual(repo.hasStream("s2"), id2);
    assert.ok(repo.hasObject(s2.obj));
  });
});

Deno.test("gc: named refs are followed by object ID, whatever the name", async () => {
  await withRepo((repo) => {
    const child = stream(repo, "child");
    const childId = repo.writeStream("child-cid", child.bytes);
    const grand = stream(repo, "grand");
    const grandId = repo.writeStream("grand-cid", grand.bytes);
    // child → grand through a named ref with an unrelated name.
    const mid = stream(repo, "mid", [["unrelated-name", grandId]]);
    const midId = repo.writeStream("mid-cid", mid.bytes);
    const top = stream(repo, "top", [["config:sha256:x", midId]]);
    repo.writeStream("top-cid", top.bytes, "top");
    const r = repo.gc();
    assert.equal(r.objectsRemoved, 2, "only the unreferenced child stream and its object");
    assert.ok(repo.hasObject(midId) && repo.hasObject(mid.obj));
    assert.ok(repo.hasObject(grandId) && repo.hasObject(grand.obj));
    assert.ok(!repo.hasObject(childId));
  });
});

Deno.test("gc: overlapping streams share objects; explicit roots keep entries", async () => {
  await withRepo((repo) => {
    const shared = repo.storeObject(enc("shared".repeat(50)));
    const mk = (extra: string) => {
      const own = repo.storeObject(enc(extra.repeat(50)));
      const w = new SplitstreamWriter("sha256");
      w.writeExternal(shared, 300);
      w.writeExternal(own, extra.length * 50);
      return { bytes: w.finish(), own };
    };
    const a = mk("aaa");
    const b = mk("bbb");
    repo.writeStream("a", a.bytes, "a");
    repo.writeStream("b", b.bytes);
    const dry = repo.gc({ dryRun: true, roots: ["b"] });
    assert.equal(dry.objectsRemoved, 0);
    const r = repo.gc();
    assert.equal(r.objectsRemoved, 2); // b's splitstream and b's own object
    assert.ok(repo.hasObject(shared) && repo.hasObject(a.own) && !repo.hasObject(b.own));
  });
});

Deno.test("gc: images with refs keep the objects they redirect to; unnamed images go", async () => {
  await withRepo((repo, path) => {
    const file = repo.storeObject(enc("file content ".repeat(20)));
    const image = composefsImage([file], { small: "inline" });
    const img = repo.writeImage(image, "named");
    const orphanObj = repo.storeObject(enc("orphan file ".repeat(20)));
    const orphanImage = composefsImage([orphanObj]);
    const orphan = repo.writeImage(orphanImage);
    const r = repo.gc();
    assert.equal(r.objectsRemoved, 2);
    assert.equal(r.imagesPruned, 1);
    assert.ok(repo.hasObject(img) && repo.hasObject(file));
    assert.ok(!repo.hasObject(orphan) && !repo.hasObject(orphanObj));
    assert.ok(!exists(`${path}/images/${toHex(orphan)}`));
    assert.deepEqual(repo.listImages().map((i) => i.name), ["named"]);
  });
});

Deno.test("gc dry run reports the same counts and deletes nothing", async () => {
  await withRepo((repo, path) => {
    const s = stream(repo, "x");
    repo.writeStream("gone", s.bytes);
    repo.storeObject(enc("loose"));
    const before = [...Deno.readDirSync(`${path}/objects`)].length;
    const dry = repo.gc({ dryRun: true });
    assert.equal(dry.dryRun, true);
    assert.equal(dry.objectsRemoved, 3);
    assert.equal(dry.streamsPruned, 1);
    assert.ok(exists(`${path}/streams/gone`));
    assert.equal([...Deno.readDirSync(`${path}/objects`)].length, before);
    const real = repo.gc();
    assert.deepEqual({ ...real, dryRun: true }, dry);
  });
});

Deno.test("gc prunes refs whose stream entry is gone", async () => {
  await withRepo(async (repo, path) => {
    await Deno.mkdir(`${path}/streams/refs/x`, { recursive: true });
    await Deno.symlink("../../missing", `${path}/streams/refs/x/dangling`);
    const r = repo.gc();
    assert.equal(r.streamsPruned, 1);
    assert.ok(!exists(`${path}/streams/refs/x/dangling`));
  });
});

Deno.test("gc needs the repository exclusively; stray names in objects/XX abort it", async () => {
  await withRepo(async (repo, path) => {
    {
      using _other = await Repository.open(path);
      assert.throws(() => repo.gc(), RepositoryBusyError);
      // A dry run only needs the shared lock.
      repo.gc({ dryRun: true });
    }
    repo.gc();
    await Deno.mkdir(`${path}/objects/ab`, { recursive: true });
    await Deno.writeTextFile(`${path}/objects/ab/not-an-object`, "x");
    assert.throws(() => repo.gc(), RepositoryCorruptError);
    assert.ok(exists(`${path}/objects/ab/not-an-object`));
  });
});

Deno.test("gc refuses to run when a rooted image cannot be read (its objects are unknown)", async () => {
  await withRepo((repo) => {
    const obj = repo.storeObject(enc("maybe referenced"));
    repo.writeImage(enc("garbage image ".repeat(400)), "broken");
    assert.throws(() => repo.gc(), RepositoryCorruptError);
    assert.ok(repo.hasObject(obj));
  });
});

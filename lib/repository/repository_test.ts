import assert from "node:assert/strict";
import { Repository } from "./repository.ts";
import {
  IncompatibleFeaturesError,
  MetadataInvalidError,
  UnsupportedVersionError,
} from "./meta.ts";
import {
  CopyNotAllowedError,
  MetadataMissingError,
  NotFoundError,
  ObjectDigestMismatchError,
  ObjectNotFoundError,
  OldFormatRepositoryError,
  RepositoryBusyError,
  RepositoryExistsError,
  RepositoryReadOnlyError,
  StreamMismatchError,
  UnsafeRepositoryEntryError,
  VerityMissingError,
  VerityUnsupportedError,
} from "./errors.ts";
import { assertNoFdLeak } from "../../tests/_helpers.ts";
import { objectPathOf, toHex } from "./object_id.ts";
import { CONTENT_TYPE, SplitstreamWriter } from "./splitstream.ts";
import { fsverityDigest } from "../fsverity/hasher.ts";
import { openPath, readAllAt } from "../../ffi/fs.ts";
import * as C from "../../ffi/constants.ts";
import { composefsImage } from "../../tests/repository_image_fixture.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "cfs-repo-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function collect(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(s).arrayBuffer());
}

function gen(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = ((((i % 256) + seed) % 256) * 17) % 256;
  return out;
}

Deno.test("init writes the exact meta.json, creates only the directory, and reopens", async () => {
  await withTmp(async (dir) => {
    const path = `${dir}/a/b/repo`;
    {
      using repo = await Repository.init(path, { algorithm: "sha512", insecure: true });
      assert.equal(repo.algorithm, "sha512");
      assert.ok(repo.insecure);
      assert.ok(repo.writable);
    }
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o700);
    assert.deepEqual([...Deno.readDirSync(path)].map((e) => e.name), ["meta.json"]);
    const text = await Deno.readTextFile(`${path}/meta.json`);
    assert.equal(
      text,
      `{\n  "version": 1,\n  "algorithm": "fsverity-sha512-12",\n  "features": {\n    "compatible": [],\n    "read-only-compatible": [\n      "v1_erofs"\n    ],\n    "incompatible": []\n  },\n  "erofs_formats": {\n    "default": 1\n  }\n}\n`,
    );
    // Idempotent with the same configuration, an error with another one.
    const again = await Repository.initDetailed(path, { algorithm: "sha512", insecure: true });
    assert.equal(again.created, false);
    again.repository.close();
    await assert.rejects(
      Repository.init(path, { algorithm: "sha256", insecure: true }),
      RepositoryExistsError,
    );
    using ro = await Repository.open(path);
    assert.equal(ro.writable, false);
    assert.throws(() => ro.storeObject(enc("x")), RepositoryReadOnlyError);
  });
});

Deno.test("init without --insecure fails on a filesystem without fs-verity, leaving no meta.json", async () => {
  await withTmp(async (dir) => {
    await assert.rejects(
      Repository.init(`${dir}/r`, { algorithm: "sha256" }),
      VerityUnsupportedError,
    );
    assert.throws(() => Deno.statSync(`${dir}/r/meta.json`), Deno.errors.NotFound);
  });
});

Deno.test("open refuses missing, too new, incompatible and invalid metadata", async () => {
  await withTmp(async (dir) => {
    await Deno.mkdir(`${dir}/empty`);
    await assert.rejects(Repository.open(`${dir}/empty`), MetadataMissingError);
    const cases: [string, string, new (...a: never[]) => Error][] = [
      ["v2", `{"version":2,"algorithm":"fsverity-sha256-12"}`, UnsupportedVersionError],
      [
        "inc",
        `{"version":1,"algorithm":"fsverity-sha256-12","features":{"incompatible":["x"]}}`,
        IncompatibleFeaturesError,
      ],
      ["bad", `{"version":1,"algorithm":"fsverity-sha1-12"}`, MetadataInvalidError],
    ];
    for (const [name, json, err] of cases) {
      await Deno.mkdir(`${dir}/${name}`);
      await Deno.writeTextFile(`${dir}/${name}/meta.json`, json);
      await assert.rejects(Repository.open(`${dir}/${name}`), err, name);
      await assert.rejects(Repository.open(`${dir}/${name}`, { write: true }), err, name);
    }
    // Unknown read-only-compatible feature: read-only open works, writable open is refused.
    await Deno.mkdir(`${dir}/ro`);
    await Deno.writeTextFile(
      `${dir}/ro/meta.json`,
      `{"version":1,"algorithm":"fsverity-sha256-12","features":{"read-only-compatible":["future"]}}`,
    );
    (await Repository.open(`${dir}/ro`)).close();
    await assert.rejects(Repository.open(`${dir}/ro`, { write: true }), RepositoryReadOnlyError);
  });
});

Deno.test("objects: in-memory, streaming, named-tmpfile fallback, dedup and abort", async () => {
  await withTmp(async (dir) => {
    for (const forceNamedTmpfile of [false, true]) {
      const path = `${dir}/r${forceNamedTmpfile ? "n" : "t"}`;
      (await Repository.init(path, { algorithm: "sha256", insecure: true })).close();
      using repo = await Repository.open(path, { write: true, forceNamedTmpfile });
      const id = repo.storeObject(enc("hello world"));
      assert.equal(toHex(id), "1e2eaa4202d750a41174ee454970b92c1bc2f925b1e35076d8c7d5f56362ba64");
      assert.equal(
        dec(await Deno.readFile(`${path}/objects/${objectPathOf(id)}`)),
        "hello world",
      );
      const big = gen(65536 * 3 + 17, 2);
      {
        using w = repo.createObjectWriter();
        for (let i = 0; i < big.length; i += 10000) w.write(big.subarray(i, i + 10000));
        const r = w.finish();
        assert.deepEqual(r.id, fsverityDigest(big, "sha256"));
        assert.equal(r.present, false);
      }
      {
        using w = repo.createObjectWriter();
        w.write(big);
        assert.equal(w.finish().present, true);
      }
      {
        using w = repo.createObjectWriter();
        w.write(enc("never finished"));
      }
      const objNames = [...Deno.readDirSync(`${path}/objects`)].map((e) => e.name).sort();
      assert.ok(objNames.every((n) => /^[0-9a-f]{2}$/.test(n)), objNames.join(","));
      assert.ok(!repo.hasObject(fsverityDigest(enc("never finished"), "sha256")));
      using _fd = repo.openObject(id);
      assert.throws(
        () => repo.openObject(fsverityDigest(enc("nope"), "sha256")),
        ObjectNotFoundError,
      );
    }
  });
});

Deno.test("storeObjectFromFile: copy, hardlink with known id, present", async () => {
  await withTmp(async (dir) => {
    using repo = await Repository.init(`${dir}/r`, { algorithm: "sha256", insecure: true });
    const data = gen(100_000, 7);
    await Deno.writeFile(`${dir}/src`, data);
    const want = fsverityDigest(data, "sha256");
    {
      using src = openPath(`${dir}/src`, C.O_RDONLY);
      const r = repo.storeObjectFromFile(src, { allowReflink: true });
      assert.deepEqual(r.id, want);
      // ext4 has no reflinks; xfs/btrfs would say "reflinked".
      assert.ok(r.method === "copied" || r.method === "reflinked", r.method);
      assert.equal(repo.storeObjectFromFile(src, {}).method, "present");
    }
    const data2 = gen(5000, 9);
    await Deno.writeFile(`${dir}/src2`, data2);
    const want2 = fsverityDigest(data2, "sha256");
    {
      using src = openPath(`${dir}/src2`, C.O_RDONLY);
      assert.throws(
        () =>
          repo.storeObjectFromFile(src, {
            allowHardlink: true,
            knownId: fsverityDigest(enc("other"), "sha256"),
          }),
        ObjectDigestMismatchError,
      );
      const r = repo.storeObjectFromFile(src, { allowHardlink: true, knownId: want2 });
      assert.equal(r.method, "hardlinked");
      assert.equal((await Deno.stat(`${dir}/src2`)).nlink, 2);
    }
  });
});

function objectBytes(repo: Repository, id: Uint8Array): Uint8Array {
  using fd = repo.openObject(id);
  return readAllAt(fd);
}

Deno.test("importTrustedObject: hardlink by name, present, missing, copy refused", async () => {
  await withTmp(async (dir) => {
    using a = await Repository.init(`${dir}/a`, { algorithm: "sha256", insecure: true });
    using b = await Repository.init(`${dir}/b`, { algorithm: "sha256", insecure: true });
    const id = a.storeObject(gen(9000, 3));
    const from = a.objectsDirFd();
    const opts = { allowReflink: true, allowHardlink: true, allowCopy: false };
    // Same filesystem, no reflinks on the test fs (ext4): a hardlink under the same name.
    const first = b.importTrustedObject(from, id, opts);
    assert.ok(first === "hardlinked" || first === "reflinked", first);
    assert.equal(b.importTrustedObject(from, id, opts), "present");
    assert.deepEqual(objectBytes(b, id), objectBytes(a, id));
    assert.throws(
      () => b.importTrustedObject(from, fsverityDigest(enc("absent"), "sha256"), opts),
      ObjectNotFoundError,
    );
    // Neither link allowed and no copy: typed refusal, nothing stored.
    const id2 = a.storeObject(gen(7000, 4));
    assert.throws(
      () => b.importTrustedObject(from, id2, { allowReflink: false, allowCopy: false }),
      CopyNotAllowedError,
    );
    assert.equal(b.hasObject(id2), false);
    assert.equal(b.importTrustedObject(from, id2, { allowReflink: false }), "copied");
    assert.deepEqual(objectBytes(b, id2), objectBytes(a, id2));
    assert.throws(() => b.importTrustedObject(from, new Uint8Array(64), opts), RangeError);
  });
});

Deno.test("streams: round trip, exact symlink targets, refs, content type", async () => {
  await withTmp(async (dir) => {
    const path = `${dir}/r`;
    using repo = await Repository.init(path, { algorithm: "sha256", insecure: true });
    const ext = gen(10_000, 3);
    const extId = repo.storeObject(ext);
    const w = new SplitstreamWriter("sha256", CONTENT_TYPE.OCI_LAYER);
    w.writeInline(enc("head"));
    w.writeExternal(extId, ext.length);
    w.writeInline(enc("tail"));
    const bytes = w.finish();
    const sid = repo.writeStream("oci-layer-sha256:abc", bytes, "a/b/mine");
    assert.deepEqual(repo.hasStream("oci-layer-sha256:abc"), sid);
    assert.equal(
      await Deno.readLink(`${path}/streams/oci-layer-sha256:abc`),
      `../objects/${objectPathOf(sid)}`,
    );
    assert.equal(
      await Deno.readLink(`${path}/streams/refs/a/b/mine`),
      "../../../oci-layer-sha256:abc",
    );
    const back = await collect(repo.catStream("refs/a/b/mine"));
    assert.deepEqual(back, new Uint8Array([...enc("head"), ...ext, ...enc("tail")]));
    const parsed = repo.readStream("oci-layer-sha256:abc", CONTENT_TYPE.OCI_LAYER);
    assert.deepEqual(parsed.objectRefs, [extId]);
    assert.throws(
      () => repo.readStream("oci-layer-sha256:abc", CONTENT_TYPE.OCI_CONFIG),
      StreamMismatchError,
    );
    assert.throws(() => repo.readStream("nope"), NotFoundError);
    repo.nameStream("oci-layer-sha256:abc", "top");
    assert.equal(await Deno.readLink(`${path}/streams/refs/top`), "../oci-layer-sha256:abc");
    assert.deepEqual(repo.listStreamRefs("").map((r) => r.name), ["a/b/mine", "top"]);
    assert.deepEqual(repo.listStreamRefs("a"), [{
      name: "a/b/mine",
      target: "../../../oci-layer-sha256:abc",
    }]);
    repo.removeStreamRef("top");
    assert.throws(() => repo.removeStreamRef("top"), NotFoundError);
    // Re-pointing a stream link is atomic and leaves no temp files.
    const w2 = new SplitstreamWriter("sha256", CONTENT_TYPE.OCI_LAYER);
    w2.writeInline(enc("other"));
    const sid2 = repo.writeStream("oci-layer-sha256:abc", w2.finish());
    assert.deepEqual(repo.hasStream("oci-layer-sha256:abc"), sid2);
    assert.deepEqual([...Deno.readDirSync(path)].map((e) => e.name).sort(), [
      "meta.json",
      "objects",
      "streams",
    ]);
    // A splitstream referencing a missing object is refused before anything is linked.
    const w3 = new SplitstreamWriter("sha256");
    w3.writeExternal(fsverityDigest(enc("absent"), "sha256"), 6);
    assert.throws(() => repo.writeStream("dangling", w3.finish()), Error);
    assert.equal(repo.hasStream("dangling"), null);
    // Names that would escape are refused.
    for (const bad of ["../x", "a/b", "", ".", "..", "refs"]) {
      assert.throws(() => repo.writeStream(bad, bytes), Error, bad);
    }
    assert.throws(() => repo.nameStream("oci-layer-sha256:abc", "../../x"), Error);
  });
});

Deno.test("streams: truncated and corrupted splitstreams are typed errors", async () => {
  await withTmp(async (dir) => {
    using repo = await Repository.init(`${dir}/r`, { algorithm: "sha256", insecure: true });
    const w = new SplitstreamWriter("sha256");
    w.writeInline(gen(3000, 1));
    const bytes = w.finish();
    for (
      const bad of [bytes.subarray(0, 20), bytes.subarray(0, bytes.length - 5), new Uint8Array(200)]
    ) {
      assert.throws(() => repo.writeStream("x", bad), StreamMismatchError);
    }
    // A corrupted stream already in the repository (written as a plain object).
    const corrupt = bytes.slice();
    corrupt[corrupt.length - 3] ^= 0xff;
    const oid = repo.storeObject(corrupt);
    await Deno.symlink(`../objects/${objectPathOf(oid)}`, `${dir}/r/streams/bad`).catch(
      async () => {
        await Deno.mkdir(`${dir}/r/streams`);
        await Deno.symlink(`../objects/${objectPathOf(oid)}`, `${dir}/r/streams/bad`);
      },
    );
    await assert.rejects(collect(repo.catStream("bad")), Error);
    const w256 = new SplitstreamWriter("sha512");
    w256.writeInline(enc("x"));
    assert.throws(() => repo.writeStream("y", w256.finish()), StreamMismatchError);
  });
});

Deno.test("images: write, named ref, lookup by hex / refs/ / bare name, list", async () => {
  await withTmp(async (dir) => {
    const path = `${dir}/r`;
    using repo = await Repository.init(path, { algorithm: "sha256", insecure: true });
    const obj = repo.storeObject(gen(9000, 5));
    const image = composefsImage([obj, obj], { a: "x" });
    const id = repo.writeImage(image, "myimg");
    const hex = toHex(id);
    assert.equal(await Deno.readLink(`${path}/images/${hex}`), `../objects/${objectPathOf(id)}`);
    assert.equal(await Deno.readLink(`${path}/images/refs/myimg`), `../${hex}`);
    assert.deepEqual(repo.imageId(hex), id);
    assert.deepEqual(repo.imageId("refs/myimg"), id);
    assert.deepEqual(repo.imageId("myimg"), id);
    assert.deepEqual(repo.listImages(), [{ name: "myimg", id }]);
    assert.deepEqual(repo.imageObjects("myimg"), [obj]);
    assert.throws(() => repo.imageId("nope"), NotFoundError);
  });
});

Deno.test("a symlinked objects/ pointing outside is refused and never written through", async () => {
  await withTmp(async (dir) => {
    const path = `${dir}/r`;
    (await Repository.init(path, { algorithm: "sha256", insecure: true })).close();
    await Deno.mkdir(`${dir}/outside`);
    await Deno.symlink(`${dir}/outside`, `${path}/objects`);
    using repo = await Repository.open(path, { write: true });
    assert.throws(() => repo.storeObject(enc("x")), UnsafeRepositoryEntryError);
    assert.throws(() => repo.createObjectWriter(), UnsafeRepositoryEntryError);
    assert.throws(
      () => repo.hasObject(fsverityDigest(enc("x"), "sha256")),
      UnsafeRepositoryEntryError,
    );
    assert.deepEqual([...Deno.readDirSync(`${dir}/outside`)], []);
    // Same for a symlinked objects/XX and streams/.
    await Deno.remove(`${path}/objects`);
    await Deno.mkdir(`${path}/objects`);
    const id = fsverityDigest(enc("y"), "sha256");
    await Deno.symlink(`${dir}/outside`, `${path}/objects/${toHex(id).slice(0, 2)}`);
    await Deno.symlink(`${dir}/outside`, `${path}/streams`);
    using repo2 = await Repository.open(path, { write: true });
    assert.throws(() => repo2.storeObject(enc("y")), UnsafeRepositoryEntryError);
    const ok = repo2.storeObject(enc("z"));
    const w = new SplitstreamWriter("sha256");
    w.writeExternal(ok, 1);
    assert.throws(() => repo2.writeStream("s", w.finish()), UnsafeRepositoryEntryError);
    assert.deepEqual([...Deno.readDirSync(`${dir}/outside`)], []);
  });
});

Deno.test("legacy repository without meta.json is upgraded (algorithm from object names)", async () => {
  await withTmp(async (dir) => {
    const path = `${dir}/r`;
    const data = enc("legacy");
    const id = fsverityDigest(data, "sha512");
    await Deno.mkdir(`${path}/objects/${toHex(id).slice(0, 2)}`, { recursive: true });
    await Deno.writeFile(`${path}/objects/${objectPathOf(id)}`, data);
    await assert.rejects(Repository.open(path), OldFormatRepositoryError);
    await assert.rejects(
      Repository.open(path, { write: true, noUpgrade: true }),
      OldFormatRepositoryError,
    );
    const { repository, upgraded } = await Repository.openDetailed(path, { write: true });
    using repo = repository;
    assert.ok(upgraded);
    assert.equal(repo.algorithm, "sha512");
    assert.ok(repo.hasObject(id));
    assert.match(await Deno.readTextFile(`${path}/meta.json`), /fsverity-sha512-12/);
    await Deno.mkdir(`${dir}/e/objects`, { recursive: true });
    await assert.rejects(Repository.open(`${dir}/e`, { write: true }), OldFormatRepositoryError);
  });
});

Deno.test("resetMetadata keeps objects and drops streams, images and meta.json", async () => {
  await withTmp(async (dir) => {
    const path = `${dir}/r`;
    let id: Uint8Array;
    {
      using repo = await Repository.init(path, { algorithm: "sha256", insecure: true });
      id = repo.storeObject(enc("keep me"));
      const w = new SplitstreamWriter("sha256");
      w.writeExternal(id, 7);
      repo.writeStream("s", w.finish(), "r");
      repo.writeImage(composefsImage([id]), "i");
      await assert.rejects(Repository.resetMetadata(path), RepositoryBusyError);
    }
    await Repository.resetMetadata(path);
    assert.deepEqual([...Deno.readDirSync(path)].map((e) => e.name), ["objects"]);
    await Repository.resetMetadata(`${dir}/does-not-exist`);
    using repo = await Repository.init(path, { algorithm: "sha256", insecure: true });
    assert.ok(repo.hasObject(id));
  });
});

Deno.test("requireVerity refuses a repository whose meta.json has no fs-verity", async () => {
  await withTmp(async (dir) => {
    (await Repository.init(`${dir}/r`, { algorithm: "sha256", insecure: true })).close();
    await assert.rejects(Repository.open(`${dir}/r`, { requireVerity: true }), VerityMissingError);
    using repo = await Repository.open(`${dir}/r`);
    assert.ok(repo.insecure);
  });
});

Deno.test("repository operations leak no file descriptors", async () => {
  await withTmp(async (dir) => {
    await assertNoFdLeak(async () => {
      using repo = await Repository.init(`${dir}/r`, { algorithm: "sha512", insecure: true });
      const id = repo.storeObject(gen(70_000, 1));
      {
        using w = repo.createObjectWriter();
        w.write(gen(10, 2));
      }
      const s = new SplitstreamWriter("sha512");
      s.writeExternal(id, 70_000);
      repo.writeStream("s", s.finish(), "a/b");
      await collect(repo.catStream("refs/a/b"));
      repo.listStreamRefs("");
      repo.writeImage(composefsImage([id]), "img");
      repo.listImages();
      repo.fsck();
      repo.gc({ dryRun: true });
      repo.gc();
      assert.throws(() => repo.readStream("missing"), NotFoundError);
    });
  });
});

Deno.test("modes follow composefs-rs (§1.6): in-memory objects 0666 in 0777 dirs, streamed 0644/0755", async () => {
  await withTmp(async (dir) => {
    const path = `${dir}/r`;
    const old = Deno.umask(0);
    try {
      using repo = await Repository.init(path, { algorithm: "sha256", insecure: true });
      const a = repo.storeObject(enc("in memory"));
      let b: Uint8Array;
      {
        using w = repo.createObjectWriter();
        w.write(enc("streamed"));
        b = w.finish().id;
      }
      const mode = (p: string) => Deno.statSync(`${path}/${p}`).mode! & 0o777;
      assert.equal(mode("."), 0o700);
      assert.equal(mode("objects"), 0o777);
      assert.equal(mode(`objects/${objectPathOf(a)}`), 0o666);
      assert.equal(mode(`objects/${toHex(a).slice(0, 2)}`), 0o777);
      assert.equal(mode(`objects/${objectPathOf(b)}`), 0o644);
      if (toHex(b).slice(0, 2) !== toHex(a).slice(0, 2)) {
        assert.equal(mode(`objects/${toHex(b).slice(0, 2)}`), 0o755);
      }
      assert.equal(mode("meta.json"), 0o644);
      repo.writeImage(composefsImage([]), "n");
      assert.equal(mode("images"), 0o777);
      assert.equal(mode("images/refs"), 0o755);
    } finally {
      Deno.umask(old);
    }
  });
});

Deno.test("objectsDirFd is borrowed: a caller's `using` cannot close the repository's objects/", async () => {
  await withTmp(async (dir) => {
    await assertNoFdLeak(async () => {
      using a = await Repository.init(`${dir}/a`, { algorithm: "sha256", insecure: true });
      using b = await Repository.init(`${dir}/b`, { algorithm: "sha256", insecure: true });
      const id = a.storeObject(enc("before"));
      const objects = a.objectsDirFd();
      // Scoped the way a caller would release an fd it was handed. With an owned fd this
      // closed objects/ under the repository; a borrowed one has nothing to dispose.
      assert.throws(() => {
        // @ts-expect-error: a BorrowedFd is not Disposable, so `using` does not type-check.
        using _fd = objects;
      }, TypeError);
      assert.equal("close" in objects, false);
      assert.equal(objects.closed, false);
      // Closing an owned copy leaves the repository's descriptor open.
      {
        using copy = objects.dup();
        assert.notEqual(copy.fd, objects.fd);
      }
      assert.equal(objects.closed, false);
      // The repository still works through objects/, and so does the borrowed fd.
      assert.ok(a.hasObject(id));
      const id2 = a.storeObject(enc("after"));
      assert.deepEqual(objectBytes(a, id2), enc("after"));
      assert.equal(b.importTrustedObject(objects, id, { allowReflink: false }), "copied");
      assert.deepEqual(objectBytes(b, id), enc("before"));
      // The repository owns it: closing the repository closes it.
      a.close();
      assert.equal(objects.closed, true);
      assert.throws(() => objects.fd, TypeError);
    });
  });
});

/**
 * DESIGN 8 zero-copy paths on real filesystems (root, loop-mounted xfs with reflink=1):
 * FICLONE into an O_TMPFILE, hardlinks only for a known digest on the same filesystem,
 * a copy otherwise; no fd leaks; and read-only mounts.
 */

import assert from "node:assert/strict";
import { assertNoFdLeak, loopMount, requireCommand, run } from "./_helpers.ts";
import { CopyNotAllowedError, RepositoryReadOnlyError } from "../lib/repository/errors.ts";
import { Repository } from "../lib/repository/repository.ts";
import { fsverityDigest } from "../lib/fsverity/hasher.ts";
import { openPath } from "../ffi/fs.ts";
import * as C from "../ffi/constants.ts";
import { SplitstreamWriter } from "../lib/repository/splitstream.ts";

function gen(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = ((((i % 256) + seed) % 256) * 17) % 256;
  return out;
}

Deno.test("storeObjectFromFile reflinks on xfs, hardlinks known digests, copies across filesystems", async () => {
  await using fs = await loopMount("xfs");
  const other = await Deno.makeTempDir({ prefix: "cfs-reflink-src-" });
  try {
    await assertNoFdLeak(async () => {
      using repo = await Repository.init(`${fs.path}/repo`, {
        algorithm: "sha512",
        insecure: true,
      });
      const a = gen(3 * 1024 * 1024 + 5, 1);
      await Deno.writeFile(`${fs.path}/a`, a);
      {
        using src = openPath(`${fs.path}/a`, C.O_RDONLY);
        const r = repo.storeObjectFromFile(src, { allowReflink: true, allowHardlink: true });
        assert.equal(r.method, "reflinked");
        assert.deepEqual(r.id, fsverityDigest(a, "sha512"));
        assert.equal((await Deno.stat(`${fs.path}/a`)).nlink, 1);
        assert.equal(repo.storeObjectFromFile(src, {}).method, "present");
      }
      const b = gen(100_000, 2);
      await Deno.writeFile(`${fs.path}/b`, b);
      {
        using src = openPath(`${fs.path}/b`, C.O_RDONLY);
        // DESIGN 8 order: reflink first; a hardlink is the fallback where reflinks are off.
        const r = repo.storeObjectFromFile(src, {
          allowReflink: false,
          allowHardlink: true,
          knownId: fsverityDigest(b, "sha512"),
        });
        assert.equal(r.method, "hardlinked");
        assert.equal((await Deno.stat(`${fs.path}/b`)).nlink, 2);
      }
      const c = gen(50_000, 3);
      await Deno.writeFile(`${other}/c`, c);
      {
        using src = openPath(`${other}/c`, C.O_RDONLY);
        const r = repo.storeObjectFromFile(src, {
          allowReflink: true,
          allowHardlink: true,
          knownId: fsverityDigest(c, "sha512"),
        });
        assert.equal(r.method, "copied");
        assert.equal((await Deno.stat(`${other}/c`)).nlink, 1);
      }
      {
        // Another filesystem, copying forbidden: nothing is possible, and nothing is stored.
        const d = gen(10, 4);
        await Deno.writeFile(`${other}/d`, d);
        using src = openPath(`${other}/d`, C.O_RDONLY);
        assert.throws(
          () => repo.storeObjectFromFile(src, { allowReflink: true, allowCopy: false }),
          CopyNotAllowedError,
        );
        assert.ok(!repo.hasObject(fsverityDigest(d, "sha512")));
      }
      const w = new SplitstreamWriter("sha512");
      w.writeExternal(fsverityDigest(a, "sha512"), a.length);
      repo.writeStream("s", w.finish(), "r");
      const report = repo.fsck();
      assert.deepEqual(report.errors, []);
      assert.equal(repo.gc().objectsRemoved, 2);
    });
  } finally {
    await Deno.remove(other, { recursive: true });
  }
});

Deno.test("a writable open of a repository on a read-only mount is refused up front", async () => {
  await using fs = await loopMount("ext4", 64);
  (await Repository.init(`${fs.path}/repo`, { algorithm: "sha256", insecure: true })).close();
  const mount = requireCommand("mount");
  await run(mount, ["-o", "remount,ro", fs.path]);
  try {
    await assert.rejects(
      Repository.open(`${fs.path}/repo`, { write: true }),
      (e) => e instanceof RepositoryReadOnlyError && /read-only/.test(e.message),
    );
    using repo = await Repository.open(`${fs.path}/repo`);
    assert.ok(repo.fsck().ok);
  } finally {
    await run(mount, ["-o", "remount,rw", fs.path]);
  }
});

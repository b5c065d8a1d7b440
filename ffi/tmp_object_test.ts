import assert from "node:assert/strict";
import { fstat, fsync, openDir, readAllAt, write, writeAll } from "./fs.ts";
import { ERRNO, ErrnoError, type ErrnoName } from "./errno.ts";
import { tmpfileUnsupported, TmpObject } from "./tmp_object.ts";
import * as C from "./constants.ts";
import { assertNoFdLeak, errnoOf, pattern, tempDir } from "../tests/_helpers.ts";

const enc = new TextEncoder();

for (const forceNamed of [false, true]) {
  const label = forceNamed ? "named tmp + rename" : "O_TMPFILE + linkat";
  Deno.test(`tmp_object: ${label} materialises atomically, EEXIST on a second link`, async () => {
    await using dir = await tempDir();
    await assertNoFdLeak(() => {
      using d = openDir(dir.path);
      const body = pattern(256 * 1024, 1);
      {
        using obj = TmpObject.create(d, { forceNamed, prefix: ".tmp-object-" });
        assert.equal(obj.method, forceNamed ? "named" : "tmpfile");
        writeAll(obj.fd, body);
        fsync(obj.fd);
        // Not visible under its final name (O_TMPFILE: not visible at all) before link.
        const names = [...Deno.readDirSync(dir.path)].map((e) => e.name);
        assert.ok(!names.includes("obj"));
        if (!forceNamed) assert.deepEqual(names, []);
        else assert.match(names.join(), /^\.tmp-object-[A-Za-z0-9]{12}$/);
        obj.link("obj");
        assert.deepEqual(Deno.readFileSync(`${dir.path}/obj`), body);
        // Linking the same object again under the same name: EEXIST.
        assert.equal(errnoOf(() => obj.link("obj")), "EEXIST");
      }
      {
        // A second writer of the same name sees EEXIST and the first content is untouched.
        using other = TmpObject.create(d, { forceNamed });
        writeAll(other.fd, enc.encode("different"));
        assert.equal(errnoOf(() => other.link("obj")), "EEXIST");
      }
      assert.deepEqual(Deno.readFileSync(`${dir.path}/obj`), body);
      {
        // Dropped without linking: nothing remains.
        using dropped = TmpObject.create(d, { forceNamed });
        writeAll(dropped.fd, enc.encode("gone"));
      }
      assert.deepEqual([...Deno.readDirSync(dir.path)].map((e) => e.name), ["obj"]);
    });
  });

  Deno.test(`tmp_object: ${label} reopens read-only and links into another directory`, async () => {
    await using dir = await tempDir();
    await Deno.mkdir(`${dir.path}/sub`);
    await assertNoFdLeak(() => {
      using d = openDir(dir.path);
      using sub = openDir(`${dir.path}/sub`);
      using obj = TmpObject.create(d, { forceNamed });
      const rw = obj.fd;
      writeAll(rw, enc.encode("content"));
      const ro = obj.reopenReadOnly();
      // The writable descriptor is gone (fs-verity needs that); the new one cannot write.
      assert.equal(rw.closed, true);
      assert.equal(fstat(ro).mode & C.S_IFMT, C.S_IFREG);
      assert.equal(errnoOf(() => write(ro, enc.encode("x"))), "EBADF");
      assert.deepEqual(readAllAt(ro), enc.encode("content"));
      obj.link("a", sub);
      obj.link("b", sub); // a further name is a hard link of the same inode
      assert.equal(Deno.readTextFileSync(`${dir.path}/sub/a`), "content");
      assert.equal(Deno.statSync(`${dir.path}/sub/b`).nlink, 2);
      // Nothing left behind in the directory the file was created in.
      assert.deepEqual([...Deno.readDirSync(dir.path)].map((e) => e.name), ["sub"]);
    });
  });
}

Deno.test("tmp_object: only EOPNOTSUPP and EISDIR mean 'no O_TMPFILE here'", () => {
  const err = (name: ErrnoName) => new ErrnoError("openat2", ERRNO[name], ".");
  for (const name of ["EOPNOTSUPP", "EISDIR"] as const) assert.ok(tmpfileUnsupported(err(name)));
  for (
    const name of ["EINVAL", "ENOENT", "ENOSYS", "EACCES", "EPERM", "EROFS", "ENOSPC"] as const
  ) {
    assert.ok(!tmpfileUnsupported(err(name)), name);
  }
  assert.ok(!tmpfileUnsupported(new Error("EOPNOTSUPP")));
});

Deno.test("tmp_object: a real error is not mistaken for 'unsupported' (no fallback is tried)", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(`${dir.path}/gone`);
  using d = openDir(`${dir.path}/gone`);
  await Deno.remove(`${dir.path}/gone`);
  // O_TMPFILE in a removed directory fails (EPERM here, for an unlinked parent); that error
  // must surface as O_TMPFILE's own (path "."), not be retried as a named `.tmp-…` file.
  let e: unknown;
  try {
    TmpObject.create(d)[Symbol.dispose]();
  } catch (err) {
    e = err;
  }
  assert.ok(e instanceof ErrnoError, String(e));
  assert.equal(e.path, ".");
  assert.ok(!tmpfileUnsupported(e), e.code);
});

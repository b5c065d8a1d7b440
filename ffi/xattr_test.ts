import assert from "node:assert/strict";
import { lxattrsAt, openDir, openPath } from "./fs.ts";
import { cstr, libc } from "./libc.ts";
import * as C from "./constants.ts";

Deno.test("lxattrsAt reads an entry's xattrs without following symlinks", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lxattr-" });
  try {
    await Deno.writeTextFile(`${dir}/f`, "x");
    await Deno.symlink("f", `${dir}/link`);
    {
      using fd = openPath(`${dir}/f`, C.O_RDONLY);
      const v = new TextEncoder().encode("bar");
      const rc = libc().fsetxattr(fd.fd, cstr("user.foo"), v, BigInt(v.length), 0);
      assert.equal(rc, 0, "fsetxattr user.foo (tmpfs/ext4 with user xattrs)");
    }
    using d = openDir(dir);
    assert.deepEqual(lxattrsAt(d, "f"), new Map([["user.foo", new TextEncoder().encode("bar")]]));
    // The symlink itself has no xattrs; following it would have found user.foo.
    assert.deepEqual(lxattrsAt(d, "link"), new Map());
    assert.throws(() => lxattrsAt(d, "a/b"), { name: "ErrnoError" });
    assert.throws(() => lxattrsAt(d, "missing"), { name: "ErrnoError" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

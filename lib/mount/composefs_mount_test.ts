import assert from "node:assert/strict";
import * as C from "../../ffi/constants.ts";
import { openPath } from "../../ffi/fs.ts";
import { openFdCount } from "../../ffi/owned_fd.ts";
import { erofsMount, KernelFeatureError, mountComposefs, MountError } from "./composefs_mount.ts";

Deno.test("composefs mount: bad images and bad options fail with nothing mounted", async () => {
  assert.equal(Deno.uid(), 0, "Mounting needs root: run this test as root");
  const before = openFdCount();
  const dir = await Deno.makeTempDir({ prefix: "cfs-mount-" });
  try {
    await Deno.writeFile(`${dir}/junk.img`, new Uint8Array(8192).fill(0x5a));
    await Deno.mkdir(`${dir}/mnt`);
    {
      using img = openPath(`${dir}/junk.img`, C.O_RDONLY);
      using objects = openPath(dir, C.O_RDONLY | C.O_DIRECTORY);
      assert.throws(() => erofsMount(img), (e: unknown) => {
        // Not an erofs superblock: a plain MountError carrying the kernel's EINVAL.
        assert.ok(e instanceof MountError && !(e instanceof KernelFeatureError));
        assert.equal(e.code, "EINVAL");
        return true;
      });
      assert.throws(
        () => mountComposefs(img, objects, `${dir}/mnt`, { upperdir: `${dir}/u` }),
        TypeError,
      );
      assert.throws(() => mountComposefs(img, objects, `${dir}/mnt`), MountError);
    }
    assert.equal(
      Deno.readTextFileSync("/proc/self/mountinfo").includes(` ${dir}/mnt `),
      false,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(openFdCount(), before);
});

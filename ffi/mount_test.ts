import assert from "node:assert/strict";
import { ERRNO } from "./errno.ts";
import {
  effectiveUid,
  fsconfigCreate,
  fsconfigSetFlag,
  fsconfigSetString,
  fsmount,
  fsopen,
  MountError,
  moveMount,
  umount,
} from "./mount.ts";
import { openFdCount } from "./owned_fd.ts";

Deno.test("mount FFI: tmpfs through fsopen/fsconfig/fsmount/move_mount, kernel messages", async () => {
  assert.equal(effectiveUid(), 0, "The new mount API needs root: run this test as root");
  const before = openFdCount();
  const dir = await Deno.makeTempDir({ prefix: "cfs-mount-ffi-" });
  try {
    {
      using fs = fsopen("tmpfs");
      fsconfigSetString(fs, "size", "1m");
      fsconfigSetFlag(fs, "noswap");
      fsconfigCreate(fs);
      using mnt = fsmount(fs);
      moveMount(mnt, dir);
    }
    await Deno.writeTextFile(`${dir}/f`, "x");
    assert.ok(Deno.readTextFileSync("/proc/self/mountinfo").includes(` ${dir} `));
    umount(dir);
    assert.deepEqual([...Deno.readDirSync(dir)], [], "the tmpfs content went with the unmount");
    // Errors carry errno and what the kernel logged to the context.
    assert.throws(() => fsopen("no-such-filesystem"), (e: unknown) => {
      assert.ok(e instanceof MountError);
      assert.equal(e.errno, ERRNO.ENODEV);
      assert.equal(e.syscall, "fsopen");
      return true;
    });
    using ov = fsopen("overlay");
    assert.throws(() => fsconfigSetString(ov, "no_such_option", "1"), (e: unknown) => {
      assert.ok(e instanceof MountError);
      assert.equal(e.errno, ERRNO.EINVAL);
      assert.ok(e.kernelMessages.some((m) => m.includes("no_such_option")), e.message);
      return true;
    });
    assert.throws(
      () => umount(dir),
      (e: unknown) => e instanceof MountError && e.errno === ERRNO.EINVAL,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(openFdCount(), before);
});

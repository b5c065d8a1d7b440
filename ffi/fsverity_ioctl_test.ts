import assert from "node:assert/strict";
import {
  enableVerity,
  encodeEnableArg,
  FS_IOC_ENABLE_VERITY,
  FS_IOC_MEASURE_VERITY,
  measureVerity,
} from "./fsverity_ioctl.ts";
import { openPath, pipe } from "./fs.ts";
import { ErrnoError } from "./errno.ts";
import { OwnedFd } from "./owned_fd.ts";
import * as C from "./constants.ts";

Deno.test("fsverity ioctl numbers and enable arg layout match linux/fsverity.h", () => {
  assert.equal(FS_IOC_ENABLE_VERITY, 0x40806685n);
  assert.equal(FS_IOC_MEASURE_VERITY, 0xc0046686n);
  const a = encodeEnableArg(2);
  assert.equal(a.length, 128);
  const dv = new DataView(a.buffer);
  assert.equal(dv.getUint32(0, true), 1);
  assert.equal(dv.getUint32(4, true), 2);
  assert.equal(dv.getUint32(8, true), 4096);
  assert.ok(a.subarray(12).every((b) => b === 0));
});

Deno.test("fsverity ioctls on a filesystem without verity report unsupported/missing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const p = `${dir}/f`;
    await Deno.writeFile(p, new TextEncoder().encode("hello world"));
    using fd = openPath(p, C.O_RDONLY);
    const en = enableVerity(fd, 1);
    // This kernel/filesystem has no fs-verity; where it does, enabling must succeed.
    assert.ok(en === "unsupported" || en === "enabled", en);
    const m = measureVerity(fd, 1);
    if (en === "unsupported") assert.ok(m.kind === "unsupported" || m.kind === "missing", m.kind);
    else assert.equal(m.kind, "measured");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fsverity ioctls: ENOTTY on a pipe is unsupported, EBADF throws ErrnoError", () => {
  const { read, write } = pipe();
  using _w = write;
  using r = read;
  assert.equal(enableVerity(r, 1), "unsupported");
  assert.equal(measureVerity(r, 2).kind, "unsupported");
  // A descriptor number that is not open: the kernel says EBADF, which must surface as a typed error.
  const bogus = new OwnedFd(999_999);
  try {
    assert.throws(() => enableVerity(bogus, 1), (e) => e instanceof ErrnoError && e.is("EBADF"));
    assert.throws(() => measureVerity(bogus, 1), (e) => e instanceof ErrnoError && e.is("EBADF"));
  } finally {
    bogus.release();
  }
});

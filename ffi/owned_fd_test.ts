import assert from "node:assert/strict";
import { BorrowedFd, openFdCount, OwnedFd } from "./owned_fd.ts";
import { ERRNO, ErrnoError, errnoName } from "./errno.ts";
import { fstat, openBeneath, openDir, pipe, read, write } from "./fs.ts";
import { libc } from "./libc.ts";
import * as C from "./constants.ts";

Deno.test("owned_fd: close is idempotent, dispose closes, the fd getter refuses a closed fd", () => {
  const before = openFdCount();
  const p = pipe();
  assert.equal(openFdCount(), before + 2);
  p.read.close();
  p.read.close();
  assert.equal(p.read.closed, true);
  assert.throws(() => p.read.fd, TypeError);
  {
    using _w = p.write;
  }
  assert.equal(p.write.closed, true);
  assert.equal(openFdCount(), before);
  assert.throws(() => new OwnedFd(-1), RangeError);
});

Deno.test("owned_fd: dup is an independent close-on-exec fd on the same file", () => {
  const before = openFdCount();
  const p = pipe();
  using w = p.write;
  const r = p.read;
  const d = r.dup();
  assert.notEqual(d.fd, r.fd);
  assert.equal(libc().fcntl(d.fd, C.F_GETFD, 0n) & C.FD_CLOEXEC, C.FD_CLOEXEC);
  assert.equal(fstat(d).ino, fstat(r).ino);
  r.close();
  write(w, new Uint8Array([5]));
  const one = new Uint8Array(1);
  assert.equal(read(d, one), 1);
  assert.equal(one[0], 5);
  d.close();
  w.close();
  assert.equal(openFdCount(), before);
});

Deno.test("owned_fd: release hands the number over without closing it", () => {
  const p = pipe();
  using w = p.write;
  const raw = p.read.release();
  assert.equal(p.read.closed, true);
  assert.ok(libc().fcntl(raw, C.F_GETFD, 0n) >= 0, "released fd must stay open");
  using again = new OwnedFd(raw);
  write(w, new Uint8Array([1]));
  assert.equal(read(again, new Uint8Array(1)), 1);
});

Deno.test("owned_fd: a list of fds in a DisposableStack is closed together, in reverse", () => {
  const before = openFdCount();
  const fds: OwnedFd[] = [];
  {
    using stack = new DisposableStack();
    for (let i = 0; i < 10; i++) {
      const p = pipe();
      fds.push(stack.use(p.read), stack.use(p.write));
    }
    assert.equal(openFdCount(), before + 20);
  }
  assert.ok(fds.every((f) => f.closed));
  assert.equal(openFdCount(), before);
  // move() transfers ownership out of a stack that would otherwise close on error.
  let kept: DisposableStack;
  {
    using stack = new DisposableStack();
    const p = pipe();
    stack.use(p.read);
    stack.use(p.write);
    kept = stack.move();
  }
  assert.equal(openFdCount(), before + 2);
  kept.dispose();
  assert.equal(openFdCount(), before);
});

Deno.test("errno: failures carry syscall, path, errno number and name", async () => {
  const dir = await Deno.makeTempDir();
  try {
    using d = openDir(dir);
    const err = (() => {
      try {
        openBeneath(d, "missing");
      } catch (e) {
        return e;
      }
    })();
    assert.ok(err instanceof ErrnoError);
    assert.equal(err.name, "ErrnoError");
    assert.equal(err.errno, ERRNO.ENOENT);
    assert.equal(err.code, "ENOENT");
    assert.equal(err.syscall, "openat2");
    assert.equal(err.path, "missing");
    assert.ok(err.is("ENOENT"));
    assert.ok(!err.is("EEXIST"));
    assert.match(err.message, /^openat2 "missing" failed: ENOENT \(no such file or directory\)$/);
    assert.equal(errnoName(9999), "E9999");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("owned_fd: a borrowed fd can be used and duplicated, never closed, and sees its owner's close", () => {
  const before = openFdCount();
  const p = pipe();
  using w = p.write;
  const lent: BorrowedFd = p.read.borrow();
  assert.equal(p.read.borrow(), lent, "one borrow per owner");
  assert.equal(lent.fd, p.read.fd);
  // Functions that only use a descriptor take a BorrowedFd; an OwnedFd is one.
  write(w, new Uint8Array([7]));
  const one = new Uint8Array(1);
  assert.equal(read(lent, one), 1);
  assert.equal(one[0], 7);
  // Nothing on a BorrowedFd closes it: no close(), no dispose, no release().
  assert.equal("close" in lent, false);
  assert.equal(Symbol.dispose in lent, false);
  assert.equal("release" in lent, false);
  assert.throws(() => {
    // @ts-expect-error: not Disposable, so `using` does not type-check.
    using _ = lent;
  }, TypeError);
  assert.equal(lent.closed, false);
  // A dup is owned by whoever asked for it.
  const d = lent.dup();
  assert.ok(d instanceof OwnedFd);
  d.close();
  assert.equal(lent.closed, false);
  p.read.close();
  assert.equal(lent.closed, true);
  assert.throws(() => lent.fd, TypeError);
  assert.equal(openFdCount(), before + 1);
  assert.throws(() => new BorrowedFd(undefined as unknown as OwnedFd), TypeError);
});

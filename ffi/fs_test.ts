import assert from "node:assert/strict";
import {
  copyFileRange,
  ficlone,
  flock,
  FS_MAGIC,
  fstat,
  fstatfs,
  fsync,
  linkAt,
  linkFd,
  lstatAt,
  ofdLock,
  openBeneath,
  openDir,
  openPath,
  pipe,
  read,
  readAllAt,
  symlinkAt,
  syncfs,
  writeAll,
} from "./fs.ts";
import type { ErrnoName } from "./errno.ts";
import { libc } from "./libc.ts";
import { TmpObject } from "./tmp_object.ts";
import type { OwnedFd } from "./owned_fd.ts";
import * as C from "./constants.ts";
import {
  assertNoFdLeak,
  errnoOf,
  loopMount,
  pattern,
  requireCommand,
  run,
  tempDir,
} from "../tests/_helpers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * data/ with sub/hello.txt, sub/link.txt -> hello.txt, abs_link -> <outside>/secret.txt,
 * realdir/f.txt, dirlink -> realdir; secret.txt sits next to data/.
 */
async function attackTree(root: string): Promise<void> {
  await Deno.mkdir(`${root}/data/sub`, { recursive: true });
  await Deno.mkdir(`${root}/data/realdir`);
  await Deno.writeTextFile(`${root}/data/sub/hello.txt`, "hello beneath\n");
  await Deno.writeTextFile(`${root}/data/realdir/f.txt`, "f\n");
  await Deno.writeTextFile(`${root}/secret.txt`, "secret\n");
  await Deno.symlink("hello.txt", `${root}/data/sub/link.txt`);
  await Deno.symlink(`${root}/secret.txt`, `${root}/data/abs_link`);
  await Deno.symlink("realdir", `${root}/data/dirlink`);
  await Deno.symlink("/proc/self/fd/0", `${root}/data/to_magic`);
}

for (const forceFallback of [false, true]) {
  const label = forceFallback ? "forced fallback walk" : "openat2";
  Deno.test(`fs: openBeneath (${label}) refuses .., absolute paths, symlinks and magic links`, async () => {
    await using dir = await tempDir();
    await attackTree(dir.path);
    await assertNoFdLeak(() => {
      using data = openDir(`${dir.path}/data`);
      const open = (p: string) => () => openBeneath(data, p, { forceFallback });
      {
        using f = openBeneath(data, "sub/hello.txt", { forceFallback });
        assert.equal(dec.decode(readAllAt(f)), "hello beneath\n");
      }
      const cases: Array<[string, ErrnoName | "OK"]> = [
        ["sub/hello.txt", "OK"],
        ["../secret.txt", "EXDEV"],
        ["sub/../../secret.txt", "EXDEV"],
        [`${dir.path}/secret.txt`, "EXDEV"],
        ["/etc/hostname", "EXDEV"],
        ["/proc/self/fd/0", "EXDEV"],
        ["sub/link.txt", "ELOOP"],
        ["abs_link", "ELOOP"],
        ["dirlink/f.txt", "ELOOP"],
        ["to_magic", "ELOOP"],
        ["sub/nonexistent", "ENOENT"],
        ["sub/hello.txt/x", "ENOTDIR"],
      ];
      for (const [path, want] of cases) assert.equal(errnoOf(open(path)), want, `"${path}"`);

      // Magic links reached beneath a /proc/self dirfd: fd/N, cwd/..., root/...
      using procSelf = openDir("/proc/self");
      using target = openPath(`${dir.path}/secret.txt`);
      const magic = (p: string) => () => openBeneath(procSelf, p, { forceFallback });
      assert.equal(errnoOf(magic(`fd/${target.fd}`)), "ELOOP");
      assert.equal(errnoOf(magic("cwd/etc/hostname")), "ELOOP");
      assert.equal(errnoOf(magic("root/etc/hostname")), "ELOOP");
      // A plain file beneath /proc/self is fine: the refusal is about links, not the dir.
      {
        using st = openBeneath(procSelf, "status", { forceFallback });
        assert.match(dec.decode(readAllAt(st)), /^Name:/);
      }

      // O_CREAT|O_EXCL beneath works once, then EEXIST.
      const create = () =>
        openBeneath(data, "sub/new.txt", {
          flags: C.O_WRONLY | C.O_CREAT | C.O_EXCL,
          mode: 0o600,
          forceFallback,
        });
      assert.equal(errnoOf(create), "OK");
      assert.equal(errnoOf(create), "EEXIST");
    });
  });
}

/** Free blocks of the filesystem holding `fd`, after flushing delayed allocations. */
function freeBytes(fd: OwnedFd): number {
  syncfs(fd);
  const s = fstatfs(fd);
  return s.bfree * s.bsize;
}

function createFile(dir: OwnedFd, name: string, body: Uint8Array<ArrayBuffer>): void {
  using f = openBeneath(dir, name, {
    flags: C.O_WRONLY | C.O_CREAT | C.O_EXCL,
    mode: 0o644,
  });
  writeAll(f, body);
  fsync(f);
}

Deno.test("fs: FICLONE reflinks on loop xfs, EOPNOTSUPP on loop ext4, EXDEV across filesystems", async () => {
  await using xfs = await loopMount("xfs");
  await using ext4 = await loopMount("ext4");
  await assertNoFdLeak(async () => {
    using x = openDir(xfs.path);
    using e = openDir(ext4.path);
    assert.equal(fstatfs(x).type, FS_MAGIC.XFS);
    assert.equal(fstatfs(e).type, FS_MAGIC.EXT4);
    const size = 32 * 1024 * 1024;
    const body = pattern(size, 9);
    createFile(x, "src", body);
    createFile(e, "src", body);

    // xfs: clone into an O_TMPFILE, then link it: an atomic reflinked object.
    const before = freeBytes(x);
    {
      using src = openBeneath(x, "src");
      using obj = TmpObject.create(x);
      ficlone(obj.fd, src);
      obj.link("clone");
    }
    const used = before - freeBytes(x);
    assert.ok(used < 4 * 1024 * 1024, `the clone used ${used} bytes: extents were not shared`);
    {
      using clone = openBeneath(x, "clone");
      assert.equal(fstat(clone).size, size);
      assert.deepEqual(readAllAt(clone), body);
    }
    const frag = await run(requireCommand("filefrag"), ["-v", `${xfs.path}/clone`]);
    assert.match(frag.stdout, /shared/);

    // copy_file_range within xfs (reflinks too) and within ext4 (copies).
    for (const d of [x, e]) {
      using src = openBeneath(d, "src");
      using dst = openBeneath(d, "cfr", { flags: C.O_WRONLY | C.O_CREAT | C.O_EXCL, mode: 0o644 });
      let total = 0;
      for (let n; (n = copyFileRange(src, dst, size)) > 0;) total += n;
      assert.equal(total, size);
      using again = openBeneath(d, "cfr");
      assert.deepEqual(readAllAt(again), body);
    }

    // ext4 cannot reflink.
    {
      using src = openBeneath(e, "src");
      using dst = openBeneath(e, "dst", { flags: C.O_WRONLY | C.O_CREAT, mode: 0o644 });
      assert.equal(errnoOf(() => ficlone(dst, src)), "EOPNOTSUPP");
    }
    // xfs → ext4: FICLONE, copy_file_range, hardlink and rename all say EXDEV, cleanly.
    {
      using src = openBeneath(x, "src");
      using dst = openBeneath(e, "cross", { flags: C.O_WRONLY | C.O_CREAT, mode: 0o644 });
      assert.equal(errnoOf(() => ficlone(dst, src)), "EXDEV");
      assert.equal(errnoOf(() => copyFileRange(src, dst, size)), "EXDEV");
      assert.equal(errnoOf(() => linkAt(x, "src", e, "hard")), "EXDEV");
      assert.equal(fstat(dst).size, 0);
    }
    // Hardlink within xfs.
    linkAt(x, "src", x, "hard");
    assert.equal(lstatAt(x, "src").nlink, 2);
    // An O_PATH source cannot be cloned (EBADF), nor into a read-only destination.
    {
      using srcPath = openBeneath(x, "src", { flags: C.O_PATH });
      using dst = openBeneath(x, "dst2", { flags: C.O_WRONLY | C.O_CREAT, mode: 0o644 });
      assert.equal(errnoOf(() => ficlone(dst, srcPath)), "EBADF");
      using src = openBeneath(x, "src");
      using ro = openBeneath(x, "dst2");
      assert.equal(errnoOf(() => ficlone(ro, src)), "EBADF");
    }
  });
});

Deno.test("fs: flock and OFD locks conflict between open file descriptions", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/lock`, "");
  await assertNoFdLeak(() => {
    using a = openPath(`${dir.path}/lock`, C.O_RDWR);
    using b = openPath(`${dir.path}/lock`, C.O_RDWR);
    assert.equal(flock(a, "exclusive", true), true);
    assert.equal(flock(b, "exclusive", true), false);
    assert.equal(flock(b, "shared", true), false);
    flock(a, "unlock");
    assert.equal(flock(b, "shared", true), true);
    assert.equal(flock(a, "shared", true), true);
    assert.equal(flock(a, "exclusive", true), false);
    flock(a, "unlock");
    flock(b, "unlock");

    assert.equal(ofdLock(a, "write", false), true);
    assert.equal(ofdLock(b, "read", false), false);
    // A dup shares the open file description, hence the lock.
    using a2 = a.dup();
    assert.equal(ofdLock(a2, "write", false), true);
    ofdLock(a, "unlock");
    assert.equal(ofdLock(b, "read", false), true);
    assert.equal(ofdLock(a, "read", false), true);
    assert.equal(ofdLock(a, "write", false), false);
  });
});

Deno.test("fs: pipe2 with F_SETPIPE_SZ 1 MiB, close-on-exec by default", async () => {
  await assertNoFdLeak(() => {
    const p = pipe({ size: 1024 * 1024 });
    using r = p.read;
    using w = p.write;
    assert.equal(libc().fcntl(w.fd, C.F_GETPIPE_SZ, 0n), 1024 * 1024);
    assert.equal(libc().fcntl(r.fd, C.F_GETFD, 0n) & C.FD_CLOEXEC, C.FD_CLOEXEC);
    assert.equal(fstat(r).mode & C.S_IFMT, C.S_IFIFO);
    const big = pattern(1024 * 1024, 4);
    writeAll(w, big); // fits entirely: would block with the default 64 KiB pipe
    const out = new Uint8Array(big.length);
    let off = 0;
    while (off < out.length) off += read(r, out.subarray(off));
    assert.deepEqual(out, big);
  });
});

Deno.test("fs: fstat, fsync and syncfs on a regular file; symlinkAt is not followed", async () => {
  await using dir = await tempDir();
  await assertNoFdLeak(() => {
    using d = openDir(dir.path);
    createFile(d, "f", enc.encode("12345"));
    using f = openBeneath(d, "f");
    const st = fstat(f);
    assert.equal(st.size, 5);
    assert.equal(st.mode & C.S_IFMT, C.S_IFREG);
    assert.equal(st.mode & 0o777, 0o644);
    fsync(f);
    syncfs(d);
    symlinkAt("f", d, "l");
    assert.equal(lstatAt(d, "l").mode & C.S_IFMT, C.S_IFLNK);
    assert.equal(errnoOf(() => openBeneath(d, "l")), "ELOOP");
  });
});

Deno.test("fs: FICLONE into an O_TMPFILE on loop btrfs; btrfs ↔ ext4 is EXDEV", async () => {
  await using btrfs = await loopMount("btrfs");
  await using ext4 = await loopMount("ext4");
  await assertNoFdLeak(() => {
    using b = openDir(btrfs.path);
    using e = openDir(ext4.path);
    assert.equal(fstatfs(b).type, FS_MAGIC.BTRFS);
    const body = pattern(4 * 1024 * 1024 + 17, 5);
    createFile(b, "src", body);
    {
      using src = openBeneath(b, "src");
      using obj = TmpObject.create(b);
      ficlone(obj.fd, src);
      obj.link("clone");
      assert.equal(errnoOf(() => obj.link("clone")), "EEXIST");
    }
    {
      using clone = openBeneath(b, "clone");
      assert.deepEqual(readAllAt(clone), body);
    }
    using src = openBeneath(b, "src");
    using dst = openBeneath(e, "x", { flags: C.O_WRONLY | C.O_CREAT, mode: 0o644 });
    assert.equal(errnoOf(() => ficlone(dst, src)), "EXDEV");
    // An O_TMPFILE cannot be linked into another filesystem either.
    using tmp = TmpObject.create(b);
    assert.equal(errnoOf(() => linkFd(tmp.fd, e, "elsewhere")), "EXDEV");
  });
});

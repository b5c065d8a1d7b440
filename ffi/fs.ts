/**
 * Filesystem calls relative to directory fds: openat2 beneath (with a per-component
 * fallback), O_TMPFILE + linkat, FICLONE, copy_file_range, hardlinks, fstat, sync, locks.
 *
 * @module
 */

import { cbytes, cstr, errno, libc } from "./libc.ts";
import { check, checkBig, ERRNO, ErrnoError } from "./errno.ts";
import { type BorrowedFd, OwnedFd } from "./owned_fd.ts";
import * as C from "./constants.ts";

/** Resolve flags that keep a lookup strictly beneath its directory fd (DESIGN 7). */
export const RESOLVE_STRICT = C.RESOLVE_BENEATH | C.RESOLVE_NO_SYMLINKS |
  C.RESOLVE_NO_MAGICLINKS;

/** Reported by {@link openBeneath} and friends when a path is refused before any syscall. */
export class UnsafePathError extends Error {
  override name = "UnsafePathError";
  /** The offending path. */
  readonly path: string;
  /** Why it was refused. */
  readonly reason: string;
  constructor(path: string, reason: string) {
    super(`Refusing path "${path}": ${reason}`);
    this.path = path;
    this.reason = reason;
  }
}

/** A path argument: a string (UTF-8) or raw bytes (names that are not UTF-8). */
export type PathArg = string | Uint8Array;

/** Longest path copied into a reusable scratch buffer (PATH_MAX); longer ones get their own. */
const PATH_SCRATCH_LEN = 4096;
/**
 * Two reusable NUL-terminated path buffers (calls with two paths use both). A fresh typed
 * array passed to FFI costs several microseconds to externalize, more than a stat syscall;
 * reuse is safe because every call here is synchronous.
 */
const PATH_SCRATCH = [new Uint8Array(PATH_SCRATCH_LEN + 1), new Uint8Array(PATH_SCRATCH_LEN + 1)];
const pathEncoder = new TextEncoder();

function pathBuf(p: PathArg, slot: 0 | 1 = 0): Uint8Array<ArrayBuffer> {
  const buf = PATH_SCRATCH[slot];
  if (typeof p === "string") {
    if (p.length <= PATH_SCRATCH_LEN) {
      const r = pathEncoder.encodeInto(p, buf.subarray(0, PATH_SCRATCH_LEN));
      if (r.read === p.length) {
        buf[r.written] = 0;
        return buf;
      }
    }
    return cstr(p);
  }
  if (p.length <= PATH_SCRATCH_LEN) {
    buf.set(p);
    buf[p.length] = 0;
    return buf;
  }
  return cbytes(p);
}

function pathStr(p: PathArg): string {
  return typeof p === "string" ? p : new TextDecoder().decode(p);
}

let openat2Supported: boolean | undefined;
/** Number of EAGAIN retries of openat2 (a racing rename of `..`): the kernel asks us to retry. */
const OPENAT2_EAGAIN_RETRIES = 32;

/** The `open_how` struct (24 bytes): u64 flags @0, u64 mode @8, u64 resolve @16. */
export function encodeOpenHow(
  flags: number,
  mode: number,
  resolve: number,
): Uint8Array<ArrayBuffer> {
  return fillOpenHow(new Uint8Array(24), flags, mode, resolve);
}

function fillOpenHow(
  how: Uint8Array<ArrayBuffer>,
  flags: number,
  mode: number,
  resolve: number,
): Uint8Array<ArrayBuffer> {
  const dv = new DataView(how.buffer, how.byteOffset, 24);
  dv.setBigUint64(0, BigInt(flags >>> 0), true);
  dv.setBigUint64(8, BigInt(mode), true);
  dv.setBigUint64(16, BigInt(resolve), true);
  return how;
}

/** Reusable `open_how` for {@link openBeneath} (filled right before each synchronous call). */
const OPEN_HOW_SCRATCH = new Uint8Array(24);

/** Options for {@link openBeneath}. */
export interface OpenBeneathOptions {
  /** open(2) flags; O_CLOEXEC is always added. Default O_RDONLY. */
  flags?: number;
  /** Mode for O_CREAT / O_TMPFILE. */
  mode?: number;
  /** Resolve flags; default {@link RESOLVE_STRICT}. */
  resolve?: number;
  /** Force the per-component fallback (tests; kernels without openat2). */
  forceFallback?: boolean;
}

/**
 * Open `path` beneath `dir` with openat2(RESOLVE_BENEATH | NO_SYMLINKS | NO_MAGICLINKS).
 * `..` components, absolute paths and any symlink are refused (EXDEV / ELOOP from the kernel).
 * Falls back to a component-by-component O_NOFOLLOW walk when openat2 is unavailable.
 */
export function openBeneath(
  dir: BorrowedFd,
  path: PathArg,
  opts: OpenBeneathOptions = {},
): OwnedFd {
  const flags = (opts.flags ?? C.O_RDONLY) | C.O_CLOEXEC;
  const mode = opts.mode ?? 0;
  const resolve = opts.resolve ?? RESOLVE_STRICT;
  if (!opts.forceFallback && openat2Supported !== false) {
    const how = fillOpenHow(
      OPEN_HOW_SCRATCH,
      flags,
      (flags & C.O_CREAT) || (flags & C.O_TMPFILE) === C.O_TMPFILE ? mode : 0,
      resolve,
    );
    const p = pathBuf(path);
    for (let attempt = 0;; attempt++) {
      const rc = libc().syscall4(BigInt(C.SYS_openat2), BigInt(dir.fd), p, how, 24n);
      if (rc >= 0n) {
        openat2Supported = true;
        return new OwnedFd(Number(rc));
      }
      const e = errno();
      if (e === ERRNO.EAGAIN && attempt < OPENAT2_EAGAIN_RETRIES) continue;
      if (e === ERRNO.ENOSYS) {
        openat2Supported = false;
        break;
      }
      throw new ErrnoError("openat2", e, pathStr(path));
    }
  }
  return openFallback(dir, path, flags, mode, resolve);
}

/** Split and validate a relative path for the fallback walk (same refusals as the kernel). */
function components(path: PathArg): Uint8Array[] {
  const bytes = typeof path === "string" ? new TextEncoder().encode(path) : path;
  if (bytes.length > 0 && bytes[0] === 0x2f) {
    throw new ErrnoError("openat2", ERRNO.EXDEV, pathStr(path));
  }
  const parts: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === 0x2f) {
      const part = bytes.subarray(start, i);
      start = i + 1;
      if (part.length === 0 || (part.length === 1 && part[0] === 0x2e)) continue;
      if (part.length === 2 && part[0] === 0x2e && part[1] === 0x2e) {
        throw new ErrnoError("openat2", ERRNO.EXDEV, pathStr(path));
      }
      parts.push(part);
    }
  }
  return parts;
}

function openFallback(
  dir: BorrowedFd,
  path: PathArg,
  flags: number,
  mode: number,
  resolve: number,
): OwnedFd {
  const parts = components(path);
  const c = libc();
  const nofollow = resolve & (C.RESOLVE_NO_SYMLINKS | C.RESOLVE_NO_MAGICLINKS) ? C.O_NOFOLLOW : 0;
  if (parts.length === 0) {
    const rc = c.openat(dir.fd, cstr("."), flags, mode);
    return new OwnedFd(check(rc, "openat", pathStr(path)));
  }
  let cur = dir.dup();
  try {
    for (let i = 0; i < parts.length - 1; i++) {
      const rc = c.openat(
        cur.fd,
        cbytes(parts[i]),
        C.O_PATH | C.O_DIRECTORY | C.O_NOFOLLOW | C.O_CLOEXEC,
        0,
      );
      if (rc < 0) {
        const e = errno();
        // O_NOFOLLOW|O_DIRECTORY on a symlink says ENOTDIR; report it as the kernel's openat2
        // would (ELOOP), but keep ENOTDIR for a real non-directory in the middle of the path.
        const isLink = e === ERRNO.ENOTDIR &&
          (lstatAt(cur, parts[i]).mode & C.S_IFMT) === C.S_IFLNK;
        throw new ErrnoError("openat", isLink ? ERRNO.ELOOP : e, pathStr(path));
      }
      cur.close();
      cur = new OwnedFd(rc);
    }
    const last = cbytes(parts[parts.length - 1]);
    const rc = c.openat(cur.fd, last, flags | nofollow, mode);
    return new OwnedFd(check(rc, "openat", pathStr(path)));
  } finally {
    cur.close();
  }
}

/** Open a directory (O_DIRECTORY) beneath `dir`. */
export function openDirBeneath(
  dir: BorrowedFd,
  path: PathArg,
  opts: { path?: boolean } = {},
): OwnedFd {
  return openBeneath(dir, path, { flags: (opts.path ? C.O_PATH : C.O_RDONLY) | C.O_DIRECTORY });
}

/** Open an absolute or cwd-relative path (for roots supplied by the user: repo, layout dir). */
export function openPath(path: string, flags: number = C.O_RDONLY, mode = 0): OwnedFd {
  return new OwnedFd(
    check(libc().openat(C.AT_FDCWD, cstr(path), flags | C.O_CLOEXEC, mode), "openat", path),
  );
}

/** Open a directory by absolute/cwd-relative path. */
export function openDir(path: string): OwnedFd {
  return openPath(path, C.O_RDONLY | C.O_DIRECTORY);
}

/** Parsed subset of `struct stat` (x86_64 layout, 144 bytes). */
export interface Stat {
  dev: bigint;
  ino: bigint;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: bigint;
  size: number;
  blksize: number;
  blocks: number;
  atimeSec: number;
  atimeNsec: number;
  mtimeSec: number;
  mtimeNsec: number;
  ctimeSec: number;
  ctimeNsec: number;
}

/** sizeof(struct stat) on x86_64. */
const STAT_SIZE = 144;
/** Reusable `struct stat` buffer, decoded right after each synchronous call. */
const STAT_SCRATCH = new Uint8Array(STAT_SIZE);

/** Decode an x86_64 `struct stat`. */
export function decodeStat(b: Uint8Array): Stat {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    dev: dv.getBigUint64(0, true),
    ino: dv.getBigUint64(8, true),
    nlink: Number(dv.getBigUint64(16, true)),
    mode: dv.getUint32(24, true),
    uid: dv.getUint32(28, true),
    gid: dv.getUint32(32, true),
    rdev: dv.getBigUint64(40, true),
    size: Number(dv.getBigInt64(48, true)),
    blksize: Number(dv.getBigInt64(56, true)),
    blocks: Number(dv.getBigInt64(64, true)),
    atimeSec: Number(dv.getBigInt64(72, true)),
    atimeNsec: Number(dv.getBigInt64(80, true)),
    mtimeSec: Number(dv.getBigInt64(88, true)),
    mtimeNsec: Number(dv.getBigInt64(96, true)),
    ctimeSec: Number(dv.getBigInt64(104, true)),
    ctimeNsec: Number(dv.getBigInt64(112, true)),
  };
}

/** fstat(2). */
export function fstat(fd: BorrowedFd): Stat {
  const buf = STAT_SCRATCH;
  check(libc().fstat(fd.fd, buf), "fstat");
  return decodeStat(buf);
}

/**
 * fstatat(2) with AT_SYMLINK_NOFOLLOW beneath `dir`, or null when the name does not exist
 * (ENOENT/ENOTDIR): for presence checks on hot paths, where an exception per miss costs more
 * than the syscall.
 */
export function lstatAtIfExists(dir: BorrowedFd, path: PathArg): Stat | null {
  const buf = STAT_SCRATCH;
  if (libc().fstatat(dir.fd, pathBuf(path), buf, C.AT_SYMLINK_NOFOLLOW) < 0) {
    const e = errno();
    if (e === ERRNO.ENOENT || e === ERRNO.ENOTDIR) return null;
    throw new ErrnoError("fstatat", e, pathStr(path));
  }
  return decodeStat(buf);
}

/** fstatat(2) with AT_SYMLINK_NOFOLLOW beneath `dir` (a single name or relative path). */
export function lstatAt(dir: BorrowedFd, path: PathArg): Stat {
  const buf = STAT_SCRATCH;
  check(
    libc().fstatat(dir.fd, pathBuf(path), buf, C.AT_SYMLINK_NOFOLLOW),
    "fstatat",
    pathStr(path),
  );
  return decodeStat(buf);
}

/** Read up to `buf.length` bytes; returns 0 at EOF. Throws ErrnoError (EAGAIN on an empty O_NONBLOCK fd). */
export function read(fd: BorrowedFd, buf: Uint8Array<ArrayBuffer>): number {
  return checkBig(libc().read(fd.fd, buf, BigInt(buf.length)), "read");
}

/** pread(2). */
export function pread(fd: BorrowedFd, buf: Uint8Array<ArrayBuffer>, offset: number): number {
  return checkBig(libc().pread(fd.fd, buf, BigInt(buf.length), BigInt(offset)), "pread");
}

/** write(2) once; returns bytes written. */
export function write(fd: BorrowedFd, buf: Uint8Array<ArrayBuffer>): number {
  return checkBig(libc().write(fd.fd, buf, BigInt(buf.length)), "write");
}

/** Write all of `buf` to a blocking fd. */
export function writeAll(fd: BorrowedFd, buf: Uint8Array<ArrayBuffer>): void {
  let off = 0;
  while (off < buf.length) {
    off += write(fd, off === 0 ? buf : buf.subarray(off));
  }
}

/** Read a whole (regular) file from a blocking fd, starting at offset 0. */
export function readAllAt(fd: BorrowedFd): Uint8Array<ArrayBuffer> {
  const st = fstat(fd);
  let out = new Uint8Array(Math.max(st.size, 4096));
  let off = 0;
  for (;;) {
    if (off === out.length) {
      const bigger = new Uint8Array(out.length * 2);
      bigger.set(out);
      out = bigger;
    }
    const n = pread(fd, out.subarray(off), off);
    if (n === 0) break;
    off += n;
  }
  return out.slice(0, off);
}

/** mkdirat(2); returns false if it already existed (EEXIST) and `existOk`. */
export function mkdirAt(dir: BorrowedFd, path: PathArg, mode = 0o755, existOk = true): boolean {
  const rc = libc().mkdirat(dir.fd, pathBuf(path), mode);
  if (rc < 0) {
    const e = errno();
    if (e === ERRNO.EEXIST && existOk) return false;
    throw new ErrnoError("mkdirat", e, pathStr(path));
  }
  return true;
}

/** unlinkat(2); `dir: true` removes a directory. */
export function unlinkAt(dir: BorrowedFd, path: PathArg, opts: { dir?: boolean } = {}): void {
  check(
    libc().unlinkat(dir.fd, pathBuf(path), opts.dir ? C.AT_REMOVEDIR : 0),
    "unlinkat",
    pathStr(path),
  );
}

/** renameat2(2) (flags: RENAME_NOREPLACE etc). */
export function renameAt(
  oldDir: BorrowedFd,
  oldPath: PathArg,
  newDir: BorrowedFd,
  newPath: PathArg,
  flags = 0,
): void {
  check(
    libc().renameat2(oldDir.fd, pathBuf(oldPath), newDir.fd, pathBuf(newPath, 1), flags),
    "renameat2",
    pathStr(newPath),
  );
}

/** symlinkat(2). */
export function symlinkAt(target: PathArg, dir: BorrowedFd, path: PathArg): void {
  check(libc().symlinkat(pathBuf(target), dir.fd, pathBuf(path, 1)), "symlinkat", pathStr(path));
}

/** readlinkat(2) as raw bytes. */
export function readlinkAtBytes(dir: BorrowedFd, path: PathArg): Uint8Array {
  const buf = new Uint8Array(4096 + 1);
  const n = checkBig(
    libc().readlinkat(dir.fd, pathBuf(path), buf, BigInt(buf.length)),
    "readlinkat",
    pathStr(path),
  );
  return buf.slice(0, n);
}

/** readlinkat(2) decoded as UTF-8. */
export function readlinkAt(dir: BorrowedFd, path: PathArg): string {
  return new TextDecoder().decode(readlinkAtBytes(dir, path));
}

/** Hard-link `oldPath` beneath `oldDir` to `newPath` beneath `newDir` (no symlink following). */
export function linkAt(
  oldDir: BorrowedFd,
  oldPath: PathArg,
  newDir: BorrowedFd,
  newPath: PathArg,
): void {
  check(
    libc().linkat(oldDir.fd, pathBuf(oldPath), newDir.fd, pathBuf(newPath, 1), 0),
    "linkat",
    pathStr(newPath),
  );
}

/** Give an open file (e.g. an O_TMPFILE) a name: linkat(fd, "", dir, name, AT_EMPTY_PATH), /proc fallback. */
export function linkFd(fd: BorrowedFd, dir: BorrowedFd, name: PathArg): void {
  const c = libc();
  const nb = pathBuf(name);
  let rc = c.linkat(fd.fd, new Uint8Array(1), dir.fd, nb, C.AT_EMPTY_PATH);
  if (rc >= 0) return;
  const e = errno();
  if (e !== ERRNO.EPERM && e !== ERRNO.ENOENT && e !== ERRNO.EACCES) {
    throw new ErrnoError("linkat", e, pathStr(name));
  }
  // Kernels before 6.10 need CAP_DAC_READ_SEARCH for AT_EMPTY_PATH; the /proc form does not.
  rc = c.linkat(C.AT_FDCWD, cstr(`/proc/self/fd/${fd.fd}`), dir.fd, nb, C.AT_SYMLINK_FOLLOW);
  check(rc, "linkat", pathStr(name));
}

/** Create an unnamed O_TMPFILE in directory `dir` (subpath `path`, default "."), opened O_RDWR. */
export function openTmpfile(dir: BorrowedFd, path: PathArg = ".", mode = 0o644): OwnedFd {
  return openBeneath(dir, path, { flags: C.O_TMPFILE | C.O_RDWR, mode });
}

/** FICLONE: make `dst` share `src`'s extents. Throws ErrnoError (EOPNOTSUPP, EXDEV, EINVAL, EBADF). */
export function ficlone(dst: BorrowedFd, src: BorrowedFd): void {
  check(libc().ioctl(dst.fd, C.FICLONE, BigInt(src.fd)), "ioctl(FICLONE)");
}

/** copy_file_range(2) of up to `len` bytes using the fds' own offsets; returns bytes copied (0 at EOF). */
export function copyFileRange(src: BorrowedFd, dst: BorrowedFd, len: number): number {
  return checkBig(
    libc().copy_file_range(
      src.fd,
      null as unknown as Uint8Array<ArrayBuffer>,
      dst.fd,
      null as unknown as Uint8Array<ArrayBuffer>,
      BigInt(len),
      0,
    ),
    "copy_file_range",
  );
}

/** fsync(2). */
export function fsync(fd: BorrowedFd): void {
  check(libc().fsync(fd.fd), "fsync");
}

/** syncfs(2): flush the whole filesystem containing `fd`. */
export function syncfs(fd: BorrowedFd): void {
  check(libc().syncfs(fd.fd), "syncfs");
}

/** fchmod(2). */
export function fchmod(fd: BorrowedFd, mode: number): void {
  check(libc().fchmod(fd.fd, mode), "fchmod");
}

/** ftruncate(2). */
export function ftruncate(fd: BorrowedFd, len: number): void {
  check(libc().ftruncate(fd.fd, BigInt(len)), "ftruncate");
}

/** lseek(2). */
export function lseek(fd: BorrowedFd, offset: number, whence: 0 | 1 | 2 = 0): number {
  return checkBig(libc().lseek(fd.fd, BigInt(offset), whence), "lseek");
}

/** One directory entry from {@link readDir}. */
export interface DirEntry {
  /** Entry name as bytes (not necessarily UTF-8). */
  nameBytes: Uint8Array;
  /** Entry name decoded as UTF-8. */
  name: string;
  /** d_type (DT_DIR=4, DT_REG=8, DT_LNK=10, DT_UNKNOWN=0, ...). */
  type: number;
  /** Inode number. */
  ino: bigint;
}

/** getdents64 buffer: large enough for hundreds of entries per call. */
const DENTS_BUF = 64 * 1024;

/** List a directory fd (opened O_RDONLY|O_DIRECTORY) with getdents64; skips `.` and `..`. */
export function readDir(dir: BorrowedFd): DirEntry[] {
  using d = openBeneath(dir, ".", { flags: C.O_RDONLY | C.O_DIRECTORY });
  const buf = new Uint8Array(DENTS_BUF);
  const dv = new DataView(buf.buffer);
  const out: DirEntry[] = [];
  const dec = new TextDecoder();
  for (;;) {
    const n = checkBig(libc().getdents64(d.fd, buf, BigInt(buf.length)), "getdents64");
    if (n === 0) break;
    let off = 0;
    while (off < n) {
      const ino = dv.getBigUint64(off, true);
      const reclen = dv.getUint16(off + 16, true);
      const type = buf[off + 18];
      let end = off + 19;
      while (buf[end] !== 0) end++;
      const nameBytes = buf.slice(off + 19, end);
      off += reclen;
      if (
        (nameBytes.length === 1 && nameBytes[0] === 0x2e) ||
        (nameBytes.length === 2 && nameBytes[0] === 0x2e && nameBytes[1] === 0x2e)
      ) continue;
      out.push({ nameBytes, name: dec.decode(nameBytes), type, ino });
    }
  }
  return out;
}

/** d_type values from getdents64. */
export const DT = {
  UNKNOWN: 0,
  FIFO: 1,
  CHR: 2,
  DIR: 4,
  BLK: 6,
  REG: 8,
  LNK: 10,
  SOCK: 12,
} as const;

/** flock(2): `LOCK_SH`/`LOCK_EX`, optionally non-blocking (returns false if it would block). */
export function flock(
  fd: BorrowedFd,
  op: "shared" | "exclusive" | "unlock",
  nonblock = false,
): boolean {
  const base = op === "shared" ? C.LOCK_SH : op === "exclusive" ? C.LOCK_EX : C.LOCK_UN;
  const rc = libc().flock(fd.fd, base | (nonblock ? C.LOCK_NB : 0));
  if (rc < 0) {
    const e = errno();
    if (nonblock && e === ERRNO.EAGAIN) return false;
    throw new ErrnoError("flock", e);
  }
  return true;
}

/** `struct flock` (32 bytes): i16 type @0, i16 whence @2, i64 start @8, i64 len @16, i32 pid @24. */
export function encodeFlock(type: number, start = 0, len = 0): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(32);
  const dv = new DataView(b.buffer);
  dv.setInt16(0, type, true);
  dv.setInt16(2, 0, true);
  dv.setBigInt64(8, BigInt(start), true);
  dv.setBigInt64(16, BigInt(len), true);
  return b;
}

/** Open-file-description (OFD) byte-range lock over the whole file; returns false if it would block and `wait` is false. */
export function ofdLock(fd: BorrowedFd, kind: "read" | "write" | "unlock", wait = true): boolean {
  const type = kind === "read" ? C.F_RDLCK : kind === "write" ? C.F_WRLCK : C.F_UNLCK;
  const rc = libc().fcntl_ptr(fd.fd, wait ? C.F_OFD_SETLKW : C.F_OFD_SETLK, encodeFlock(type));
  if (rc < 0) {
    const e = errno();
    if (!wait && (e === ERRNO.EAGAIN || e === ERRNO.EACCES)) return false;
    throw new ErrnoError("fcntl(F_OFD_SETLK)", e);
  }
  return true;
}

/** pipe2(2) with O_CLOEXEC; optionally enlarge with F_SETPIPE_SZ (1 MiB is what throughput needs). */
export function pipe(
  opts: { nonblock?: boolean; size?: number } = {},
): { read: OwnedFd; write: OwnedFd } {
  const fds = new Int32Array(2);
  check(
    libc().pipe2(new Uint8Array(fds.buffer), C.O_CLOEXEC | (opts.nonblock ? C.O_NONBLOCK : 0)),
    "pipe2",
  );
  const r = new OwnedFd(fds[0]);
  const w = new OwnedFd(fds[1]);
  if (opts.size) {
    // Best effort: an unprivileged process is capped by /proc/sys/fs/pipe-max-size.
    libc().fcntl(w.fd, C.F_SETPIPE_SZ, BigInt(opts.size));
  }
  return { read: r, write: w };
}

/** Set or clear O_NONBLOCK on an fd. */
export function setNonblocking(fd: BorrowedFd, on = true): void {
  const c = libc();
  const fl = check(c.fcntl(fd.fd, C.F_GETFL, 0n), "fcntl(F_GETFL)");
  check(
    c.fcntl(fd.fd, C.F_SETFL, BigInt(on ? fl | C.O_NONBLOCK : fl & ~C.O_NONBLOCK)),
    "fcntl(F_SETFL)",
  );
}

/** Set or clear FD_CLOEXEC. */
export function setCloexec(fd: BorrowedFd, on = true): void {
  check(libc().fcntl(fd.fd, C.F_SETFD, on ? BigInt(C.FD_CLOEXEC) : 0n), "fcntl(F_SETFD)");
}

/** Get a named xattr of an open fd; null if absent (ENODATA). */
export function fgetxattr(fd: BorrowedFd, name: string): Uint8Array | null {
  const c = libc();
  const nb = cstr(name);
  const size = c.fgetxattr(fd.fd, nb, new Uint8Array(0), 0n);
  if (size < 0n) {
    const e = errno();
    if (e === ERRNO.ENODATA || e === ERRNO.EOPNOTSUPP) return null;
    throw new ErrnoError("fgetxattr", e, name);
  }
  const buf = new Uint8Array(Number(size));
  const n = checkBig(c.fgetxattr(fd.fd, nb, buf, BigInt(buf.length)), "fgetxattr", name);
  return buf.slice(0, n);
}

/** List xattr names of an open fd. */
export function flistxattr(fd: BorrowedFd): string[] {
  const c = libc();
  const size = c.flistxattr(fd.fd, new Uint8Array(0), 0n);
  if (size < 0n) {
    const e = errno();
    if (e === ERRNO.EOPNOTSUPP) return [];
    throw new ErrnoError("flistxattr", e);
  }
  if (size === 0n) return [];
  const buf = new Uint8Array(Number(size));
  const n = checkBig(c.flistxattr(fd.fd, buf, BigInt(buf.length)), "flistxattr");
  return new TextDecoder().decode(buf.subarray(0, n)).split("\0").filter((s) => s.length > 0);
}

/**
 * xattrs of the entry `name` of `dir` without following it (symlinks, devices, fifos, sockets:
 * inodes that cannot be opened for reading). Goes through `/proc/self/fd/<dir>/<name>` with
 * llistxattr/lgetxattr, as composefs-rs does; `name` must be a single path component.
 */
export function lxattrsAt(dir: BorrowedFd, name: PathArg): Map<string, Uint8Array> {
  const nb = typeof name === "string" ? new TextEncoder().encode(name) : name;
  if (nb.length === 0 || nb.includes(0x2f) || nb.includes(0)) {
    throw new ErrnoError("llistxattr", ERRNO.EINVAL, pathStr(name));
  }
  const prefix = new TextEncoder().encode(`/proc/self/fd/${dir.fd}/`);
  const path = new Uint8Array(prefix.length + nb.length + 1);
  path.set(prefix);
  path.set(nb, prefix.length);
  const c = libc();
  const out = new Map<string, Uint8Array>();
  const size = c.llistxattr(path, new Uint8Array(0), 0n);
  if (size < 0n) {
    const e = errno();
    if (e === ERRNO.EOPNOTSUPP) return out;
    throw new ErrnoError("llistxattr", e, pathStr(name));
  }
  if (size === 0n) return out;
  const list = new Uint8Array(Number(size));
  const n = checkBig(c.llistxattr(path, list, BigInt(list.length)), "llistxattr", pathStr(name));
  const names = new TextDecoder().decode(list.subarray(0, n)).split("\0").filter((x) => x);
  for (const attr of names) {
    const ab = cstr(attr);
    const vs = c.lgetxattr(path, ab, new Uint8Array(0), 0n);
    if (vs < 0n) {
      const e = errno();
      if (e === ERRNO.ENODATA) continue; // removed meanwhile
      throw new ErrnoError("lgetxattr", e, attr);
    }
    const buf = new Uint8Array(Number(vs));
    const got = checkBig(c.lgetxattr(path, ab, buf, BigInt(buf.length)), "lgetxattr", attr);
    out.set(attr, buf.slice(0, got));
  }
  return out;
}

/** Reopen an open file through `/proc/self/fd/N` with new flags (e.g. O_RDONLY after writing a tmpfile). */
export function reopenFd(fd: BorrowedFd, flags: number = C.O_RDONLY): OwnedFd {
  const p = `/proc/self/fd/${fd.fd}`;
  return new OwnedFd(
    check(libc().openat(C.AT_FDCWD, cstr(p), flags | C.O_CLOEXEC, 0), "openat", p),
  );
}

/** The path the kernel reports for an open fd (readlink of `/proc/self/fd/N`). */
export function fdPath(fd: BorrowedFd): string {
  const buf = new Uint8Array(4096 + 1);
  const p = `/proc/self/fd/${fd.fd}`;
  const n = checkBig(
    libc().readlinkat(C.AT_FDCWD, cstr(p), buf, BigInt(buf.length)),
    "readlinkat",
    p,
  );
  return new TextDecoder().decode(buf.subarray(0, n));
}

/** Filesystem magic numbers (linux/magic.h) for {@link Statfs.type}. */
export const FS_MAGIC = {
  XFS: 0x58465342,
  EXT4: 0xef53,
  BTRFS: 0x9123683e,
  TMPFS: 0x01021994,
  OVERLAYFS: 0x794c7630,
} as const;

/** Parsed subset of `struct statfs` (x86_64, 120 bytes). */
export interface Statfs {
  /** f_type: filesystem magic, see {@link FS_MAGIC}. */
  type: number;
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  namelen: number;
  /** f_flags: ST_RDONLY (1), ST_NOSUID (2), ... */
  flags: number;
}

/** sizeof(struct statfs) on x86_64. */
const STATFS_SIZE = 120;

/** Decode an x86_64 `struct statfs`. */
export function decodeStatfs(b: Uint8Array): Statfs {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = (off: number) => Number(dv.getBigInt64(off, true));
  return {
    type: n(0),
    bsize: n(8),
    blocks: n(16),
    bfree: n(24),
    bavail: n(32),
    files: n(40),
    ffree: n(48),
    namelen: n(64),
    flags: n(80),
  };
}

/** fstatfs(2). */
export function fstatfs(fd: BorrowedFd): Statfs {
  const buf = new Uint8Array(STATFS_SIZE);
  check(libc().fstatfs(fd.fd, buf), "fstatfs");
  return decodeStatfs(buf);
}

/**
 * The new mount API through `syscall(2)`: fsopen, fsconfig, fsmount, move_mount (x86_64
 * numbers; glibc 2.36 has no wrappers), plus umount2. Filesystem contexts and detached mounts
 * are {@link OwnedFd}s. A failing fsconfig reports the kernel's own messages, read from the
 * filesystem context (`e overlay: ...` lines), in {@link MountError.kernelMessages}.
 *
 * @module
 */

import * as C from "./constants.ts";
import { ERRNO, errnoName } from "./errno.ts";
import { cstr, errno, libc } from "./libc.ts";
import { type BorrowedFd, OwnedFd } from "./owned_fd.ts";

/** A mount system call failed. */
export class MountError extends Error {
  override name = "MountError";
  /** The call, e.g. `fsconfig`. */
  readonly syscall: string;
  /** errno value. */
  readonly errno: number;
  /** Symbolic errno, e.g. `EPERM`. */
  readonly code: string;
  /** What was being configured (`erofs source`, `overlay lowerdir+`...), when known. */
  readonly what: string;
  /** Messages the kernel logged to the filesystem context. */
  readonly kernelMessages: string[];
  constructor(syscall: string, code: number, what: string, kernelMessages: string[] = []) {
    const km = kernelMessages.length > 0 ? `: ${kernelMessages.join("; ")}` : "";
    super(`${syscall} (${what}) failed: ${errnoName(code)}${km}`);
    this.syscall = syscall;
    this.errno = code;
    this.code = errnoName(code);
    this.what = what;
    this.kernelMessages = kernelMessages;
  }

  /** True for EPERM (not root, or no CAP_SYS_ADMIN in the initial user namespace). */
  get notPermitted(): boolean {
    return this.errno === ERRNO.EPERM;
  }
}

function ptr(b: Uint8Array | null): bigint {
  if (b === null) return 0n;
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b as Uint8Array<ArrayBuffer>)));
}

function sys(nr: number, a: bigint[]): bigint {
  const args = [...a];
  while (args.length < 6) args.push(0n);
  return libc().syscall6(
    BigInt(nr),
    args[0],
    args[1],
    args[2],
    args[3],
    args[4],
    args[5],
  ) as bigint;
}

/** Drain the kernel's messages from a filesystem context fd (non-blocking by nature). */
function kernelMessages(fs: BorrowedFd): string[] {
  const out: string[] = [];
  const buf = new Uint8Array(1024);
  for (let i = 0; i < 32; i++) {
    const n = Number(libc().read(fs.fd, buf, BigInt(buf.length)));
    if (n <= 0) break;
    out.push(new TextDecoder().decode(buf.subarray(0, n)).trim());
  }
  return out;
}

/** `fsopen(name, FSOPEN_CLOEXEC)`: a new filesystem context for `fsType`. */
export function fsopen(fsType: string): OwnedFd {
  const name = cstr(fsType);
  const rc = sys(C.SYS_fsopen, [ptr(name), BigInt(C.FSOPEN_CLOEXEC)]);
  if (rc < 0n) throw new MountError("fsopen", errno(), fsType);
  return new OwnedFd(Number(rc));
}

function fsconfig(
  fs: BorrowedFd,
  cmd: number,
  key: string | null,
  value: Uint8Array | null,
  aux: number,
  what: string,
): void {
  const k = key === null ? null : cstr(key);
  const rc = sys(C.SYS_fsconfig, [BigInt(fs.fd), BigInt(cmd), ptr(k), ptr(value), BigInt(aux)]);
  if (rc < 0n) {
    const code = errno();
    throw new MountError("fsconfig", code, what, kernelMessages(fs));
  }
}

/** `fsconfig(FSCONFIG_SET_FLAG, key)`. */
export function fsconfigSetFlag(fs: BorrowedFd, key: string, what = key): void {
  fsconfig(fs, C.FSCONFIG_SET_FLAG, key, null, 0, what);
}

/** `fsconfig(FSCONFIG_SET_STRING, key, value)`. */
export function fsconfigSetString(fs: BorrowedFd, key: string, value: string, what = key): void {
  fsconfig(fs, C.FSCONFIG_SET_STRING, key, cstr(value), 0, what);
}

/** `fsconfig(FSCONFIG_SET_FD, key, fd)` (overlay layers as fds: Linux ≥ 6.13). */
export function fsconfigSetFd(fs: BorrowedFd, key: string, fd: BorrowedFd, what = key): void {
  fsconfig(fs, C.FSCONFIG_SET_FD, key, null, fd.fd, what);
}

/** `fsconfig(FSCONFIG_CMD_CREATE)`: build the superblock. */
export function fsconfigCreate(fs: BorrowedFd, what = "create"): void {
  fsconfig(fs, C.FSCONFIG_CMD_CREATE, null, null, 0, what);
}

/** `fsmount(fs, FSMOUNT_CLOEXEC, attrs)`: a detached mount. */
export function fsmount(fs: BorrowedFd, attrs = 0, what = "fsmount"): OwnedFd {
  const rc = sys(C.SYS_fsmount, [BigInt(fs.fd), BigInt(C.FSMOUNT_CLOEXEC), BigInt(attrs)]);
  if (rc < 0n) throw new MountError("fsmount", errno(), what, kernelMessages(fs));
  return new OwnedFd(Number(rc));
}

/** `move_mount(mnt, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)`: attach at `target`. */
export function moveMount(mnt: BorrowedFd, target: string): void {
  const empty = cstr("");
  const t = cstr(target);
  const rc = sys(C.SYS_move_mount, [
    BigInt(mnt.fd),
    ptr(empty),
    BigInt(C.AT_FDCWD),
    ptr(t),
    BigInt(C.MOVE_MOUNT_F_EMPTY_PATH),
  ]);
  if (rc < 0n) throw new MountError("move_mount", errno(), target);
}

/** `umount2(target, flags)`; `detach` = MNT_DETACH (lazy). */
export function umount(target: string, opts: { detach?: boolean } = {}): void {
  const rc = libc().umount2(cstr(target), opts.detach ? C.MNT_DETACH : 0);
  if (rc < 0) throw new MountError("umount2", errno(), target);
}

/** The `/proc/self/fd/N` path of an fd, for `source=` of a file-backed EROFS mount. */
export function procFdPath(fd: BorrowedFd): string {
  return `/proc/self/fd/${fd.fd}`;
}

/** The effective uid of this process (geteuid). */
export function effectiveUid(): number {
  return libc().geteuid();
}

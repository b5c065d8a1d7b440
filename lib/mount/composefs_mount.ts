/**
 * Mount a composefs image the way composefs-rs does on Linux ≥ 6.13 (erofs-format §6.1):
 * a file-backed EROFS mount of the image (`source=/proc/self/fd/N`, no loop device), then an
 * overlayfs with that mount as its only lower layer (`lowerdir+`), the repository's `objects/`
 * as a data-only layer (`datadir+`), `metacopy=on`, `redirect_dir=on`, `verity=require` for a
 * secure repository, and optionally an upper and work directory for a writable view. The
 * detached mount is moved onto the mount point last, so a failure leaves nothing mounted.
 *
 * @module
 */

import * as C from "../../ffi/constants.ts";
import { ERRNO } from "../../ffi/errno.ts";
import { openPath } from "../../ffi/fs.ts";
import {
  effectiveUid,
  fsconfigCreate,
  fsconfigSetFd,
  fsconfigSetFlag,
  fsconfigSetString,
  fsmount,
  fsopen,
  MountError,
  moveMount,
  procFdPath,
  umount,
} from "../../ffi/mount.ts";
import type { BorrowedFd, OwnedFd } from "../../ffi/owned_fd.ts";
import type { Repository } from "../repository/repository.ts";

export { MountError };

/** ENOTBLK: erofs without file-backed support wants a block device as its source. */
const ENOTBLK = 15;

/** Mounting needs root (CAP_SYS_ADMIN in the initial user namespace). */
export class MountPermissionError extends Error {
  /** Always `MountPermissionError`. */
  override name = "MountPermissionError";
  /** The effective uid we ran as. */
  readonly uid: number;
  /** Build the error from its structured fields. */
  constructor(uid: number, options?: ErrorOptions) {
    super(
      `Mounting a composefs image needs root (CAP_SYS_ADMIN in the initial user namespace); running as uid ${uid}`,
      options,
    );
    this.uid = uid;
  }
}

/** The running kernel lacks something the mount needs. */
export class KernelFeatureError extends Error {
  /** Always `KernelFeatureError`. */
  override name = "KernelFeatureError";
  /** What is missing, e.g. `erofs`, `overlay datadir+`, `file-backed erofs`. */
  readonly feature: string;
  /** Build the error from its structured fields. */
  constructor(feature: string, detail: string, options?: ErrorOptions) {
    super(`The kernel does not support ${feature}: ${detail}`, options);
    this.feature = feature;
  }
}

/**
 * Fail early, before opening anything, when this process cannot mount.
 *
 * @throws {MountPermissionError} not root.
 */
export function requireMountPrivileges(): void {
  const uid = effectiveUid();
  if (uid !== 0) throw new MountPermissionError(uid);
}

/** fs-verity enforcement for the overlay's data files. */
export type VerityMode = "require" | "try" | "off";

/** Options of {@link mountComposefs}. */
export interface MountComposefsOptions {
  /** Shown as the overlay's source, `composefs:<name>`. */
  name?: string;
  /** Verity enforcement (default `require`). */
  verity?: VerityMode;
  /** Upper directory for a writable overlay (needs `workdir`). */
  upperdir?: string;
  /** Overlay work directory (same filesystem as `upperdir`). */
  workdir?: string;
  /** Mount read-write (needs `upperdir`); default: read-write iff an upperdir is given. */
  readWrite?: boolean;
}

function translate(e: unknown, feature: string, detail: string): never {
  if (e instanceof MountError) {
    if (e.errno === ERRNO.EPERM) throw new MountPermissionError(effectiveUid(), { cause: e });
    if (e.errno === ERRNO.ENODEV || e.errno === ERRNO.ENOSYS) {
      throw new KernelFeatureError(feature, detail, { cause: e });
    }
  }
  throw e;
}

/** A detached, read-only EROFS mount of `image` (file-backed: Linux ≥ 6.12 with EROFS_FS_BACKED_BY_FILE). */
export function erofsMount(image: OwnedFd): OwnedFd {
  let fs: OwnedFd;
  try {
    fs = fsopen("erofs");
  } catch (e) {
    translate(e, "erofs", 'fsopen("erofs") failed (CONFIG_EROFS_FS)');
  }
  using _fs = fs;
  try {
    fsconfigSetFlag(fs, "ro", "erofs ro");
    fsconfigSetString(fs, "source", procFdPath(image), "erofs source");
    fsconfigCreate(fs, "erofs create");
  } catch (e) {
    if (e instanceof MountError && e.errno === ENOTBLK) {
      throw new KernelFeatureError(
        "file-backed erofs",
        "the image file cannot be mounted without a loop device (CONFIG_EROFS_FS_BACKED_BY_FILE)",
        { cause: e },
      );
    }
    translate(e, "erofs", "creating the erofs superblock failed");
  }
  return fsmount(fs, 0, "erofs fsmount");
}

/** Options of {@link composefsMountFd}: upper/work directories given as fds, not paths. */
export interface DetachedMountOptions extends Omit<MountComposefsOptions, "upperdir" | "workdir"> {
  /** Upper directory fd for a writable overlay (needs `workdirFd`). */
  upperdirFd?: OwnedFd;
  /** Overlay work directory fd (same filesystem as `upperdirFd`). */
  workdirFd?: OwnedFd;
}

/**
 * Mount `image` (an EROFS image fd) over `objects` (the repository's `objects/` dir fd) at
 * `target`. Nothing is attached unless every step succeeds.
 *
 * @throws {MountPermissionError} not root.
 * @throws {KernelFeatureError} erofs/overlay missing, no file-backed erofs, no `datadir+`.
 * @throws {MountError} anything else, with the kernel's messages.
 */
export function mountComposefs(
  image: OwnedFd,
  objects: BorrowedFd,
  target: string,
  opts: MountComposefsOptions = {},
): void {
  requireMountPrivileges();
  if ((opts.upperdir === undefined) !== (opts.workdir === undefined)) {
    throw new TypeError("upperdir and workdir must be given together");
  }
  const { upperdir, workdir, ...rest } = opts;
  using upper = upperdir === undefined ? undefined : openPath(upperdir, C.O_RDONLY | C.O_DIRECTORY);
  using work = workdir === undefined ? undefined : openPath(workdir, C.O_RDONLY | C.O_DIRECTORY);
  using mnt = composefsMountFd(image, objects, {
    ...rest,
    ...(upper ? { upperdirFd: upper } : {}),
    ...(work ? { workdirFd: work } : {}),
  });
  try {
    moveMount(mnt, target);
  } catch (e) {
    translate(e, "move_mount", "attaching the mount failed");
  }
}

/**
 * The composefs overlay of `image` over `objects` as a detached mount (`fsmount`), not attached
 * anywhere: the caller moves it with `move_mount(2)` or hands the fd on (varlink `Mount`).
 *
 * @throws {MountPermissionError} not root.
 * @throws {KernelFeatureError} erofs/overlay missing, no file-backed erofs, no `datadir+`.
 * @throws {MountError} anything else, with the kernel's messages.
 */
export function composefsMountFd(
  image: OwnedFd,
  objects: BorrowedFd,
  opts: DetachedMountOptions = {},
): OwnedFd {
  requireMountPrivileges();
  if ((opts.upperdirFd === undefined) !== (opts.workdirFd === undefined)) {
    throw new TypeError("upperdir and workdir must be given together");
  }
  const readWrite = opts.readWrite ?? opts.upperdirFd !== undefined;
  if (readWrite && opts.upperdirFd === undefined) {
    throw new TypeError("A read-write mount needs an upperdir");
  }
  using erofs = erofsMount(image);
  let ov: OwnedFd;
  try {
    ov = fsopen("overlay");
  } catch (e) {
    translate(e, "overlay", 'fsopen("overlay") failed (CONFIG_OVERLAY_FS)');
  }
  using _ov = ov;
  try {
    fsconfigSetString(ov, "source", `composefs:${opts.name ?? "image"}`, "overlay source");
    fsconfigSetString(ov, "metacopy", "on", "overlay metacopy=on");
    fsconfigSetString(ov, "redirect_dir", "on", "overlay redirect_dir=on");
    const verity = opts.verity ?? "require";
    if (verity !== "off") {
      try {
        fsconfigSetString(ov, "verity", "require", "overlay verity=require");
      } catch (e) {
        const soft = e instanceof MountError &&
          (e.errno === ERRNO.EINVAL || e.errno === ERRNO.ENOSYS);
        if (verity === "require" && soft) {
          throw new KernelFeatureError("overlay verity=require", "overlayfs rejected it", {
            cause: e,
          });
        }
        if (!soft) throw e;
      }
    }
    if (opts.upperdirFd !== undefined) {
      fsconfigSetFd(ov, "upperdir", opts.upperdirFd, "overlay upperdir");
      fsconfigSetFd(ov, "workdir", opts.workdirFd!, "overlay workdir");
    }
    try {
      fsconfigSetFd(ov, "lowerdir+", erofs, "overlay lowerdir+");
      fsconfigSetFd(ov, "datadir+", objects, "overlay datadir+");
    } catch (e) {
      if (e instanceof MountError && e.errno === ERRNO.EINVAL) {
        throw new KernelFeatureError(
          "overlay data-only layers given as fds",
          '"lowerdir+"/"datadir+" with FSCONFIG_SET_FD needs Linux 6.13 or later' +
            (e.kernelMessages.length > 0 ? ` (${e.kernelMessages.join("; ")})` : ""),
          { cause: e },
        );
      }
      throw e;
    }
    fsconfigCreate(ov, "overlay create");
  } catch (e) {
    translate(e, "overlay", "configuring the overlay failed");
  }
  return fsmount(ov, readWrite ? 0 : C.MOUNT_ATTR_RDONLY, "overlay fsmount");
}

/** Options of {@link mountImage}. */
export type MountImageOptions = Omit<MountComposefsOptions, "verity" | "name"> & {
  /** Override the verity decision (default: `require` unless the repository is insecure). */
  verity?: VerityMode;
};

/**
 * Mount the repository image `name` (hex id, `refs/<name>` or a ref name) at `target`, with
 * the repository's `objects/` as the data layer; `verity=require` for a secure repository.
 */
export function mountImage(
  repo: Repository,
  name: string,
  target: string,
  opts: MountImageOptions = {},
): void {
  requireMountPrivileges();
  using image = repo.openImage(name);
  const objects = repo.objectsDirFd();
  mountComposefs(image, objects, target, {
    ...opts,
    name,
    verity: opts.verity ?? (repo.insecure ? "off" : "require"),
  });
}

/** Unmount `target` (a composefs mount made by {@link mountImage}). */
export function unmountImage(target: string, opts: { detach?: boolean } = {}): void {
  umount(target, opts);
}

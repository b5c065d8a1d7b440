/**
 * Build a composefs tree from a directory on disk (composefs-rs `read_filesystem`), and the OCI
 * transform that `cfsctl compute-id/create-image/create-dumpfile` apply to it
 * (`transform_for_oci`, spec erofs-format.md §3.3, §3.6).
 *
 * Every file is opened beneath its directory fd with openat2 (no symlink is ever followed).
 * Files of at most 64 bytes are stored inline; larger ones become external objects named by
 * their fs-verity digest (or by whatever `storeFile` returns, e.g. a repository writer).
 *
 * @module
 */

import * as C from "../../ffi/constants.ts";
import {
  fgetxattr,
  flistxattr,
  type fstat,
  lstatAt,
  lxattrsAt,
  openBeneath,
  openDir,
  readAllAt,
  readDir,
  readlinkAtBytes,
} from "../../ffi/fs.ts";
import type { OwnedFd } from "../../ffi/owned_fd.ts";
import { fsverityDigestFd, type HashAlgorithm } from "../fsverity/mod.ts";
import * as F from "./format.ts";
import {
  bytesToByteString,
  type ByteString,
  Directory,
  Leaf,
  type LeafContent,
  type Stat,
  utf8ToByteString,
} from "./tree.ts";

/** The directory cannot be turned into a composefs tree. */
export class ScanError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "ScanError";
  /** Path (relative to the scanned root) of the offending entry. */
  readonly path: string;
  /** Build the error; `options.cause` keeps the underlying error. */
  constructor(message: string, path: string, options?: ErrorOptions) {
    super(message, options);
    this.path = path;
  }
}

/** Options of {@link scanDirectory}. */
export interface ScanOptions {
  /** fs-verity algorithm of object ids. */
  algorithm: HashAlgorithm;
  /**
   * Store or hash a regular file larger than the inline limit; returns its object id.
   * Default: compute the fs-verity digest without storing anything.
   */
  storeFile?: (fd: OwnedFd, size: number) => Uint8Array;
  /** `track` (default, composefs-rs `read_filesystem`): one inode per (dev, ino); `break`: one per path. */
  hardlinks?: "track" | "break";
}

type RawStat = ReturnType<typeof fstat>;

function readXattrs(fd: OwnedFd): Map<ByteString, Uint8Array> {
  const out = new Map<ByteString, Uint8Array>();
  for (const name of flistxattr(fd)) {
    const v = fgetxattr(fd, name);
    if (v !== null) out.set(utf8ToByteString(name), v);
  }
  return out;
}

function toStat(st: RawStat, xattrs: Map<ByteString, Uint8Array>): Stat {
  return {
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    mtimeSec: st.mtimeSec,
    mtimeNsec: st.mtimeNsec,
    xattrs,
  };
}

/** xattrs of a symlink or special file (not openable for reading), like composefs-rs does. */
function specialXattrs(dir: OwnedFd, nameBytes: Uint8Array): Map<ByteString, Uint8Array> {
  const out = new Map<ByteString, Uint8Array>();
  for (const [k, v] of lxattrsAt(dir, nameBytes)) out.set(utf8ToByteString(k), v);
  return out;
}

/** Scan the directory at `path` into a tree. */
export function scanDirectory(path: string, options: ScanOptions): Directory {
  const track = (options.hardlinks ?? "track") === "track";
  const inodes = new Map<string, Leaf>();
  const store = options.storeFile ?? ((fd: OwnedFd) => fsverityDigestFd(fd, options.algorithm));
  using rootFd = openDir(path);
  const rootSt = lstatAt(rootFd, ".");
  const root = new Directory(toStat(rootSt, readXattrs(rootFd)));

  const walk = (dirFd: OwnedFd, dir: Directory, rel: string) => {
    for (const ent of readDir(dirFd)) {
      const name = bytesToByteString(ent.nameBytes);
      const childRel = rel + "/" + ent.name;
      const st = lstatAt(dirFd, ent.nameBytes);
      const type = st.mode & F.S_IFMT;
      if (type === F.S_IFDIR) {
        using sub = openBeneath(dirFd, ent.nameBytes, {
          flags: C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW,
        });
        const child = new Directory(toStat(st, readXattrs(sub)));
        dir.entries.set(name, child);
        walk(sub, child, childRel);
        continue;
      }
      const key = `${st.dev}:${st.ino}`;
      if (track && st.nlink > 1) {
        const known = inodes.get(key);
        if (known) {
          dir.entries.set(name, known);
          continue;
        }
      }
      let content: LeafContent;
      let xattrs: Map<ByteString, Uint8Array>;
      switch (type) {
        case F.S_IFREG: {
          using fd = openBeneath(dirFd, ent.nameBytes, { flags: C.O_RDONLY | C.O_NOFOLLOW });
          xattrs = readXattrs(fd);
          if (st.size <= F.INLINE_CONTENT_MAX) {
            const data = readAllAt(fd);
            if (data.length !== st.size) {
              throw new ScanError(`File changed size while being read`, childRel);
            }
            content = { kind: "regular", content: { kind: "inline", data } };
          } else {
            content = {
              kind: "regular",
              content: { kind: "external", digest: store(fd, st.size), size: st.size },
            };
          }
          break;
        }
        case F.S_IFLNK:
          content = {
            kind: "symlink",
            target: bytesToByteString(readlinkAtBytes(dirFd, ent.nameBytes)),
          };
          xattrs = specialXattrs(dirFd, ent.nameBytes);
          break;
        case F.S_IFCHR:
        case F.S_IFBLK: {
          const rdev = Number(st.rdev);
          if (rdev > 0xffffffff) {
            throw new ScanError(`Device number "${st.rdev}" does not fit 32 bits`, childRel);
          }
          content = { kind: type === F.S_IFCHR ? "chr" : "blk", rdev };
          xattrs = specialXattrs(dirFd, ent.nameBytes);
          break;
        }
        case F.S_IFIFO:
          content = { kind: "fifo" };
          xattrs = specialXattrs(dirFd, ent.nameBytes);
          break;
        case F.S_IFSOCK:
          content = { kind: "socket" };
          xattrs = specialXattrs(dirFd, ent.nameBytes);
          break;
        default:
          throw new ScanError(`Unknown file type "${(type >> 12).toString(8)}"`, childRel);
      }
      const leaf = new Leaf(toStat(st, xattrs), content);
      if (track && st.nlink > 1) inodes.set(key, leaf);
      dir.entries.set(name, leaf);
    }
  };
  walk(rootFd, root, "");
  return root;
}

/**
 * Turn a layer's tar-split entries into splitdirfdstream {@link Chunk}s: segments become
 * `metadata` (copied verbatim — exact even where the original tar's padding was not zero,
 * unlike composefs-rs, which re-synthesises padding), and each file with content becomes
 * `fileBackedData` naming the file beneath one of the layer's directory fds, after its CRC-64
 * was checked against tar-split's record (composefs-rs reads the wrong field and never checks,
 * spec §4.4.4). Files the consumer could not open itself (not world-readable, and the consumer
 * cannot bypass DAC), and names that are not UTF-8 (a Chunk carries names as strings), are sent
 * as `inlineData`.
 *
 * @module
 */

import * as C from "../../../ffi/constants.ts";
import { isErrno } from "../../../ffi/errno.ts";
import { fgetxattr, fstat, openBeneath, pread, RESOLVE_STRICT } from "../../../ffi/fs.ts";
import type { BorrowedFd, OwnedFd } from "../../../ffi/owned_fd.ts";
import type { Chunk } from "../../splitdirfdstream/chunk.ts";
import { Crc64 } from "./crc64.ts";
import { LayerContentError, TarSplitCrcMismatchError } from "./errors.ts";
import type { TarSplitEntry } from "./tar_split_entries.ts";

/** Read buffer for the CRC pass (1 MiB: few syscalls, small enough to stay in cache). */
const READ_SIZE = 1024 * 1024;
/** Open flags: O_NONBLOCK so a FIFO planted in the layer cannot block us (it is refused). */
const OPEN_FLAGS = C.O_RDONLY | C.O_NOCTTY | C.O_NONBLOCK;
/** Beneath the layer directory, no symlinks, no mount crossing (the consumer uses the same). */
const RESOLVE = RESOLVE_STRICT | C.RESOLVE_NO_XDEV;
/** overlay marks a metadata-only copy-up with one of these xattrs; the data is in a lower layer. */
const METACOPY_XATTRS = ["trusted.overlay.metacopy", "user.overlay.metacopy"];
/** World-readable bit. */
const S_IROTH = 0o004;

/** Options for {@link layerChunks}. */
export interface LayerChunksOptions {
  /** The storage layer id, for errors. */
  layerId: string;
  /** Check each file's CRC-64 against tar-split (default true). */
  verifyCrc?: boolean;
  /**
   * Whether the consumer of the chunks can open files that are not world-readable (it runs as
   * root or with CAP_DAC_OVERRIDE). Default: our own euid is 0. When false, such files are
   * sent inline.
   */
  consumerBypassesDac?: boolean;
  /** Look in `dirfds[1..]` (overlay lower layers) for files missing from, or metacopy stubs in,
   * `dirfds[0]`. Default true. */
  searchLowers?: boolean;
}

/** Counters of what {@link layerChunks} emitted. */
export interface LayerChunksStats {
  /** Files with content. */
  files: number;
  /** Of those, sent as FileBackedData. */
  fileBacked: number;
  /** Of those, sent as InlineData. */
  inlined: number;
  /** Content bytes. */
  bytes: number;
}

/** Strip `./` and `/` prefixes: tar names are relative to the layer root in any spelling. */
function relativeName(name: Uint8Array): Uint8Array {
  let i = 0;
  for (;;) {
    if (name[i] === 0x2f) i++;
    else if (name[i] === 0x2e && name[i + 1] === 0x2f) i += 2;
    else break;
  }
  return name.subarray(i);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const lossy = new TextDecoder("utf-8");

function isMetacopy(fd: OwnedFd): boolean {
  return METACOPY_XATTRS.some((x) => fgetxattr(fd, x) !== null);
}

/**
 * Produce the chunks of one layer. `dirfds[0]` is the layer's own directory; for overlay,
 * `dirfds[1..]` are its lower layers' `diff/` directories, closest first. The caller keeps
 * ownership of `dirfds` and must keep them open until the consumer has read every file.
 * `stats` (if given) is filled in as chunks are produced.
 */
export async function* layerChunks(
  entries: AsyncIterable<TarSplitEntry>,
  dirfds: readonly BorrowedFd[],
  opts: LayerChunksOptions,
  stats: LayerChunksStats = { files: 0, fileBacked: 0, inlined: 0, bytes: 0 },
): AsyncGenerator<Chunk> {
  const verify = opts.verifyCrc ?? true;
  const bypass = opts.consumerBypassesDac ?? Deno.uid() === 0;
  const searchLowers = opts.searchLowers ?? true;
  const buf = new Uint8Array(READ_SIZE);
  for await (const e of entries) {
    if (e.type === "segment") {
      if (e.payload.length) yield { type: "metadata", data: e.payload };
      continue;
    }
    if (e.size === 0) continue;
    const rel = relativeName(e.name);
    const shown = lossy.decode(e.name);
    if (rel.length === 0) throw new LayerContentError(opts.layerId, shown, "names the layer root");
    let name: string | null;
    try {
      name = utf8.decode(rel);
    } catch {
      name = null;
    }
    // Find the file: the layer's own directory, else (overlay) the closest lower layer.
    let fd: OwnedFd | null = null;
    let index = -1;
    const last = searchLowers ? dirfds.length : Math.min(1, dirfds.length);
    for (let i = 0; i < last; i++) {
      let f: OwnedFd;
      try {
        f = openBeneath(dirfds[i], rel, { flags: OPEN_FLAGS, resolve: RESOLVE });
      } catch (err) {
        if (isErrno(err, "ENOENT")) continue;
        throw new LayerContentError(opts.layerId, shown, "cannot be opened", { cause: err });
      }
      if (i + 1 < last && isMetacopy(f)) {
        f.close();
        continue;
      }
      fd = f;
      index = i;
      break;
    }
    if (fd === null) {
      throw new LayerContentError(opts.layerId, shown, "is missing from the layer directory");
    }
    try {
      const st = fstat(fd);
      if ((st.mode & C.S_IFMT) !== C.S_IFREG) {
        throw new LayerContentError(opts.layerId, shown, "is not a regular file");
      }
      if (st.size !== e.size) {
        throw new LayerContentError(
          opts.layerId,
          shown,
          `has ${st.size} bytes but tar-split recorded ${e.size}`,
        );
      }
      const inline = name === null || (!bypass && (st.mode & S_IROTH) === 0);
      const content = inline ? new Uint8Array(e.size) : null;
      if (verify || inline) {
        const crc = new Crc64();
        let off = 0;
        while (off < e.size) {
          const want = Math.min(READ_SIZE, e.size - off);
          const target = content ? content.subarray(off, off + want) : buf.subarray(0, want);
          const n = pread(fd, target as Uint8Array<ArrayBuffer>, off);
          if (n === 0) {
            throw new LayerContentError(
              opts.layerId,
              shown,
              `ends after ${off} of ${e.size} bytes`,
            );
          }
          crc.update(target.subarray(0, n));
          off += n;
        }
        if (verify && e.crc) {
          const got = crc.digest();
          if (!got.every((b, i) => b === e.crc![i])) {
            throw new TarSplitCrcMismatchError(opts.layerId, shown, e.crc.toHex(), got.toHex());
          }
        }
      }
      stats.files++;
      stats.bytes += e.size;
      if (content) {
        stats.inlined++;
        yield { type: "inlineData", data: content };
      } else {
        stats.fileBacked++;
        yield { type: "fileBackedData", contentLength: e.size, dirfdIndex: index, filename: name! };
      }
    } finally {
      fd.close();
    }
  }
}

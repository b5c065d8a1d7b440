/**
 * Chunks + directory fds → the original byte stream (the I/O side of the format).
 *
 * @module
 */

import type { BorrowedFd, OwnedFd } from "../../ffi/owned_fd.ts";
import { fstat, openBeneath, pread, RESOLVE_STRICT } from "../../ffi/fs.ts";
import { ErrnoError } from "../../ffi/errno.ts";
import * as C from "../../ffi/constants.ts";
import type { Chunk } from "./chunk.ts";
import {
  DirfdIndexOutOfRangeError,
  FileOpenError,
  FileShorterThanDeclaredError,
} from "./errors.ts";
import { validateFilename } from "./validate_filename.ts";

/**
 * Size of the buffers a default reader of {@link reconstruct} gets (256 KiB): the most one
 * `pread` reads, whatever `content_len` says. Larger than composefs-rs's 128 KiB scratch
 * buffer because every buffer handed to a default reader is a fresh allocation, and fewer,
 * larger reads measured faster here; BYOB readers choose their own size.
 */
export const RECONSTRUCT_READ_SIZE = 256 * 1024;

/**
 * Open flags for a referenced file. O_NONBLOCK keeps a FIFO planted in the directory from
 * blocking the open (the file is then refused as not regular); O_NOCTTY keeps a tty from
 * becoming our controlling terminal.
 */
const OPEN_FLAGS = C.O_RDONLY | C.O_NOCTTY | C.O_NONBLOCK;

/**
 * Resolve flags: beneath the dirfd, no symlinks at all, no magic links, no mount crossing.
 * Stricter than composefs-rs (which follows symlinks that stay beneath): DESIGN 7 applies
 * one beneath-rule to every source, and producers never need symlinks (object paths and
 * layer diff dirs are plain files).
 */
const RESOLVE = RESOLVE_STRICT | C.RESOLVE_NO_XDEV;

/**
 * Open the file a FileBackedData chunk names, safely, beneath `dirfds[dirfdIndex]`.
 *
 * Validates the name first (no syscall for `..`, absolute, NUL, overlong or empty names),
 * then `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
 * RESOLVE_NO_XDEV)` and checks it is a regular file.
 *
 * @throws {DirfdIndexOutOfRangeError} index not below `dirfds.length`.
 * @throws {InvalidFilenameError} / {FilenameTooLongError} from `validateFilename`.
 * @throws {FileOpenError} the kernel refused the path (symlink, escape, missing: errno in
 *   `cause`) or it is not a regular file.
 *
 * @example
 * ```ts
 * import { openChunkFile } from "./reconstruct.ts";
 * import { openDir } from "../../ffi/fs.ts";
 * import assert from "node:assert/strict";
 * using etc = openDir("/etc");
 * assert.throws(() => openChunkFile([etc], 0, "../etc/passwd"), { name: "InvalidFilenameError" });
 * assert.throws(() => openChunkFile([etc], 1, "passwd"), { name: "DirfdIndexOutOfRangeError" });
 * ```
 */
export function openChunkFile(
  dirfds: readonly BorrowedFd[],
  dirfdIndex: number,
  filename: string,
): OwnedFd {
  if (!(dirfdIndex >= 0 && dirfdIndex < dirfds.length)) {
    throw new DirfdIndexOutOfRangeError(dirfdIndex, dirfds.length);
  }
  validateFilename(filename);
  let fd: OwnedFd;
  try {
    fd = openBeneath(dirfds[dirfdIndex], filename, { flags: OPEN_FLAGS, resolve: RESOLVE });
  } catch (e) {
    if (e instanceof ErrnoError) {
      throw new FileOpenError(filename, dirfdIndex, e.code, { cause: e });
    }
    throw e;
  }
  try {
    const st = fstat(fd);
    if ((st.mode & C.S_IFMT) !== C.S_IFREG) {
      throw new FileOpenError(filename, dirfdIndex, "not a regular file");
    }
    return fd;
  } catch (e) {
    fd.close();
    throw e;
  }
}

/** The chunk being copied out: bytes of a data chunk, or an open file and its framing. */
type Current =
  | { kind: "bytes"; data: Uint8Array; off: number }
  | { kind: "file"; fd: OwnedFd; filename: string; length: number; off: number };

/**
 * Rebuild the byte stream a splitdirfdstream encodes: Metadata and InlineData bytes as
 * they are, and for each FileBackedData chunk exactly `contentLength` bytes from offset 0
 * of the file it names beneath `dirfds[dirfdIndex]` (see {@link openChunkFile}).
 *
 * The stream is self-framing: a file longer than declared contributes only its prefix, a
 * shorter one fails with `FileShorterThanDeclaredError` (so a file changing under us cannot
 * shift the framing).
 *
 * The result is a byte stream (`type: "bytes"`): files are `pread` straight into the
 * reader's buffer, whose size bounds every read, never the attacker-controlled
 * `content_len`. A BYOB reader (`getReader({ mode: "byob" })`) that reuses one buffer gets
 * the bytes with no allocation at all; a default reader gets fresh
 * {@link RECONSTRUCT_READ_SIZE} buffers. Each read returns bytes of one chunk at most, as
 * soon as they are there. Output is pulled: nothing is read ahead of the consumer. Errors
 * (typed `SplitdirfdstreamError`s, or the input's own) error the returned stream; nothing
 * of a refused file is emitted, and cancelling closes the open file and cancels `chunks`.
 * The caller keeps ownership of `dirfds` and must keep them open until the stream ends.
 *
 * @example
 * ```ts
 * import { reconstruct } from "./reconstruct.ts";
 * import assert from "node:assert/strict";
 * const chunks = ReadableStream.from([
 *   { type: "metadata" as const, data: new TextEncoder().encode("hi") },
 * ]);
 * const out = await new Response(reconstruct(chunks, [])).text();
 * assert.equal(out, "hi");
 * ```
 */
export function reconstruct(
  chunks: ReadableStream<Chunk> | AsyncIterable<Chunk>,
  dirfds: readonly BorrowedFd[],
): ReadableStream<Uint8Array> {
  const it = (chunks as AsyncIterable<Chunk>)[Symbol.asyncIterator]();
  let cur: Current | undefined;
  let ended = false;
  const drop = () => {
    if (cur?.kind === "file") cur.fd.close();
    cur = undefined;
  };
  /** Advance to the next non-empty chunk; false at the end of `chunks`. */
  const next = async (): Promise<boolean> => {
    for (;;) {
      const r = await it.next();
      if (r.done) return false;
      const c = r.value;
      if (c.type !== "fileBackedData") {
        if (c.data.length === 0) continue;
        cur = { kind: "bytes", data: c.data, off: 0 };
        return true;
      }
      const fd = openChunkFile(dirfds, c.dirfdIndex, c.filename);
      if (c.contentLength === 0) {
        fd.close();
        continue;
      }
      cur = { kind: "file", fd, filename: c.filename, length: c.contentLength, off: 0 };
      return true;
    }
  };
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: RECONSTRUCT_READ_SIZE,
    async pull(controller) {
      try {
        if (!cur && !(await next())) {
          ended = true;
          controller.close();
          controller.byobRequest?.respond(0);
          return;
        }
        // autoAllocateChunkSize guarantees a request, for default readers too.
        const req = controller.byobRequest!;
        const view = req.view as Uint8Array<ArrayBuffer>;
        const dst = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
        const c = cur!;
        let n: number;
        if (c.kind === "bytes") {
          n = Math.min(dst.length, c.data.length - c.off);
          dst.set(c.data.subarray(c.off, c.off + n));
          c.off += n;
          if (c.off === c.data.length) cur = undefined;
        } else {
          const want = Math.min(dst.length, c.length - c.off);
          n = pread(c.fd, want === dst.length ? dst : dst.subarray(0, want), c.off);
          if (n === 0) throw new FileShorterThanDeclaredError(c.filename, c.length, c.off);
          c.off += n;
          if (c.off === c.length) drop();
        }
        req.respond(n);
      } catch (e) {
        drop();
        ended = true;
        // Stop the chunk source too; `e` is what the consumer sees, a failure to stop the
        // source could only hide it.
        await it.return?.().catch(() => undefined);
        throw e;
      }
    },
    async cancel(reason) {
      drop();
      if (!ended) await it.return?.(reason);
    },
  });
}

/**
 * Chunks + directory fds → the original byte stream (the I/O side of the format).
 *
 * @module
 */

import type { OwnedFd } from "../../ffi/owned_fd.ts";
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
 * Size of the scratch buffer external files are read through (128 KiB, as composefs-rs and
 * coreutils `cat`). It is fixed: never sized from the attacker-controlled `content_len`.
 */
export const RECONSTRUCT_READ_SIZE = 128 * 1024;

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
  dirfds: readonly OwnedFd[],
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

async function* reconstructGen(
  chunks: ReadableStream<Chunk> | AsyncIterable<Chunk>,
  dirfds: readonly OwnedFd[],
): AsyncGenerator<Uint8Array<ArrayBuffer>> {
  const scratch = new Uint8Array(RECONSTRUCT_READ_SIZE);
  for await (const chunk of chunks) {
    if (chunk.type !== "fileBackedData") {
      if (chunk.data.length > 0) yield chunk.data as Uint8Array<ArrayBuffer>;
      continue;
    }
    const { contentLength, dirfdIndex, filename } = chunk;
    using fd = openChunkFile(dirfds, dirfdIndex, filename);
    let done = 0;
    while (done < contentLength) {
      const want = Math.min(scratch.length, contentLength - done);
      const n = pread(fd, want === scratch.length ? scratch : scratch.subarray(0, want), done);
      if (n === 0) throw new FileShorterThanDeclaredError(filename, contentLength, done);
      done += n;
      yield scratch.slice(0, n);
    }
  }
}

/**
 * Rebuild the byte stream a splitdirfdstream encodes: Metadata and InlineData bytes as
 * they are, and for each FileBackedData chunk exactly `contentLength` bytes from offset 0
 * of the file it names beneath `dirfds[dirfdIndex]` (see {@link openChunkFile}).
 *
 * The stream is self-framing: a file longer than declared contributes only its prefix, a
 * shorter one fails with `FileShorterThanDeclaredError` (so a file changing under us cannot
 * shift the framing). Files are read with `pread` through a fixed 128 KiB buffer. The
 * output is pulled: nothing is read ahead of the consumer beyond the queue's
 * highWaterMark. Errors (typed `SplitdirfdstreamError`s, or the input's own) error the
 * returned stream; nothing of a refused file is emitted. The caller keeps ownership of
 * `dirfds` and must keep them open until the stream ends.
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
  dirfds: readonly OwnedFd[],
): ReadableStream<Uint8Array> {
  return ReadableStream.from(reconstructGen(chunks, dirfds));
}

/**
 * fd ↔ Web Streams: a byte `ReadableStream` that reads an fd and a `WritableStream` that writes
 * one, both on the process-wide event loop (synchronous FFI I/O on O_NONBLOCK fds, one shared
 * epoll wait on EAGAIN). The streams own their fd and close it on end, cancel, abort or error.
 *
 * Memory is bounded: the reader issues one read of at most `chunkSize` (1 MiB) per pull and pulls
 * only when the consumer asks; the writer holds at most `highWaterMark` bytes queued.
 *
 * @module
 */

import { errno, libc } from "./libc.ts";
import { ERRNO, ErrnoError } from "./errno.ts";
import type { OwnedFd } from "./owned_fd.ts";
import { cancelWaits, waitReadable, waitWritable } from "./event_loop.ts";
import { fstat, setNonblocking } from "./fs.ts";
import * as C from "./constants.ts";

/** One read per pull: 1 MiB chunks keep epoll hand-offs rare (1 GB/s vs 160 MB/s at 64 KiB). */
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;
/** Pipe capacity requested with F_SETPIPE_SZ so a writer can fill a whole chunk at once. */
export const DEFAULT_PIPE_SIZE = 1024 * 1024;
/**
 * A read that fills less than this fraction of the buffer is copied out and the buffer reused,
 * so many small chunks never pin many 1 MiB buffers.
 */
const SMALL_READ_FRACTION = 4;

/** Options for {@link readableFromFd}. */
export interface ReadableFromFdOptions {
  /** Bytes per read (default 1 MiB). */
  chunkSize?: number;
  /** F_SETPIPE_SZ for pipes/FIFOs (default 1 MiB; 0 leaves the pipe alone). Best effort. */
  pipeSize?: number;
}

/** The stream was cancelled or aborted while it waited on its fd. */
class StreamClosedError extends Error {
  override name = "StreamClosedError";
  constructor() {
    super("Stream was closed while waiting on its file descriptor");
  }
}

function isPipe(fd: OwnedFd): boolean {
  return (fstat(fd).mode & C.S_IFMT) === C.S_IFIFO;
}

function closeFd(fd: OwnedFd): void {
  if (fd.closed) return;
  cancelWaits(fd, new StreamClosedError());
  fd.close();
}

/**
 * A byte stream (`type: "bytes"`, BYOB readers supported) of everything readable from `fd` until
 * EOF. Takes ownership of `fd`: sets O_NONBLOCK and closes it at EOF, on error or on cancel.
 * O_NONBLOCK belongs to the open file description, so dups and other processes sharing it (a
 * child's stdout, say) see it too: hand over a description only this process reads.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pipe, writeAll } from "./fs.ts";
 * import { readableFromFd } from "./fd_stream.ts";
 * const p = pipe();
 * writeAll(p.write, new TextEncoder().encode("hello"));
 * p.write.close();
 * const text = await new Response(readableFromFd(p.read)).text();
 * assert.equal(text, "hello");
 * ```
 */
export function readableFromFd(
  fd: OwnedFd,
  opts: ReadableFromFdOptions = {},
): ReadableStream<Uint8Array<ArrayBuffer>> {
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isInteger(chunkSize) || chunkSize <= 0) {
    throw new RangeError(`chunkSize must be a positive integer, got ${chunkSize}`);
  }
  const pipeSize = opts.pipeSize ?? DEFAULT_PIPE_SIZE;
  try {
    setNonblocking(fd, true);
    // Best effort: unprivileged processes are capped by /proc/sys/fs/pipe-max-size.
    if (pipeSize > 0 && isPipe(fd)) libc().fcntl(fd.fd, C.F_SETPIPE_SZ, BigInt(pipeSize));
  } catch (e) {
    fd.close();
    throw e;
  }
  let scratch: Uint8Array<ArrayBuffer> | null = null;
  const c = libc();

  /** One read into `into`; returns bytes read (0 = EOF), waiting on EAGAIN. */
  async function readSome(into: Uint8Array<ArrayBuffer>): Promise<number> {
    for (;;) {
      const rc = c.read(fd.fd, into, BigInt(into.length));
      if (rc >= 0n) return Number(rc);
      const e = errno();
      if (e === ERRNO.EINTR) continue;
      if (e !== ERRNO.EAGAIN) throw new ErrnoError("read", e);
      await waitReadable(fd);
    }
  }

  return new ReadableStream({
    type: "bytes",
    async pull(controller) {
      try {
        const byob = controller.byobRequest;
        if (byob?.view) {
          const v = byob.view;
          const into = new Uint8Array(v.buffer as ArrayBuffer, v.byteOffset, v.byteLength);
          const n = await readSome(into);
          if (n === 0) {
            closeFd(fd);
            controller.close();
            byob.respond(0);
            return;
          }
          byob.respond(n);
          return;
        }
        const buf = scratch ?? new Uint8Array(chunkSize);
        scratch = null;
        const n = await readSome(buf);
        if (n === 0) {
          closeFd(fd);
          controller.close();
          return;
        }
        if (n * SMALL_READ_FRACTION < chunkSize) {
          // Copy the few bytes out and keep the big buffer for the next pull.
          controller.enqueue(buf.slice(0, n));
          scratch = buf;
        } else {
          // Hand the buffer over (enqueue transfers it); the next pull allocates a new one.
          controller.enqueue(n === buf.length ? buf : buf.subarray(0, n));
        }
      } catch (e) {
        closeFd(fd);
        // A cancel already closed the stream; anything else is a real error for the consumer.
        if (!(e instanceof StreamClosedError)) controller.error(e);
      }
    },
    cancel() {
      closeFd(fd);
    },
  });
}

/** Options for {@link writableToFd}. */
export interface WritableToFdOptions {
  /** Bytes the writable may queue before it applies back-pressure (default 1 MiB). */
  highWaterMark?: number;
}

/**
 * A `WritableStream` that writes every chunk fully to `fd`. Takes ownership of `fd`: sets
 * O_NONBLOCK and closes it on close, abort or error. A reader that went away surfaces as an
 * `ErrnoError` EPIPE (never a signal: Deno ignores SIGPIPE).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pipe, read } from "./fs.ts";
 * import { writableToFd } from "./fd_stream.ts";
 * const p = pipe();
 * using r = p.read;
 * const w = writableToFd(p.write).getWriter();
 * await w.write(new TextEncoder().encode("hi"));
 * await w.close();
 * const buf = new Uint8Array(8);
 * assert.equal(read(r, buf), 2);
 * ```
 */
export function writableToFd(
  fd: OwnedFd,
  opts: WritableToFdOptions = {},
): WritableStream<Uint8Array> {
  try {
    setNonblocking(fd, true);
  } catch (e) {
    fd.close();
    throw e;
  }
  const c = libc();
  return new WritableStream<Uint8Array>({
    async write(chunk) {
      const data = chunk as Uint8Array<ArrayBuffer>;
      let off = 0;
      try {
        while (off < data.length) {
          const part = off === 0 ? data : data.subarray(off);
          const rc = c.write(fd.fd, part, BigInt(part.length));
          if (rc >= 0n) {
            off += Number(rc);
            continue;
          }
          const e = errno();
          if (e === ERRNO.EINTR) continue;
          if (e !== ERRNO.EAGAIN) throw new ErrnoError("write", e);
          await waitWritable(fd);
        }
      } catch (e) {
        closeFd(fd);
        throw e;
      }
    },
    close() {
      closeFd(fd);
    },
    abort() {
      closeFd(fd);
    },
  }, new ByteLengthQueuingStrategy({ highWaterMark: opts.highWaterMark ?? DEFAULT_CHUNK_SIZE }));
}

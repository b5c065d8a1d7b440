/**
 * Unix domain sockets with SCM_RIGHTS fd passing, on the process-wide event loop.
 *
 * Every socket is O_NONBLOCK and close-on-exec; each syscall is synchronous (errno read right
 * after it) and EAGAIN turns into an await on {@link waitReadable}/{@link waitWritable}. The
 * msghdr/iovec/control buffers are allocated once per socket and their addresses computed once,
 * because taking the address of a typed array costs microseconds per call.
 *
 * @module
 */

import { errno, libc } from "./libc.ts";
import { check, ERRNO, ErrnoError } from "./errno.ts";
import { type BorrowedFd, OwnedFd } from "./owned_fd.ts";
import { cancelWaits, waitReadable, waitWritable } from "./event_loop.ts";
import { setCloexec, setNonblocking } from "./fs.ts";
import {
  AF_UNIX,
  cmsgSpace,
  decodeCmsgs,
  decodeUcred,
  encodeIovec,
  encodeMsghdr,
  encodeScmRights,
  encodeSockaddrUn,
  MSGHDR_SIZE,
  SCM_MAX_FD,
  scmRightsFds,
  SOL_SOCKET,
  UCRED_SIZE,
} from "./structs.ts";
import { Mutex } from "./mutex.ts";

/** Socket types (bits/socket_type.h) and creation flags. */
const SOCK_STREAM = 1;
const SOCK_SEQPACKET = 5;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
/** send/recv flags (bits/socket.h). */
const MSG_CTRUNC = 0x8;
/** A datagram/seqpacket message was longer than the buffer (the rest is discarded). */
const MSG_TRUNC = 0x20;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const MSG_CMSG_CLOEXEC = 0x40000000;
/** getsockopt(SOL_SOCKET, SO_PEERCRED): the peer's pid/uid/gid at connect time. */
const SO_PEERCRED = 17;
/** shutdown(2) `how`. */
const SHUT = { read: 0, write: 1, both: 2 } as const;
/** listen(2) backlog: enough for bursts of clients; the kernel caps it at somaxconn. */
const DEFAULT_BACKLOG = 128;
/**
 * Per-socket staging buffer for sendmsg/recvmsg payloads. Bytes are copied through it so its
 * address is computed once; 64 KiB is the kernel's default unix socket chunk.
 */
const STAGE_SIZE = 64 * 1024;
/** Control buffer big enough for the largest SCM_RIGHTS message the kernel accepts. */
const CONTROL_SIZE = cmsgSpace(4 * SCM_MAX_FD);
/** Back-off when connect() finds the listener's backlog full (EAGAIN on unix sockets). */
const CONNECT_RETRY_MS = 5;

/** Socket type: byte stream (varlink) or message boundaries preserved. */
export type UnixSocketType = "stream" | "seqpacket";

/**
 * recvmsg reported MSG_CTRUNC: the sender attached more fds than the receive buffer had room for.
 * The kernel closed the excess; the ones that did arrive have been closed too. A protocol error.
 */
export class ControlTruncatedError extends Error {
  /** Error name. */
  override name = "ControlTruncatedError";
  /** Fds that arrived (and were closed) before the truncation. */
  readonly received: number;
  /** Room the receive buffer had, in fds. */
  readonly capacity: number;
  /** `received` fds arrived (already closed) of a buffer with room for `capacity`. */
  constructor(received: number, capacity: number) {
    super(
      `Received control data was truncated (MSG_CTRUNC): the peer sent more fds than the ${capacity} the buffer holds; ${received} arrived and were closed`,
    );
    this.received = received;
    this.capacity = capacity;
  }
}

/**
 * A seqpacket message did not fit the receive buffer (MSG_TRUNC); its tail was discarded by the
 * kernel. Any fds it carried have been closed.
 */
export class MessageTruncatedError extends Error {
  /** Error name. */
  override name = "MessageTruncatedError";
  /** Bytes of the message that were delivered (the buffer size). */
  readonly delivered: number;
  /** `delivered` bytes fitted; the message was longer. */
  constructor(delivered: number) {
    super(`Received message was longer than the ${delivered}-byte buffer (MSG_TRUNC)`);
    this.delivered = delivered;
  }
}

/** A wait on a socket was cut short because the socket was closed. */
export class SocketClosedError extends Error {
  /** Error name. */
  override name = "SocketClosedError";
  constructor() {
    super("Socket was closed while an operation was waiting on it");
  }
}

function addressOf(b: Uint8Array<ArrayBuffer>): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
}

/** Long-lived msghdr + iovec + control + staging buffer with precomputed addresses. */
class MsgBuffers {
  readonly hdr = new Uint8Array(MSGHDR_SIZE);
  readonly iov = new Uint8Array(16);
  readonly control = new Uint8Array(CONTROL_SIZE);
  readonly stage = new Uint8Array(STAGE_SIZE);
  readonly #hdrView = new DataView(this.hdr.buffer);
  readonly #iovView = new DataView(this.iov.buffer);

  constructor() {
    encodeIovec(addressOf(this.stage), 0, this.iov);
    encodeMsghdr({
      name: 0n,
      namelen: 0,
      iov: addressOf(this.iov),
      iovlen: 1,
      control: addressOf(this.control),
      controllen: 0,
      flags: 0,
    }, this.hdr);
  }

  /** Set iov_len and msg_controllen; clear msg_flags. */
  prepare(len: number, controllen: number): void {
    this.#iovView.setBigUint64(8, BigInt(len), true);
    this.#hdrView.setBigUint64(40, BigInt(controllen), true);
    this.#hdrView.setInt32(48, 0, true);
  }

  get controllen(): number {
    return Number(this.#hdrView.getBigUint64(40, true));
  }

  get flags(): number {
    return this.#hdrView.getInt32(48, true);
  }
}

/** Result of {@link UnixSocket.recvMessage}. */
export interface ReceivedMessage {
  /** Bytes written into the caller's buffer; 0 means end of stream. */
  n: number;
  /** Fds that arrived with these bytes, owned by the caller (close-on-exec). */
  fds: OwnedFd[];
}

/** Options for {@link UnixSocket.recvMessage}. */
export interface RecvOptions {
  /** Most fds accepted in this message (default and maximum 253); more → ControlTruncatedError. */
  maxFds?: number;
  /** Abort the wait. */
  signal?: AbortSignal;
}

/**
 * A unix domain socket (stream by default) that can pass fds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { UnixSocket } from "./socket.ts";
 * const [a, b] = UnixSocket.pair();
 * using _a = a;
 * using _b = b;
 * await a.sendMessage(new TextEncoder().encode("hi"));
 * const buf = new Uint8Array(16);
 * const { n, fds } = await b.recvMessage(buf);
 * assert.equal(new TextDecoder().decode(buf.subarray(0, n)), "hi");
 * assert.equal(fds.length, 0);
 * ```
 */
export class UnixSocket implements Disposable {
  #fd: OwnedFd;
  #send?: MsgBuffers;
  #recv?: MsgBuffers;
  #sendLock = new Mutex();
  #recvLock = new Mutex();
  /** The path this socket listens on or connected to, if any. */
  readonly path?: string;

  private constructor(fd: OwnedFd, path?: string) {
    this.#fd = fd;
    this.path = path;
  }

  /** Bind and listen on a filesystem (or abstract, leading NUL) path. Fails with EADDRINUSE if it exists. */
  static listen(
    path: string,
    opts: { backlog?: number; type?: UnixSocketType } = {},
  ): UnixSocket {
    const fd = newSocket(opts.type);
    try {
      const { addr, len } = encodeSockaddrUn(path);
      check(libc().bind(fd.fd, addr, len), "bind", path);
      check(libc().listen(fd.fd, opts.backlog ?? DEFAULT_BACKLOG), "listen", path);
    } catch (e) {
      fd.close();
      throw e;
    }
    return new UnixSocket(fd, path);
  }

  /** Connect to a listening socket at `path` (retries while the listener's backlog is full). */
  static async connect(
    path: string,
    opts: { type?: UnixSocketType; signal?: AbortSignal } = {},
  ): Promise<UnixSocket> {
    const { addr, len } = encodeSockaddrUn(path);
    const fd = newSocket(opts.type);
    try {
      for (;;) {
        opts.signal?.throwIfAborted();
        if (libc().connect(fd.fd, addr, len) >= 0) break;
        const e = errno();
        if (e === ERRNO.EINTR) continue;
        if (e !== ERRNO.EAGAIN) throw new ErrnoError("connect", e, path);
        await new Promise((r) => setTimeout(r, CONNECT_RETRY_MS));
      }
    } catch (e) {
      fd.close();
      throw e;
    }
    return new UnixSocket(fd, path);
  }

  /** A connected pair (socketpair), both ends non-blocking and close-on-exec. */
  static pair(opts: { type?: UnixSocketType } = {}): [UnixSocket, UnixSocket] {
    const sv = new Int32Array(2);
    check(
      libc().socketpair(AF_UNIX, sockType(opts.type), 0, new Uint8Array(sv.buffer)),
      "socketpair",
    );
    return [new UnixSocket(new OwnedFd(sv[0])), new UnixSocket(new OwnedFd(sv[1]))];
  }

  /** Adopt a socket fd (e.g. one received over SCM_RIGHTS or from socket activation); sets O_NONBLOCK and close-on-exec. */
  static fromFd(fd: OwnedFd): UnixSocket {
    setNonblocking(fd, true);
    setCloexec(fd, true);
    return new UnixSocket(fd);
  }

  /** The socket's fd, borrowed: it stays owned (and is closed) by this socket. */
  get ownedFd(): BorrowedFd {
    return this.#fd.borrow();
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#fd.closed;
  }

  /** Accept one connection (non-blocking accept4 + event loop); the new socket is non-blocking and close-on-exec. */
  async accept(signal?: AbortSignal): Promise<UnixSocket> {
    for (;;) {
      const rc = libc().accept4(this.#fd.fd, null, null, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (rc >= 0) return new UnixSocket(new OwnedFd(rc));
      const e = errno();
      if (e === ERRNO.EINTR || e === ECONNABORTED) continue;
      if (e !== ERRNO.EAGAIN) throw new ErrnoError("accept4", e, this.path);
      await waitReadable(this.#fd, signal);
    }
  }

  /**
   * Send all of `bytes`, with `fds` attached to the first byte (SCM_RIGHTS; at most 253, and then
   * `bytes` must not be empty). Waits for writability as needed. The fds stay owned by the caller
   * (the kernel duplicates them into the message). Concurrent calls are serialised.
   */
  async sendMessage(
    bytes: Uint8Array,
    fds: readonly BorrowedFd[] = [],
    signal?: AbortSignal,
  ): Promise<void> {
    if (fds.length > SCM_MAX_FD) {
      throw new RangeError(`Too many fds for one message: ${fds.length} (at most ${SCM_MAX_FD})`);
    }
    if (fds.length > 0 && bytes.length === 0) {
      throw new RangeError("Fds need at least one byte of data to ride on");
    }
    const unlock = await this.#sendLock.lock();
    try {
      let off = 0;
      if (fds.length > 0) off = await this.#sendWithFds(bytes, fds, signal);
      const c = libc();
      const data = bytes as Uint8Array<ArrayBuffer>;
      while (off < bytes.length) {
        const chunk = off === 0 ? data : data.subarray(off);
        const rc = c.send(this.#fd.fd, chunk, BigInt(chunk.length), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (rc >= 0n) {
          off += Number(rc);
          continue;
        }
        const e = errno();
        if (e === ERRNO.EINTR) continue;
        if (e !== ERRNO.EAGAIN) throw new ErrnoError("send", e, this.path);
        await waitWritable(this.#fd, signal);
      }
    } finally {
      unlock();
    }
  }

  /** sendmsg of the first chunk with the control message; returns the bytes sent (≥ 1). */
  async #sendWithFds(
    bytes: Uint8Array,
    fds: readonly BorrowedFd[],
    signal?: AbortSignal,
  ): Promise<number> {
    const b = (this.#send ??= new MsgBuffers());
    const len = Math.min(bytes.length, STAGE_SIZE);
    for (;;) {
      // Re-encode every attempt: an fd closed while we waited must fail here (EBADF from fd getter).
      b.stage.set(bytes.subarray(0, len));
      const controllen = encodeScmRights(fds.map((f) => f.fd), b.control);
      b.prepare(len, controllen);
      const rc = libc().sendmsg(this.#fd.fd, b.hdr, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (rc > 0n) return Number(rc);
      const e = rc === 0n ? ERRNO.EIO : errno();
      if (e === ERRNO.EINTR) continue;
      if (e !== ERRNO.EAGAIN) throw new ErrnoError("sendmsg", e, this.path);
      await waitWritable(this.#fd, signal);
    }
  }

  /**
   * Receive up to `buf.length` bytes (one recvmsg) and any fds that came with them. `n === 0`
   * means the peer closed. A seqpacket message must fit in one call: at most `buf.length` and
   * 64 KiB, else {@link MessageTruncatedError}. Received fds are always owned: on MSG_CTRUNC they
   * are closed and a
   * {@link ControlTruncatedError} is thrown.
   */
  async recvMessage(buf: Uint8Array, opts: RecvOptions = {}): Promise<ReceivedMessage> {
    const maxFds = opts.maxFds ?? SCM_MAX_FD;
    if (!Number.isInteger(maxFds) || maxFds < 0 || maxFds > SCM_MAX_FD) {
      throw new RangeError(`maxFds must be an integer in 0..${SCM_MAX_FD}, got ${maxFds}`);
    }
    const unlock = await this.#recvLock.lock();
    try {
      const b = (this.#recv ??= new MsgBuffers());
      const len = Math.min(buf.length, STAGE_SIZE);
      const controlCap = maxFds === 0 ? 0 : cmsgSpace(4 * maxFds);
      for (;;) {
        b.prepare(len, controlCap);
        const rc = libc().recvmsg(this.#fd.fd, b.hdr, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (rc < 0n) {
          const e = errno();
          if (e === ERRNO.EINTR) continue;
          if (e !== ERRNO.EAGAIN) throw new ErrnoError("recvmsg", e, this.path);
          await waitReadable(this.#fd, opts.signal);
          continue;
        }
        const n = Number(rc);
        const controllen = b.controllen;
        const fds = controllen > 0
          ? scmRightsFds(decodeCmsgs(b.control, controllen)).map((fd) => new OwnedFd(fd))
          : [];
        if (b.flags & MSG_CTRUNC) {
          for (const f of fds) f.close();
          throw new ControlTruncatedError(fds.length, maxFds);
        }
        if (b.flags & MSG_TRUNC) {
          for (const f of fds) f.close();
          throw new MessageTruncatedError(n);
        }
        if (n > 0) buf.set(b.stage.subarray(0, n));
        return { n, fds };
      }
    } finally {
      unlock();
    }
  }

  /** SO_PEERCRED: pid, uid and gid of the peer process (as of connect/socketpair). */
  peerCredentials(): { pid: number; uid: number; gid: number } {
    const out = new Uint8Array(UCRED_SIZE);
    const lenBuf = new Uint32Array([UCRED_SIZE]);
    check(
      libc().getsockopt(this.#fd.fd, SOL_SOCKET, SO_PEERCRED, out, new Uint8Array(lenBuf.buffer)),
      "getsockopt(SO_PEERCRED)",
      this.path,
    );
    return decodeUcred(out);
  }

  /** shutdown(2): stop reading, writing (the peer sees EOF) or both. */
  shutdown(how: "read" | "write" | "both" = "write"): void {
    const rc = libc().shutdown(this.#fd.fd, SHUT[how]);
    if (rc < 0) {
      const e = errno();
      // ENOTCONN: the peer is already gone, which is what shutdown wanted anyway.
      if (e !== ERRNO.ENOTCONN) throw new ErrnoError("shutdown", e, this.path);
    }
  }

  /** Close; pending waits reject with {@link SocketClosedError}. Idempotent. */
  close(): void {
    if (this.#fd.closed) return;
    cancelWaits(this.#fd, new SocketClosedError());
    this.#fd.close();
  }

  /** Same as {@link UnixSocket.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** ECONNABORTED (103): a connection died in the accept queue; just accept the next one. */
const ECONNABORTED = 103;

function sockType(t: UnixSocketType = "stream"): number {
  return (t === "seqpacket" ? SOCK_SEQPACKET : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
}

function newSocket(type?: UnixSocketType): OwnedFd {
  return new OwnedFd(check(libc().socket(AF_UNIX, sockType(type), 0), "socket"));
}

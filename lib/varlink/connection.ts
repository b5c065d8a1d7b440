/**
 * One varlink connection over a unix stream socket: reads NUL-terminated messages with the fds
 * bound to each message's first byte, and writes messages with their fds on the `sendmsg` that
 * carries the first byte (spec §4.1.3, §4.1.4).
 *
 * @module
 */

import type { OwnedFd } from "../../ffi/owned_fd.ts";
import { ErrnoError } from "../../ffi/errno.ts";
import { ControlTruncatedError, SocketClosedError } from "../../ffi/socket.ts";
import {
  type FramedMessage,
  MAX_FDS_PER_CONNECTION,
  MAX_MESSAGE_SIZE,
  MessageSplitter,
  VarlinkProtocolError,
} from "./protocol.ts";
import { VarlinkTransportError } from "./errors.ts";

/**
 * What a connection needs from a socket; `UnixSocket` from `ffi/socket.ts` provides it.
 * `recvMessage` is one `recvmsg` (n = 0 at end of stream); `sendMessage` writes all bytes with
 * the fds on the first byte and leaves the fds owned by the caller.
 */
export interface MessageSocket extends Disposable {
  /** Send all of `bytes`, `fds` attached to the first byte. */
  sendMessage(bytes: Uint8Array, fds?: readonly OwnedFd[], signal?: AbortSignal): Promise<void>;
  /** One receive into `buf`. */
  recvMessage(
    buf: Uint8Array,
    opts?: { maxFds?: number; signal?: AbortSignal },
  ): Promise<{ n: number; fds: OwnedFd[] }>;
  /** Close the socket. */
  close(): void;
}

/** Size of one receive: the kernel's default unix socket chunk. */
const RECV_SIZE = 64 * 1024;

/** Limits of one connection. */
export interface ConnectionLimits {
  /** Largest message, terminator included (default {@link MAX_MESSAGE_SIZE}). */
  maxMessageSize?: number;
  /** Most received fds held in unhandled messages (default {@link MAX_FDS_PER_CONNECTION}). */
  maxFds?: number;
}

/** A received message: its JSON bytes and the fds that came with its first byte (now owned by the caller). */
export type ReceivedVarlinkMessage = FramedMessage<OwnedFd>;

/**
 * A varlink connection. Reads and writes may run concurrently; writes are serialised.
 *
 * Ownership: fds returned by {@link read} belong to the caller; fds passed to {@link write} are
 * closed once sent (or when the send fails), since their ownership has moved to the peer.
 */
export class VarlinkConnection implements Disposable {
  readonly #sock: MessageSocket;
  readonly #splitter: MessageSplitter<OwnedFd>;
  readonly #queue: ReceivedVarlinkMessage[] = [];
  readonly #buf = new Uint8Array(RECV_SIZE);
  #eof = false;
  #closed = false;
  #writeTail: Promise<void> = Promise.resolve();

  /** Create it. */
  constructor(sock: MessageSocket, limits: ConnectionLimits = {}) {
    this.#sock = sock;
    this.#splitter = new MessageSplitter<OwnedFd>({
      maxMessageSize: limits.maxMessageSize ?? MAX_MESSAGE_SIZE,
      maxFds: limits.maxFds ?? MAX_FDS_PER_CONNECTION,
    });
  }

  /** The underlying socket. */
  get socket(): MessageSocket {
    return this.#sock;
  }

  /** True once {@link close} ran. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The next message, or `null` at a clean end of stream. Throws {@link VarlinkTransportError}
   * (`protocol` for oversized/truncated input or too many fds, `closed` when the peer vanished
   * mid-message or the connection was closed, `io` otherwise).
   */
  async read(signal?: AbortSignal): Promise<ReceivedVarlinkMessage | null> {
    for (;;) {
      const next = this.#queue.shift();
      if (next) return next;
      if (this.#closed) throw new VarlinkTransportError("closed", "Varlink connection is closed");
      if (this.#eof) {
        if (this.#splitter.atBoundary) return null;
        throw new VarlinkTransportError(
          "closed",
          `Varlink connection ended inside a message (${this.#splitter.bufferedBytes} bytes unterminated)`,
        );
      }
      let n: number;
      let fds: OwnedFd[];
      try {
        ({ n, fds } = await this.#sock.recvMessage(this.#buf, { signal }));
      } catch (e) {
        throw this.#mapError(e, "read");
      }
      if (this.#closed) {
        for (const f of fds) f.close();
        throw new VarlinkTransportError("closed", "Varlink connection is closed");
      }
      if (n === 0) {
        for (const f of fds) f.close();
        this.#eof = true;
        continue;
      }
      try {
        this.#queue.push(...this.#splitter.push(this.#buf.subarray(0, n), fds));
      } catch (e) {
        throw new VarlinkTransportError("protocol", (e as Error).message, { cause: e });
      }
    }
  }

  /**
   * Send one message (already encoded, NUL included) with `fds` on its first byte. Messages are
   * sent in call order. The fds are closed afterwards, also on failure.
   */
  write(bytes: Uint8Array, fds: readonly OwnedFd[] = []): Promise<void> {
    const run = async () => {
      try {
        if (this.#closed) throw new VarlinkTransportError("closed", "Varlink connection is closed");
        await this.#sock.sendMessage(bytes, fds);
      } catch (e) {
        throw this.#mapError(e, "write");
      } finally {
        for (const f of fds) f.close();
      }
    };
    const p = this.#writeTail.then(run, run);
    this.#writeTail = p.then(() => {}, () => {});
    return p;
  }

  #mapError(e: unknown, op: string): VarlinkTransportError {
    if (e instanceof VarlinkTransportError) return e;
    if (e instanceof SocketClosedError || this.#closed) {
      return new VarlinkTransportError("closed", "Varlink connection is closed", { cause: e });
    }
    if (
      e instanceof ErrnoError && (e.is("ECONNRESET") || e.is("EPIPE") || e.is("ENOTCONN"))
    ) {
      return new VarlinkTransportError("closed", `Varlink peer went away during ${op}`, {
        cause: e,
      });
    }
    if (e instanceof ControlTruncatedError || e instanceof VarlinkProtocolError) {
      return new VarlinkTransportError("protocol", (e as Error).message, { cause: e });
    }
    return new VarlinkTransportError(
      "io",
      `Cannot ${op} varlink message: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }

  /** Close the socket and every fd still held in unhandled messages. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const m of this.#queue.splice(0)) for (const f of m.fds) f.close();
    for (const f of this.#splitter.drainFds()) f.close();
    this.#sock.close();
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

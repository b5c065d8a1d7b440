/**
 * A varlink client over a unix stream socket: {@link VarlinkClient.call} for one reply,
 * {@link VarlinkClient.callMore} for a `more` stream (an async iterable of frames), both able to
 * send and receive fds. Calls on one client run one at a time (never pipelined: replies carrying
 * fds must not be read together with an earlier reply, spec §4.1.4).
 *
 * @module
 */

import { UnixSocket } from "../../ffi/socket.ts";
import type { OwnedFd } from "../../ffi/owned_fd.ts";
import { type ConnectionLimits, type MessageSocket, VarlinkConnection } from "./connection.ts";
import { decodeReply, encodeCall, type JsonObject, type Reply } from "./protocol.ts";
import { errorFromReply, VarlinkTransportError } from "./errors.ts";
import { Mutex } from "../../ffi/mutex.ts";

/** Options of one call. */
export interface CallOptions {
  /** Fds to send with the call (closed once sent). */
  fds?: OwnedFd[];
  /** Ask for no reply; the call resolves once sent. */
  oneway?: boolean;
}

/** One reply frame. Its fds belong to the caller. */
export interface CallReply {
  /** Reply parameters (`{}` when the server sent none or null). */
  parameters: JsonObject;
  /** Fds that came with this frame. */
  fds: OwnedFd[];
  /** More frames follow. */
  continues: boolean;
}

/** Parse a varlink address: `unix:PATH`, `unix:@abstract` or a bare filesystem path. */
export function parseAddress(address: string): { path: string } {
  let p = address;
  if (p.startsWith("unix:")) p = p.slice("unix:".length);
  else if (/^[a-z]+:/.test(p) && !p.startsWith("/")) {
    throw new TypeError(`Unsupported varlink address "${address}": expected unix:PATH or a path`);
  }
  if (p.startsWith("@")) p = "\0" + p.slice(1);
  if (p.length === 0) throw new TypeError(`Invalid varlink address "${address}": empty path`);
  return { path: p };
}

/**
 * A varlink client.
 *
 * @example
 * ```ts ignore
 * using client = await VarlinkClient.connect("/run/cfs.sock");
 * const { parameters } = await client.call("org.varlink.service.GetInfo");
 * for await (const frame of client.callMore("org.composefs.Oci.Pull", { handle: 1, image })) {
 *   console.log(frame.parameters);
 * }
 * ```
 */
export class VarlinkClient implements Disposable {
  readonly #conn: VarlinkConnection;
  /** Serialises calls on one connection. */
  readonly #lock = new Mutex();
  #broken: Error | undefined;

  /** Create it. */
  constructor(sock: MessageSocket, limits: ConnectionLimits = {}) {
    this.#conn = new VarlinkConnection(sock, limits);
  }

  /** Connect to a server at `address` (see {@link parseAddress}). */
  static async connect(address: string, limits: ConnectionLimits = {}): Promise<VarlinkClient> {
    const { path } = parseAddress(address);
    return new VarlinkClient(await UnixSocket.connect(path), limits);
  }

  /** True once closed or broken by a transport error. */
  get closed(): boolean {
    return this.#conn.closed;
  }

  /**
   * Call `method` and wait for its single reply. An error reply throws the typed
   * {@link import("./errors.ts").VarlinkError} subclass; a broken connection throws
   * {@link VarlinkTransportError}.
   */
  async call(
    method: string,
    parameters: JsonObject = {},
    opts: CallOptions = {},
  ): Promise<CallReply> {
    const release = await this.#lock.lock();
    try {
      await this.#send(method, parameters, false, opts);
      if (opts.oneway) return { parameters: {}, fds: [], continues: false };
      const r = await this.#receive();
      if (r.continues) {
        for (const f of r.fds) f.close();
        throw this.#fail(
          new VarlinkTransportError("protocol", `Reply to ${method} continues without "more"`),
        );
      }
      return r;
    } finally {
      release();
    }
  }

  /**
   * Call `method` with `more: true` and yield every reply frame until the last. Breaking out of
   * the loop early closes the connection (the only way to stop a varlink stream).
   */
  async *callMore(
    method: string,
    parameters: JsonObject = {},
    opts: Omit<CallOptions, "oneway"> = {},
  ): AsyncGenerator<CallReply, void, undefined> {
    const release = await this.#lock.lock();
    let finished = false;
    try {
      await this.#send(method, parameters, true, opts);
      for (;;) {
        const r = await this.#receive();
        if (!r.continues) finished = true;
        yield r;
        if (finished) return;
      }
    } catch (e) {
      finished = true;
      throw e;
    } finally {
      if (!finished) {
        this.#fail(new VarlinkTransportError("closed", "Stream abandoned by the caller"));
      }
      release();
    }
  }

  async #send(
    method: string,
    parameters: JsonObject,
    more: boolean,
    opts: CallOptions,
  ): Promise<void> {
    if (this.#broken) {
      for (const f of opts.fds ?? []) f.close();
      throw new VarlinkTransportError("closed", "Varlink connection is closed", {
        cause: this.#broken,
      });
    }
    try {
      await this.#conn.write(
        encodeCall(method, parameters, { more, oneway: opts.oneway }),
        opts.fds,
      );
    } catch (e) {
      throw this.#fail(e as Error);
    }
  }

  async #receive(): Promise<CallReply> {
    let msg;
    try {
      msg = await this.#conn.read();
    } catch (e) {
      throw this.#fail(e as Error);
    }
    if (msg === null) {
      throw this.#fail(new VarlinkTransportError("closed", "Varlink server closed the connection"));
    }
    let reply: Reply;
    try {
      reply = decodeReply(msg.bytes);
    } catch (e) {
      for (const f of msg.fds) f.close();
      throw this.#fail(new VarlinkTransportError("protocol", (e as Error).message, { cause: e }));
    }
    if (reply.error !== undefined) {
      for (const f of msg.fds) f.close();
      throw errorFromReply(reply.error, reply.parameters);
    }
    return { parameters: reply.parameters, fds: msg.fds, continues: reply.continues };
  }

  #fail(e: Error): Error {
    this.#broken ??= e;
    this.#conn.close();
    return e;
  }

  /** Close the connection (and any fds of unread replies). Idempotent. */
  close(): void {
    this.#broken ??= new VarlinkTransportError("closed", "Varlink client was closed");
    this.#conn.close();
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

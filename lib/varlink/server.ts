/**
 * The varlink server: accepts connections on a unix socket (a path, or a socket-activation fd)
 * or serves one already connected socket (`varlinkctl exec:`), and runs each connection's calls
 * in order through a {@link VarlinkService}. All connections share the process's single epoll
 * loop; a slow call on one connection never blocks another.
 *
 * Protocol failures follow sd-varlink: unparseable input, an oversized message or too many fds
 * close that connection (and only that one); ill-typed parameters, unknown methods and `upgrade`
 * get an error reply and the connection stays open.
 *
 * @module
 */

import { UnixSocket } from "../../ffi/socket.ts";
import { effectiveUid, isListeningSocket, takeActivationFds } from "../../ffi/activation.ts";
import type { OwnedFd } from "../../ffi/owned_fd.ts";
import { ErrnoError } from "../../ffi/errno.ts";
import { type ConnectionLimits, type MessageSocket, VarlinkConnection } from "./connection.ts";
import {
  decodeCall,
  encodeErrorReply,
  encodeMessage,
  InvalidCallError,
  type JsonObject,
} from "./protocol.ts";
import { VarlinkServiceError, VarlinkTransportError } from "./errors.ts";
import type { PeerCredentials, ReplyFrame, VarlinkService } from "./service.ts";

/** Options of a {@link VarlinkServer}. */
export interface VarlinkServerOptions extends ConnectionLimits {
  /** Diagnostics sink (never stdout: under `exec:` stdout may be the protocol). Default: silent. */
  log?: (message: string) => void;
  /**
   * Uids allowed to call methods that write (PutLayer, Gc, Tag, …). Default: this process's
   * effective uid and root. `"any"` disables the check (spec §5, confused deputy).
   */
  trustedUids?: readonly number[] | "any";
  /** Most connections served at once; more are closed right after accept (default 1024). */
  maxConnections?: number;
}

/** Default cap on concurrent connections: each costs a 64 KiB buffer and an fd. */
const DEFAULT_MAX_CONNECTIONS = 1024;
/** Pause after accept fails for lack of fds (EMFILE/ENFILE), so we do not spin. */
const ACCEPT_BACKOFF_MS = 100;

/** A socket we can serve: a {@link MessageSocket} that may know its peer. */
export type ServableSocket = MessageSocket & { peerCredentials?(): PeerCredentials };

/** A listening socket (`UnixSocket` from `ffi/socket.ts` is one). */
export interface ServableListener {
  /** Accept one connection; rejects when `signal` aborts or the listener closes. */
  accept(signal?: AbortSignal): Promise<ServableSocket>;
  /** Close the listener. */
  close(): void;
  /** True once closed. */
  readonly closed: boolean;
}

/**
 * Serves a {@link VarlinkService}.
 *
 * @example
 * ```ts ignore
 * const server = new VarlinkServer(service, { log: (m) => console.error(m) });
 * await server.listen("/run/cfs.sock");
 * ```
 */
export class VarlinkServer implements AsyncDisposable {
  /** The service being served. */
  readonly service: VarlinkService;
  readonly #log: (message: string) => void;
  readonly #limits: ConnectionLimits;
  readonly #trusted: readonly number[] | undefined;
  readonly #maxConnections: number;
  readonly #connections = new Set<VarlinkConnection>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #listeners = new Set<ServableListener>();
  readonly #stop = new AbortController();
  #nextConnectionId = 1;

  /** Create it. */
  constructor(service: VarlinkService, options: VarlinkServerOptions = {}) {
    this.service = service;
    this.#log = options.log ?? (() => {});
    this.#limits = { maxMessageSize: options.maxMessageSize, maxFds: options.maxFds };
    const t = options.trustedUids;
    this.#trusted = t === "any" ? undefined : t ?? [...new Set([effectiveUid(), 0])];
    this.#maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  }

  /** Connections being served right now. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /**
   * Bind a new listening socket at `path` and serve it until {@link close}. Returns once
   * listening; `served` resolves when the accept loop ends. Who may connect is decided by the
   * socket's directory permissions and the umask (spec §5).
   */
  listen(path: string): { path: string; served: Promise<void> } {
    const socket = UnixSocket.listen(path);
    return { path, served: this.serveListener(socket) };
  }

  /** Accept connections on `listener` until {@link close} (the listener is closed then). */
  async serveListener(listener: ServableListener): Promise<void> {
    this.#listeners.add(listener);
    try {
      while (!this.#stop.signal.aborted) {
        let sock: ServableSocket;
        try {
          sock = await listener.accept(this.#stop.signal);
        } catch (e) {
          if (this.#stop.signal.aborted || listener.closed) return;
          if (e instanceof ErrnoError && (e.is("EMFILE") || e.is("ENFILE"))) {
            this.#log(`varlink: accept failed, retrying: ${e.message}`);
            await new Promise((r) => setTimeout(r, ACCEPT_BACKOFF_MS));
            continue;
          }
          throw e;
        }
        if (this.#connections.size >= this.#maxConnections) {
          this.#log(
            `varlink: refusing connection: ${this.#maxConnections} connections already open`,
          );
          sock.close();
          continue;
        }
        this.#track(this.serveConnection(sock));
      }
    } finally {
      this.#listeners.delete(listener);
      listener.close();
    }
  }

  #track(p: Promise<void>): void {
    const t = p.catch((e) => this.#log(`varlink: connection failed: ${(e as Error).message}`))
      .finally(() => this.#tasks.delete(t));
    this.#tasks.add(t);
  }

  /**
   * Serve one connected socket until the peer closes it or a protocol error ends it; the socket
   * is closed afterwards. Never rejects for peer misbehaviour.
   */
  async serveConnection(sock: ServableSocket): Promise<void> {
    const id = this.#nextConnectionId++;
    const conn = new VarlinkConnection(sock, this.#limits);
    this.#connections.add(conn);
    const gone = new AbortController();
    const stopListener = () => gone.abort(new VarlinkTransportError("closed", "Server is closing"));
    this.#stop.signal.addEventListener("abort", stopListener);
    let peer: PeerCredentials | undefined;
    try {
      peer = sock.peerCredentials?.();
    } catch (e) {
      this.#log(`varlink: connection ${id}: cannot read peer credentials: ${(e as Error).message}`);
    }
    const send = (frame: ReplyFrame): Promise<void> => {
      const bytes = frame.error !== undefined
        ? encodeErrorReply(frame.error, frame.parameters ?? {})
        : encodeMessage(replyObject(frame.parameters, frame.continues));
      return conn.write(bytes, frame.fds);
    };
    try {
      let next = conn.read();
      for (;;) {
        let msg;
        try {
          msg = await next;
        } catch (e) {
          if (!(e instanceof VarlinkTransportError && e.reason === "closed" && conn.closed)) {
            this.#log(`varlink: connection ${id}: ${(e as Error).message}`);
          }
          return;
        }
        if (msg === null) return;
        // Read ahead so a vanished peer aborts a long-running call (e.g. a Pull).
        next = conn.read();
        next.then((m) => {
          if (m === null) {
            gone.abort(new VarlinkTransportError("closed", "Peer closed the connection"));
          }
        }, (e) => gone.abort(e));
        let call;
        try {
          call = decodeCall(msg.bytes);
        } catch (e) {
          for (const f of msg.fds) f.close();
          if (e instanceof InvalidCallError) {
            await send({
              error: VarlinkServiceError.invalidParameter(e.key).error,
              parameters: { parameter: e.key },
              continues: false,
              fds: [],
            });
            continue;
          }
          this.#log(`varlink: connection ${id}: ${(e as Error).message}; closing it`);
          return;
        }
        try {
          await this.service.dispatch(call, msg.fds, {
            peer,
            signal: call.oneway ? this.#stop.signal : gone.signal,
            trustedUids: this.#trusted,
            onUnexpectedError: (method, e) =>
              this.#log(`varlink: ${method} failed: ${(e as Error).stack ?? String(e)}`),
          }, send);
        } catch (e) {
          if (!(e instanceof VarlinkTransportError && e.reason === "closed")) {
            this.#log(`varlink: connection ${id}: ${(e as Error).message}; closing it`);
          }
          return;
        }
      }
    } finally {
      this.#stop.signal.removeEventListener("abort", stopListener);
      gone.abort(new VarlinkTransportError("closed", "Connection ended"));
      this.#connections.delete(conn);
      conn.close();
    }
  }

  /** Stop accepting, close every connection and wait for their loops to end. Idempotent. */
  async close(): Promise<void> {
    this.#stop.abort(new VarlinkTransportError("closed", "Server is closing"));
    for (const l of this.#listeners) l.close();
    for (const c of this.#connections) c.close();
    while (this.#tasks.size > 0) await Promise.all([...this.#tasks]);
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function replyObject(parameters: JsonObject | undefined, continues: boolean): JsonObject {
  const o: JsonObject = {};
  if (parameters !== undefined) o.parameters = parameters;
  o.continues = continues;
  return o;
}

/** How {@link serveActivated} found its socket. */
export type ActivationMode = "listening" | "connected";

/**
 * Serve on the socket-activation fd (fd 3): a listening socket gets the accept loop (until
 * {@link VarlinkServer.close}); a connected socket (`varlinkctl exec:`) is served alone and the
 * promise resolves when that connection ends (reference quirk §9.9 fixed: we exit at EOF).
 * Returns undefined when the process was not socket-activated.
 */
export function serveActivated(
  server: VarlinkServer,
): { mode: ActivationMode; served: Promise<void> } | undefined {
  const act = takeActivationFds();
  if (!act) return undefined;
  const [first, ...rest] = act.fds;
  for (const f of rest) f.close();
  return serveFd(server, first);
}

/** Serve an already open socket fd: listening → accept loop, connected → that one connection. */
export function serveFd(
  server: VarlinkServer,
  fd: OwnedFd,
): { mode: ActivationMode; served: Promise<void> } {
  const listening = isListeningSocket(fd);
  const sock = UnixSocket.fromFd(fd);
  return listening
    ? { mode: "listening", served: server.serveListener(sock) }
    : { mode: "connected", served: server.serveConnection(sock) };
}

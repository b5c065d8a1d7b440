/**
 * A varlink service: interfaces (IDL text plus one handler per method), the built-in
 * `org.varlink.service`, and the dispatcher that turns one call into its reply frames.
 *
 * The dispatcher does not know about sockets: it gets a decoded call, the fds that came with it
 * and a `send` callback, so it is testable on its own. Before a handler runs, the call is checked
 * in this order: `upgrade` (→ `InvalidParameter {parameter: "upgrade"}`), method known
 * (→ `MethodNotFound`), parameters valid against the IDL (→ `InvalidParameter`), peer allowed to
 * write (→ `PermissionDenied`).
 *
 * @module
 */

import type { OwnedFd } from "../../ffi/owned_fd.ts";
import { type IdlInterface, type IdlMethod, parseIdl, validateValue } from "./idl.ts";
import { type Call, type JsonObject, splitQualifiedName } from "./protocol.ts";
import { VARLINK_SERVICE, VarlinkError, VarlinkServiceError } from "./errors.ts";
import VARLINK_SERVICE_IDL from "./org.varlink.service.varlink" with { type: "text" };

/** Credentials of the peer process (SO_PEERCRED). */
export interface PeerCredentials {
  /** Process id. */
  pid: number;
  /** User id. */
  uid: number;
  /** Group id. */
  gid: number;
}

/** What a handler knows about the call it serves. */
export interface CallContext {
  /** Fully qualified method name. */
  readonly method: string;
  /** The caller accepts several replies. */
  readonly more: boolean;
  /** The caller wants no reply. */
  readonly oneway: boolean;
  /** The peer, when known. */
  readonly peer?: PeerCredentials;
  /** Aborted when the connection goes away (a streaming handler should stop). */
  readonly signal: AbortSignal;
  /** Number of fds that came with the call. */
  readonly fdCount: number;
  /**
   * Take ownership of the call's fd at `index` (its position in the SCM_RIGHTS array).
   * Throws `InvalidParameter {parameter: "fds"}` when out of range or already taken.
   * Fds not taken are closed when the call ends.
   */
  takeFd(index: number): OwnedFd;
  /** Take every fd not taken yet, in order. */
  takeFds(): OwnedFd[];
}

/** One reply frame from a handler: parameters and the fds to send with it. */
export interface MethodReply {
  /** Reply parameters; omitted on the wire when undefined. */
  parameters?: JsonObject;
  /** Fds attached to this frame (ownership passes to the connection). */
  fds?: OwnedFd[];
}

/**
 * A method implementation. Return (a promise of) one reply, or an async iterable of frames for
 * a streaming method; throw a {@link VarlinkError} for an error reply.
 */
export type MethodHandler = (
  params: JsonObject,
  ctx: CallContext,
) => Promise<MethodReply | void> | AsyncIterable<MethodReply>;

/** A method with options. */
export interface MethodSpec {
  /** The implementation. */
  handler: MethodHandler;
  /** Changes repository state: only trusted peers may call it (see `trustedUids`). */
  writes?: boolean;
  /** Fill wire defaults (serde `#[serde(default)]` fields) before validation. */
  normalize?: (params: JsonObject) => JsonObject;
}

/** An interface: its IDL text and a handler for every method it declares. */
export interface InterfaceDefinition {
  /** The IDL text served by `GetInterfaceDescription`. */
  idl: string;
  /** Handlers by unqualified method name; must match the IDL's methods exactly. */
  methods: Record<string, MethodHandler | MethodSpec>;
  /**
   * Turn an unexpected exception into an error reply. Default: the interface's
   * `InternalError {message}` when it declares one.
   */
  internalError?: (e: unknown) => VarlinkError;
}

/** A method/handler mismatch between an IDL and its handlers. */
export class InterfaceDefinitionError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "InterfaceDefinitionError";
  /** Interface name. */
  readonly interface: string;
  /** Create it. */
  constructor(iface: string, message: string) {
    super(`Invalid varlink interface "${iface}": ${message}`);
    this.interface = iface;
  }
}

/** A parsed, checked interface. */
export class VarlinkInterface {
  /** Interface name. */
  readonly name: string;
  /** IDL text. */
  readonly description: string;
  /** Parsed IDL. */
  readonly idl: IdlInterface;
  readonly #methods: Map<string, MethodSpec>;
  readonly #internalError?: (e: unknown) => VarlinkError;

  /** Create it. */
  constructor(def: InterfaceDefinition) {
    this.description = def.idl;
    this.idl = parseIdl(def.idl);
    this.name = this.idl.name;
    this.#methods = new Map();
    for (const [name, m] of Object.entries(def.methods)) {
      if (!this.idl.methods.has(name)) {
        throw new InterfaceDefinitionError(this.name, `handler "${name}" has no IDL method`);
      }
      this.#methods.set(name, typeof m === "function" ? { handler: m } : m);
    }
    for (const name of this.idl.methods.keys()) {
      if (!this.#methods.has(name)) {
        throw new InterfaceDefinitionError(this.name, `IDL method "${name}" has no handler`);
      }
    }
    this.#internalError = def.internalError;
  }

  /** The method spec and IDL declaration of `member`, if declared. */
  method(member: string): { spec: MethodSpec; decl: IdlMethod } | undefined {
    const spec = this.#methods.get(member);
    const decl = this.idl.methods.get(member);
    return spec && decl ? { spec, decl } : undefined;
  }

  /** The error reply for an unexpected exception, or undefined if the interface has none. */
  internalError(e: unknown): VarlinkError | undefined {
    if (this.#internalError) return this.#internalError(e);
    const decl = this.idl.errors.get("InternalError");
    if (decl?.parameters.fields.some((f) => f.name === "message")) {
      return new VarlinkError(`${this.name}.InternalError`, {
        message: e instanceof Error ? e.message : String(e),
      }, { cause: e });
    }
    return undefined;
  }
}

/** Identification returned by `org.varlink.service.GetInfo`. */
export interface ServiceInfo {
  /** e.g. `org.composefs`. */
  vendor: string;
  /** e.g. `cfsctl`. */
  product: string;
  /** e.g. `0.9.0`. */
  version: string;
  /** Project URL. */
  url: string;
}

/** One reply frame ready to encode. */
export interface ReplyFrame {
  /** Parameters (error fields for an error). */
  parameters?: JsonObject;
  /** Qualified error name for an error reply. */
  error?: string;
  /** More frames follow. */
  continues: boolean;
  /** Fds to attach (ownership passes to the sender). */
  fds: OwnedFd[];
}

/** Per-call facts the server supplies to {@link VarlinkService.dispatch}. */
export interface DispatchContext {
  /** The peer, when known. */
  peer?: PeerCredentials;
  /** Aborted when the connection goes away. */
  signal: AbortSignal;
  /** Uids allowed to call `writes` methods; undefined = everyone. */
  trustedUids?: readonly number[];
  /** Called with unexpected handler exceptions (for logging). */
  onUnexpectedError?: (method: string, e: unknown) => void;
}

/** Options of a {@link VarlinkService}. */
export interface VarlinkServiceOptions {
  /**
   * Check every successful reply against the method's IDL output (strict: no undeclared keys)
   * and every interface error against its declaration; a mismatch becomes an error reply.
   * Meant for tests.
   */
  checkReplies?: boolean;
}

/**
 * A set of interfaces plus `org.varlink.service`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { VarlinkService } from "./service.ts";
 * const svc = new VarlinkService({ vendor: "v", product: "p", version: "1", url: "u" });
 * svc.add({
 *   idl: "interface org.example.Ping\nmethod Ping(n: int) -> (n: int)\n",
 *   methods: { Ping: (p) => Promise.resolve({ parameters: { n: p.n } }) },
 * });
 * const frames: unknown[] = [];
 * await svc.dispatch(
 *   { method: "org.example.Ping.Ping", parameters: { n: 7 }, more: false, oneway: false, upgrade: false },
 *   [],
 *   { signal: new AbortController().signal },
 *   (f) => { frames.push(f); return Promise.resolve(); },
 * );
 * assert.deepEqual(frames, [{ parameters: { n: 7 }, continues: false, fds: [] }]);
 * ```
 */
export class VarlinkService {
  /** What `org.varlink.service.GetInfo` reports. */
  readonly info: ServiceInfo;
  readonly #interfaces = new Map<string, VarlinkInterface>();
  readonly #checkReplies: boolean;

  /** Create it. */
  constructor(info: ServiceInfo, options: VarlinkServiceOptions = {}) {
    this.info = info;
    this.#checkReplies = options.checkReplies ?? false;
    this.#interfaces.set(
      VARLINK_SERVICE,
      new VarlinkInterface({
        idl: VARLINK_SERVICE_IDL,
        methods: {
          GetInfo: () =>
            Promise.resolve({
              parameters: { ...this.info, interfaces: this.interfaceNames() },
            }),
          GetInterfaceDescription: (p) => {
            const iface = this.#interfaces.get(p.interface as string);
            if (!iface) throw VarlinkServiceError.interfaceNotFound(p.interface as string);
            return Promise.resolve({ parameters: { description: iface.description } });
          },
        },
      }),
    );
  }

  /** Add an interface (checked against its IDL). */
  add(def: InterfaceDefinition | VarlinkInterface): VarlinkInterface {
    const iface = def instanceof VarlinkInterface ? def : new VarlinkInterface(def);
    if (this.#interfaces.has(iface.name)) {
      throw new InterfaceDefinitionError(iface.name, "already added");
    }
    this.#interfaces.set(iface.name, iface);
    return iface;
  }

  /** Interface names in order of addition, `org.varlink.service` last (as zlink lists them). */
  interfaceNames(): string[] {
    const names = [...this.#interfaces.keys()].filter((n) => n !== VARLINK_SERVICE);
    return [...names, VARLINK_SERVICE];
  }

  /** The interface named `name`. */
  interface(name: string): VarlinkInterface | undefined {
    return this.#interfaces.get(name);
  }

  /**
   * Run one call and hand its reply frames to `send` (nothing for `oneway` calls, whose reply
   * fds are closed). Request fds the handler did not take are closed at the end. Never throws
   * for handler failures (they become error replies); rejects only when `send` rejects or an
   * unexpected exception has no error reply to map to (the caller should close the connection).
   */
  async dispatch(
    call: Call,
    fds: OwnedFd[],
    ctx: DispatchContext,
    send: (frame: ReplyFrame) => Promise<void>,
  ): Promise<void> {
    const taken = new Array<boolean>(fds.length).fill(false);
    let sendFailed = false;
    const out = async (frame: ReplyFrame): Promise<void> => {
      if (call.oneway) {
        for (const f of frame.fds) f.close();
        return;
      }
      try {
        await send(frame);
      } catch (e) {
        sendFailed = true;
        throw e;
      }
    };
    let iface: VarlinkInterface | undefined;
    try {
      if (call.upgrade) throw VarlinkServiceError.invalidParameter("upgrade");
      const name = splitQualifiedName(call.method);
      iface = name && this.#interfaces.get(name.interface);
      const m = name && iface?.method(name.member);
      if (!iface || !m) throw VarlinkServiceError.methodNotFound(call.method);
      const params = m.spec.normalize ? m.spec.normalize(call.parameters) : call.parameters;
      const bad = validateValue(iface.idl, m.decl.input, params);
      if (bad) throw VarlinkServiceError.invalidParameter(String(bad.path[0] ?? "parameters"));
      if (
        m.spec.writes && ctx.trustedUids !== undefined && ctx.peer !== undefined &&
        !ctx.trustedUids.includes(ctx.peer.uid)
      ) {
        throw VarlinkServiceError.permissionDenied();
      }
      const callCtx: CallContext = {
        method: call.method,
        more: call.more,
        oneway: call.oneway,
        peer: ctx.peer,
        signal: ctx.signal,
        fdCount: fds.length,
        takeFd(index: number): OwnedFd {
          if (!Number.isInteger(index) || index < 0 || index >= fds.length || taken[index]) {
            throw VarlinkServiceError.invalidParameter("fds");
          }
          taken[index] = true;
          return fds[index];
        },
        takeFds(): OwnedFd[] {
          const all: OwnedFd[] = [];
          fds.forEach((f, i) => {
            if (!taken[i]) {
              taken[i] = true;
              all.push(f);
            }
          });
          return all;
        },
      };
      const result = m.spec.handler(params, callCtx);
      const check = (r: MethodReply): MethodReply => this.#checkReply(iface!, m.decl, r);
      if (isAsyncIterable(result)) {
        await this.#stream(result, call.more, check, out);
      } else {
        const r = check((await result) ?? {});
        await out({ parameters: r.parameters, continues: false, fds: r.fds ?? [] });
      }
    } catch (e) {
      if (sendFailed) throw e;
      const err = this.#toErrorReply(iface, call.method, e, ctx);
      if (err === undefined) throw e;
      await out({ error: err.error, parameters: err.parameters, continues: false, fds: [] });
    } finally {
      fds.forEach((f, i) => {
        if (!taken[i]) f.close();
      });
    }
  }

  async #stream(
    frames: AsyncIterable<MethodReply>,
    more: boolean,
    check: (r: MethodReply) => MethodReply,
    out: (f: ReplyFrame) => Promise<void>,
  ): Promise<void> {
    let pending: MethodReply | undefined;
    try {
      for await (const frame of frames) {
        const f = check(frame);
        if (pending !== undefined) {
          const p = pending;
          pending = undefined;
          if (more) await out({ parameters: p.parameters, continues: true, fds: p.fds ?? [] });
          else for (const fd of p.fds ?? []) fd.close();
        }
        pending = f;
      }
    } catch (e) {
      for (const fd of pending?.fds ?? []) fd.close();
      throw e;
    }
    const last = pending ?? {};
    await out({ parameters: last.parameters, continues: false, fds: last.fds ?? [] });
  }

  #checkReply(iface: VarlinkInterface, decl: IdlMethod, r: MethodReply): MethodReply {
    if (!this.#checkReplies) return r;
    const bad = validateValue(iface.idl, decl.output, r.parameters ?? {}, { strict: true });
    if (bad) {
      for (const fd of r.fds ?? []) fd.close();
      throw new Error(
        `Reply of ${iface.name}.${decl.name} does not match the IDL: ${
          bad.path.join(".")
        } ${bad.reason}`,
      );
    }
    return r;
  }

  #toErrorReply(
    iface: VarlinkInterface | undefined,
    method: string,
    e: unknown,
    ctx: DispatchContext,
  ): VarlinkError | undefined {
    if (e instanceof VarlinkError) {
      if (this.#checkReplies && iface && e.interface === iface.name) {
        const decl = iface.idl.errors.get(e.kind);
        const bad = decl &&
          validateValue(iface.idl, decl.parameters, e.parameters, { strict: true });
        if (!decl || bad) {
          return iface.internalError(
            new Error(
              `Error ${e.error} does not match the IDL${
                bad ? `: ${bad.path.join(".")} ${bad.reason}` : ""
              }`,
            ),
          );
        }
      }
      return e;
    }
    ctx.onUnexpectedError?.(method, e);
    return iface?.internalError(e);
  }
}

function isAsyncIterable(v: unknown): v is AsyncIterable<MethodReply> {
  return typeof v === "object" && v !== null && Symbol.asyncIterator in v;
}

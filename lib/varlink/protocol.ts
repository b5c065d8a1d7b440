/**
 * The varlink wire protocol, pure: NUL-terminated JSON messages, call and reply objects, and a
 * splitter that cuts a byte stream into messages and binds each `recvmsg`'s file descriptors to
 * the first message that starts inside that `recvmsg`'s data (the sd-varlink / zlink / varlink-go
 * rule, spec varlink-api §4.1.4).
 *
 * | Call key     | Type            | Default |
 * | ------------ | --------------- | ------- |
 * | `method`     | string          | —       |
 * | `parameters` | object or null  | `{}`    |
 * | `oneway`     | bool            | false   |
 * | `more`       | bool            | false   |
 * | `upgrade`    | bool            | false   |
 *
 * A reply carries only `parameters`, `continues` and `error`.
 *
 * Integers beyond 2^53 are parsed losslessly as `bigint` and written back as plain JSON integers.
 *
 * This file never touches `Deno` or `ffi/`.
 *
 * @module
 */

import { concatBytes } from "../bytes.ts";

/** A JSON value as varlink carries it; integers beyond 2^53 are `bigint`. */
export type JsonValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/**
 * Largest message we accept, terminator included. `FinalizeImage` and `Inspect` carry whole
 * manifests and configs, so this must be several MiB (spec §1.1); 16 MiB is sd-varlink's
 * `VARLINK_BUFFER_MAX`, so anything varlinkctl can send fits.
 */
export const MAX_MESSAGE_SIZE = 16 * 1024 * 1024;

/**
 * Most received file descriptors a connection may hold in messages not yet handled. One message
 * carries at most 253 (`SCM_MAX_FD`); 1024 equals zlink's receive buffer and leaves room for a
 * few pipelined fd-carrying calls while bounding what a client can pin in our fd table.
 */
export const MAX_FDS_PER_CONNECTION = 1024;

/** A decoded call (flags defaulted, parameters normalized to an object). */
export interface Call {
  /** Fully qualified method name, `interface.Method`. */
  method: string;
  /** Arguments; `{}` when absent or `null` on the wire. */
  parameters: JsonObject;
  /** The caller wants no reply. */
  oneway: boolean;
  /** The caller accepts several replies (`continues`). */
  more: boolean;
  /** The caller asks for a protocol upgrade (never used by composefs). */
  upgrade: boolean;
}

/** A decoded reply. */
export interface Reply {
  /** Reply parameters (error fields for an error reply); `{}` when absent or null. */
  parameters: JsonObject;
  /** More replies follow. */
  continues: boolean;
  /** Qualified error name, for an error reply. */
  error?: string;
}

/** Bytes that are not a well-formed varlink message; fatal for the connection. */
export class VarlinkProtocolError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "VarlinkProtocolError";
  /** Create it. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** A message longer than the limit; fatal for the connection (sd-varlink: ENOBUFS). */
export class MessageTooLargeError extends VarlinkProtocolError {
  /** Error name, for matching without `instanceof`. */
  override name = "MessageTooLargeError";
  /** Bytes buffered so far without a terminator. */
  readonly size: number;
  /** The limit. */
  readonly limit: number;
  /** Create it. */
  constructor(size: number, limit: number) {
    super(
      `Cannot read varlink message: ${size} bytes without a terminator exceed the ${limit}-byte limit`,
    );
    this.size = size;
    this.limit = limit;
  }
}

/** More received file descriptors than a connection may hold; fatal for the connection. */
export class TooManyFdsError extends VarlinkProtocolError {
  /** Error name, for matching without `instanceof`. */
  override name = "TooManyFdsError";
  /** Descriptors that would be held. */
  readonly count: number;
  /** The limit. */
  readonly limit: number;
  /** Create it. */
  constructor(count: number, limit: number) {
    super(
      `Cannot accept file descriptors: ${count} pending exceed the per-connection limit of ${limit}`,
    );
    this.count = count;
    this.limit = limit;
  }
}

/** A call whose envelope is well-formed JSON but whose fields have the wrong types. */
export class InvalidCallError extends VarlinkProtocolError {
  /** Error name, for matching without `instanceof`. */
  override name = "InvalidCallError";
  /** The offending key (`method`, `parameters`, `oneway`, `more`, `upgrade`). */
  readonly key: string;
  /** The method, when it was readable (so a reply can still be routed). */
  readonly method?: string;
  /** Create it. */
  constructor(key: string, message: string, method?: string) {
    super(message);
    this.key = key;
    this.method = method;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

type Reviver = (
  this: unknown,
  key: string,
  value: unknown,
  context: { source?: string },
) => unknown;
const INTEGER = /^-?(0|[1-9][0-9]*)$/;
const losslessReviver: Reviver = (_key, value, context) => {
  if (
    typeof value === "number" && !Number.isSafeInteger(value) && context.source !== undefined &&
    INTEGER.test(context.source)
  ) {
    return BigInt(context.source);
  }
  return value;
};

/**
 * Parse JSON text; integers outside the safe range become `bigint` (lossless, spec §1.3).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseJson } from "./protocol.ts";
 * assert.deepEqual(parseJson('{"n":18446744073709551615}'), { n: 18446744073709551615n });
 * ```
 */
export function parseJson(text: string): JsonValue {
  return (JSON.parse as (t: string, r: Reviver) => JsonValue)(text, losslessReviver);
}

const rawJson = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;

/** Serialize to JSON; `bigint` becomes a plain integer, never a string or exponent. */
export function stringifyJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => typeof v === "bigint" ? rawJson(v.toString()) : v);
}

/** `JSON + "\0"` as UTF-8 bytes. */
export function encodeMessage(value: unknown): Uint8Array<ArrayBuffer> {
  const body = encoder.encode(stringifyJson(value));
  const out = new Uint8Array(body.length + 1);
  out.set(body);
  return out;
}

/** Bytes of a call message. `parameters` is omitted when empty; false flags are omitted. */
export function encodeCall(
  method: string,
  parameters: JsonObject = {},
  flags: { oneway?: boolean; more?: boolean; upgrade?: boolean } = {},
): Uint8Array<ArrayBuffer> {
  const msg: Record<string, unknown> = { method };
  if (Object.keys(parameters).length > 0) msg.parameters = parameters;
  if (flags.oneway) msg.oneway = true;
  if (flags.more) msg.more = true;
  if (flags.upgrade) msg.upgrade = true;
  return encodeMessage(msg);
}

/** Bytes of a successful reply; `parameters` omitted when undefined. */
export function encodeReply(
  parameters: JsonObject | undefined,
  continues: boolean,
): Uint8Array<ArrayBuffer> {
  const msg: Record<string, unknown> = {};
  if (parameters !== undefined) msg.parameters = parameters;
  msg.continues = continues;
  return encodeMessage(msg);
}

/** Bytes of an error reply (always final, always with a parameters object). */
export function encodeErrorReply(
  error: string,
  parameters: JsonObject = {},
): Uint8Array<ArrayBuffer> {
  return encodeMessage({ error, parameters });
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function parseBody(bytes: Uint8Array): JsonValue {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch (e) {
    throw new VarlinkProtocolError("Cannot decode varlink message: not valid UTF-8", { cause: e });
  }
  try {
    return parseJson(text);
  } catch (e) {
    throw new VarlinkProtocolError("Cannot decode varlink message: not valid JSON", { cause: e });
  }
}

/**
 * Decode a call from a message body (without the terminator).
 *
 * Unparseable bytes or a missing/non-string `method` throw {@link VarlinkProtocolError} (the
 * connection must be closed); a readable method with ill-typed flags or parameters throws
 * {@link InvalidCallError} carrying the method, so the server can answer `InvalidParameter`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCall } from "./protocol.ts";
 * const call = decodeCall(new TextEncoder().encode('{"method":"a.b.C","parameters":null}'));
 * assert.deepEqual(call, { method: "a.b.C", parameters: {}, oneway: false, more: false, upgrade: false });
 * ```
 */
export function decodeCall(bytes: Uint8Array): Call {
  const v = parseBody(bytes);
  if (!isObject(v)) throw new VarlinkProtocolError("Cannot decode varlink call: not a JSON object");
  const method = v.method;
  if (typeof method !== "string") {
    throw new VarlinkProtocolError(
      'Cannot decode varlink call: "method" is missing or not a string',
    );
  }
  const flag = (key: "oneway" | "more" | "upgrade"): boolean => {
    const f = v[key];
    if (f === undefined || f === null) return false;
    if (typeof f !== "boolean") {
      throw new InvalidCallError(key, `Invalid varlink call: "${key}" is not a boolean`, method);
    }
    return f;
  };
  const oneway = flag("oneway");
  const more = flag("more");
  const upgrade = flag("upgrade");
  const p = v.parameters;
  if (p !== undefined && p !== null && !isObject(p)) {
    throw new InvalidCallError(
      "parameters",
      'Invalid varlink call: "parameters" is not an object',
      method,
    );
  }
  return { method, parameters: p ?? {}, oneway, more, upgrade };
}

const REPLY_KEYS = new Set(["parameters", "continues", "error"]);

/**
 * Decode a reply from a message body, as strictly as sd-varlink: only `parameters`, `continues`
 * and `error` keys; `parameters` an object or null; an error reply never continues.
 */
export function decodeReply(bytes: Uint8Array): Reply {
  const v = parseBody(bytes);
  if (!isObject(v)) {
    throw new VarlinkProtocolError("Cannot decode varlink reply: not a JSON object");
  }
  for (const k of Object.keys(v)) {
    if (!REPLY_KEYS.has(k)) {
      throw new VarlinkProtocolError(`Cannot decode varlink reply: unexpected key "${k}"`);
    }
  }
  const p = v.parameters;
  if (p !== undefined && p !== null && !isObject(p)) {
    throw new VarlinkProtocolError('Cannot decode varlink reply: "parameters" is not an object');
  }
  const c = v.continues;
  if (c !== undefined && c !== null && typeof c !== "boolean") {
    throw new VarlinkProtocolError('Cannot decode varlink reply: "continues" is not a boolean');
  }
  const e = v.error;
  if (e !== undefined && e !== null && typeof e !== "string") {
    throw new VarlinkProtocolError('Cannot decode varlink reply: "error" is not a string');
  }
  if (typeof e === "string" && c === true) {
    throw new VarlinkProtocolError("Cannot decode varlink reply: an error reply cannot continue");
  }
  const reply: Reply = { parameters: p ?? {}, continues: c === true };
  if (typeof e === "string") reply.error = e;
  return reply;
}

/** A complete message body (terminator stripped) and the fds bound to it. */
export interface FramedMessage<F> {
  /** The JSON bytes, without the NUL. */
  bytes: Uint8Array;
  /** Descriptors that arrived with this message's first byte. */
  fds: F[];
}

/** Limits for a {@link MessageSplitter}. */
export interface SplitterLimits {
  /** Largest message in bytes, terminator included. Default {@link MAX_MESSAGE_SIZE}. */
  maxMessageSize?: number;
  /** Most descriptors held in unfinished messages. Default {@link MAX_FDS_PER_CONNECTION}. */
  maxFds?: number;
}

/**
 * Cuts a byte stream into NUL-terminated messages and binds fd batches to messages.
 *
 * Each {@link push} is one `recvmsg`: its data and the fds that came with it. The fds belong to
 * the first message whose first byte lies in that data. If no message starts there (the batch
 * arrived in the middle of a message, which a conforming sender never causes), they wait for the
 * next message that starts, as zlink does. On any error the splitter is poisoned; the caller must
 * close the connection (and the fds it gets back from {@link drainFds}).
 *
 * Generic over the fd type so it stays pure.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MessageSplitter } from "./protocol.ts";
 * const s = new MessageSplitter<string>();
 * const t = new TextEncoder();
 * assert.deepEqual(s.push(t.encode('{"a":1}\0{"b"'), ["fd0"]).map((m) => m.fds), [["fd0"]]);
 * assert.equal(s.push(t.encode(":2}\0"), []).length, 1);
 * ```
 */
export class MessageSplitter<F> {
  #chunks: Uint8Array[] = [];
  #partialLength = 0;
  /** fds waiting for the next message start. */
  #pendingFds: F[] = [];
  /** fds bound to the message currently being assembled. */
  #currentFds: F[] | undefined;
  readonly #maxMessageSize: number;
  readonly #maxFds: number;
  #failed = false;

  /** Create it. */
  constructor(limits: SplitterLimits = {}) {
    this.#maxMessageSize = limits.maxMessageSize ?? MAX_MESSAGE_SIZE;
    this.#maxFds = limits.maxFds ?? MAX_FDS_PER_CONNECTION;
  }

  /** Bytes buffered in an unfinished message. */
  get bufferedBytes(): number {
    return this.#partialLength;
  }

  /** Descriptors held in unfinished messages. */
  get heldFds(): number {
    return this.#pendingFds.length + (this.#currentFds?.length ?? 0);
  }

  /**
   * Feed one receive: `data` and the descriptors that came with it. Returns the messages that
   * completed. Throws {@link MessageTooLargeError} or {@link TooManyFdsError}; the fds passed in
   * are then held by the splitter (get them with {@link drainFds} to close them).
   */
  push(data: Uint8Array, fds: F[]): FramedMessage<F>[] {
    if (this.#failed) {
      throw new VarlinkProtocolError("Cannot read varlink message: stream already failed");
    }
    if (fds.length > 0) {
      this.#pendingFds.push(...fds);
      if (this.heldFds > this.#maxFds) {
        this.#failed = true;
        throw new TooManyFdsError(this.heldFds, this.#maxFds);
      }
    }
    const out: FramedMessage<F>[] = [];
    let start = 0;
    while (start < data.length) {
      if (this.#partialLength === 0 && this.#currentFds === undefined) {
        // A message starts here: it takes the fds waiting for a start.
        this.#currentFds = this.#pendingFds;
        this.#pendingFds = [];
      }
      const nul = data.indexOf(0, start);
      const end = nul < 0 ? data.length : nul;
      const size = this.#partialLength + (end - start) + 1;
      if (size > this.#maxMessageSize) {
        this.#failed = true;
        throw new MessageTooLargeError(size, this.#maxMessageSize);
      }
      if (nul < 0) {
        this.#chunks.push(data.slice(start));
        this.#partialLength += data.length - start;
        break;
      }
      let bytes: Uint8Array;
      if (this.#chunks.length === 0) {
        bytes = data.slice(start, nul);
      } else {
        this.#chunks.push(data.subarray(start, nul));
        bytes = concatBytes(this.#chunks);
        this.#chunks = [];
      }
      out.push({ bytes, fds: this.#currentFds ?? [] });
      this.#currentFds = undefined;
      this.#partialLength = 0;
      start = nul + 1;
    }
    return out;
  }

  /** True when the stream ended cleanly between messages (no partial bytes, no stray fds). */
  get atBoundary(): boolean {
    return this.#partialLength === 0 && this.heldFds === 0;
  }

  /** Take every fd the splitter still holds (to close them on teardown). */
  drainFds(): F[] {
    const fds = [...(this.#currentFds ?? []), ...this.#pendingFds];
    this.#currentFds = this.#partialLength > 0 ? [] : undefined;
    this.#pendingFds = [];
    return fds;
  }
}

/** Varlink interface and method name rules (varlink.org "Interface Name", "Method Name"). */
const INTERFACE_NAME = /^[A-Za-z](?:-*[A-Za-z0-9])*(?:\.[A-Za-z0-9](?:-*[A-Za-z0-9])*)+$/;
const MEMBER_NAME = /^[A-Z][A-Za-z0-9]*$/;

/** Split `org.example.Iface.Method` into interface and member, or undefined if malformed. */
export function splitQualifiedName(
  name: string,
): { interface: string; member: string } | undefined {
  const dot = name.lastIndexOf(".");
  if (dot <= 0) return undefined;
  const iface = name.slice(0, dot);
  const member = name.slice(dot + 1);
  if (!INTERFACE_NAME.test(iface) || !MEMBER_NAME.test(member)) return undefined;
  return { interface: iface, member };
}

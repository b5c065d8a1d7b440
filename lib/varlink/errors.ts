/**
 * Varlink errors: {@link VarlinkError} is an error *reply* (a qualified name plus parameters),
 * which a handler throws and a client receives; {@link VarlinkTransportError} is everything below
 * that (connection closed, protocol violation). The `org.varlink.service` errors and the two
 * composefs interfaces' errors get subclasses so callers can use `instanceof` and read typed
 * fields.
 *
 * @module
 */

import type { JsonObject } from "./protocol.ts";

/** An error reply: `{"error": name, "parameters": {...}}`. */
export class VarlinkError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "VarlinkError";
  /** Qualified error name, e.g. `org.composefs.Oci.NoSuchLayer`. */
  readonly error: string;
  /** Error parameters (may be `{}`). */
  readonly parameters: JsonObject;

  /** Create it. */
  constructor(error: string, parameters: JsonObject = {}, options?: ErrorOptions) {
    super(describe(error, parameters), options);
    this.error = error;
    this.parameters = parameters;
  }

  /** The unqualified error name, e.g. `NoSuchLayer`. */
  get kind(): string {
    return this.error.slice(this.error.lastIndexOf(".") + 1);
  }

  /** The interface part of the name, e.g. `org.composefs.Oci`. */
  get interface(): string {
    return this.error.slice(0, this.error.lastIndexOf("."));
  }
}

function describe(error: string, parameters: JsonObject): string {
  const msg = parameters.message;
  if (typeof msg === "string") return `${error}: ${msg}`;
  const fields = Object.entries(parameters).map(([k, v]) => `${k} "${String(v)}"`);
  return fields.length ? `${error}: ${fields.join(", ")}` : error;
}

/** Name of the standard interface every varlink service implements. */
export const VARLINK_SERVICE = "org.varlink.service";

/** An `org.varlink.service.*` error (protocol-level: unknown method, bad parameter, ...). */
export class VarlinkServiceError extends VarlinkError {
  /** Error name, for matching without `instanceof`. */
  override name = "VarlinkServiceError";

  /** `InterfaceNotFound {interface}`. */
  static interfaceNotFound(iface: string): VarlinkServiceError {
    return new VarlinkServiceError(`${VARLINK_SERVICE}.InterfaceNotFound`, { interface: iface });
  }
  /** `MethodNotFound {method}` (we send the full method name, spec §9.1). */
  static methodNotFound(method: string): VarlinkServiceError {
    return new VarlinkServiceError(`${VARLINK_SERVICE}.MethodNotFound`, { method });
  }
  /** `MethodNotImplemented {method}`. */
  static methodNotImplemented(method: string): VarlinkServiceError {
    return new VarlinkServiceError(`${VARLINK_SERVICE}.MethodNotImplemented`, { method });
  }
  /** `InvalidParameter {parameter}`. */
  static invalidParameter(parameter: string): VarlinkServiceError {
    return new VarlinkServiceError(`${VARLINK_SERVICE}.InvalidParameter`, { parameter });
  }
  /** `PermissionDenied`. */
  static permissionDenied(): VarlinkServiceError {
    return new VarlinkServiceError(`${VARLINK_SERVICE}.PermissionDenied`);
  }
  /** `ExpectedMore`. */
  static expectedMore(): VarlinkServiceError {
    return new VarlinkServiceError(`${VARLINK_SERVICE}.ExpectedMore`);
  }
}

/** Interface name of the repository API. */
export const REPOSITORY_INTERFACE = "org.composefs.Repository";
/** Interface name of the OCI API. */
export const OCI_INTERFACE = "org.composefs.Oci";

/** Error names of `org.composefs.Repository`, in IDL order (spec §2.2). */
export const REPOSITORY_ERROR_KINDS = [
  "RepoNotFound",
  "InvalidHandle",
  "InvalidSpec",
  "NoSuchRef",
  "InternalError",
] as const;

/** An error name of `org.composefs.Repository`. */
export type RepositoryErrorKind = typeof REPOSITORY_ERROR_KINDS[number];

/** An `org.composefs.Repository.*` error. */
export class RepositoryError extends VarlinkError {
  /** Error name, for matching without `instanceof`. */
  override name = "RepositoryError";

  /** Build one from its kind and parameters. */
  static of(
    kind: RepositoryErrorKind,
    parameters: JsonObject,
    options?: ErrorOptions,
  ): RepositoryError {
    return new RepositoryError(`${REPOSITORY_INTERFACE}.${kind}`, parameters, options);
  }
  /** `RepoNotFound {message}`. */
  static repoNotFound(message: string, options?: ErrorOptions): RepositoryError {
    return RepositoryError.of("RepoNotFound", { message }, options);
  }
  /** `InvalidHandle {handle}`. */
  static invalidHandle(handle: number | bigint): RepositoryError {
    return RepositoryError.of("InvalidHandle", { handle });
  }
  /** `InvalidSpec {message}`. */
  static invalidSpec(message: string, options?: ErrorOptions): RepositoryError {
    return RepositoryError.of("InvalidSpec", { message }, options);
  }
  /** `NoSuchRef {reference}`. */
  static noSuchRef(reference: string, options?: ErrorOptions): RepositoryError {
    return RepositoryError.of("NoSuchRef", { reference }, options);
  }
  /** `InternalError {message}`. */
  static internal(message: string, options?: ErrorOptions): RepositoryError {
    return RepositoryError.of("InternalError", { message }, options);
  }
}

/** Error names of `org.composefs.Oci`, in IDL order (spec §2.4). */
export const OCI_ERROR_KINDS = [
  "RepoNotFound",
  "InvalidHandle",
  "NoSuchImage",
  "InternalError",
  "NoSuchLayer",
  "InvalidDigest",
  "DiffIdMismatch",
  "InvalidRequest",
  "FdLimitExceeded",
  "BootImageMismatch",
] as const;

/** An error name of `org.composefs.Oci`. */
export type OciErrorKind = typeof OCI_ERROR_KINDS[number];

/** An `org.composefs.Oci.*` error. */
export class OciError extends VarlinkError {
  /** Error name, for matching without `instanceof`. */
  override name = "OciError";

  /** Build one from its kind and parameters. */
  static of(kind: OciErrorKind, parameters: JsonObject, options?: ErrorOptions): OciError {
    return new OciError(`${OCI_INTERFACE}.${kind}`, parameters, options);
  }
  /** `RepoNotFound {message}`. */
  static repoNotFound(message: string, options?: ErrorOptions): OciError {
    return OciError.of("RepoNotFound", { message }, options);
  }
  /** `InvalidHandle {handle}`. */
  static invalidHandle(handle: number | bigint): OciError {
    return OciError.of("InvalidHandle", { handle });
  }
  /** `NoSuchImage {image}`. */
  static noSuchImage(image: string, options?: ErrorOptions): OciError {
    return OciError.of("NoSuchImage", { image }, options);
  }
  /** `InternalError {message}`. */
  static internal(message: string, options?: ErrorOptions): OciError {
    return OciError.of("InternalError", { message }, options);
  }
  /** `NoSuchLayer {diff_id}`. */
  static noSuchLayer(diffId: string): OciError {
    return OciError.of("NoSuchLayer", { diff_id: diffId });
  }
  /** `InvalidDigest {message}`. */
  static invalidDigest(message: string, options?: ErrorOptions): OciError {
    return OciError.of("InvalidDigest", { message }, options);
  }
  /** `DiffIdMismatch {expected, actual}`. */
  static diffIdMismatch(expected: string, actual: string): OciError {
    return OciError.of("DiffIdMismatch", { expected, actual });
  }
  /** `InvalidRequest {message}`. */
  static invalidRequest(message: string, options?: ErrorOptions): OciError {
    return OciError.of("InvalidRequest", { message }, options);
  }
  /** `FdLimitExceeded {fd_count, max_per_frame}`. */
  static fdLimitExceeded(fdCount: number, maxPerFrame: number): OciError {
    return OciError.of("FdLimitExceeded", { fd_count: fdCount, max_per_frame: maxPerFrame });
  }
  /** `BootImageMismatch {expected, tried}`. */
  static bootImageMismatch(expected: string, tried: number): OciError {
    return OciError.of("BootImageMismatch", { expected, tried });
  }
}

/**
 * The typed error for an error reply: {@link VarlinkServiceError}, {@link RepositoryError},
 * {@link OciError}, or a plain {@link VarlinkError} for other interfaces.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { errorFromReply, OciError } from "./errors.ts";
 * const e = errorFromReply("org.composefs.Oci.NoSuchLayer", { diff_id: "sha256:00" });
 * assert.ok(e instanceof OciError);
 * assert.equal(e.kind, "NoSuchLayer");
 * ```
 */
export function errorFromReply(error: string, parameters: JsonObject): VarlinkError {
  const iface = error.slice(0, error.lastIndexOf("."));
  switch (iface) {
    case VARLINK_SERVICE:
      return new VarlinkServiceError(error, parameters);
    case REPOSITORY_INTERFACE:
      return new RepositoryError(error, parameters);
    case OCI_INTERFACE:
      return new OciError(error, parameters);
    default:
      return new VarlinkError(error, parameters);
  }
}

/** Why a connection failed below the error-reply level. */
export type TransportFailure = "closed" | "protocol" | "io";

/** The connection failed: closed by the peer, a protocol violation, or an I/O error. */
export class VarlinkTransportError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "VarlinkTransportError";
  /** What kind of failure. */
  readonly reason: TransportFailure;
  /** Create it. */
  constructor(reason: TransportFailure, message: string, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}

/**
 * The `containers-storage:` transport reference, parsed as containers/image does
 * (`storage/storage_transport.go`):
 *
 * ```
 * containers-storage:[[driver@]graphroot[+runroot][:options]]NAME[:TAG][@DIGEST]
 * containers-storage:[...]@IMAGE_ID           full 64-hex id, or a unique prefix (≥ 3 chars)
 * containers-storage:[...]NAME[:TAG]@IMAGE_ID
 * containers-storage:[...]ID_PREFIX           no ':' or '@' and ≥ 3 chars: an id prefix if an image has it, else a name
 * ```
 *
 * Pure: which image a reference means is decided later against a store's images.json
 * (`store_model.ts`).
 *
 * @module
 */

import { parseStorageOpts, type StoreOptions } from "./storage_conf.ts";

/** The transport prefix. */
export const CSTOR_TRANSPORT = "containers-storage:";
/** c/image `minimumTruncatedIDLength`: shorter id prefixes are never treated as ids. */
export const MIN_ID_PREFIX = 3;

/** A `[driver@graphroot+runroot:options]` store specifier. */
export interface StoreSpec {
  /** Graph driver (`overlay`, `vfs`). */
  driver?: string;
  /** Graph root (absolute). */
  graphRoot?: string;
  /** Run root (absolute). */
  runRoot?: string;
  /** Driver options (comma-separated after `:`). */
  options?: string[];
}

/** What in a store a reference selects. */
export type ImageSelector =
  /** A full 64-hex image id (from `@ID`, `sha256:ID` or a bare 64-hex string). */
  | { kind: "id"; id: string; name?: NamedRef }
  /** `@PREFIX`: must be a unique prefix of an image id. */
  | { kind: "idPrefix"; prefix: string; name?: NamedRef }
  /** A bare string that may be an id prefix; otherwise it is the name `name`. */
  | { kind: "idPrefixOrName"; prefix: string; name: NamedRef }
  /** A name, with a tag (`:latest` when none was given) or a digest. */
  | { kind: "name"; name: NamedRef };

/** A normalised image name, as c/storage stores it in `images.json` `names[]`. */
export interface NamedRef {
  /** As the user wrote it, without tag or digest (`test`, `localhost/test`). */
  raw: string;
  /** Docker-normalised repository (`docker.io/library/test`, `localhost/test`). */
  repository: string;
  /** Tag; `latest` when neither tag nor digest was given. */
  tag?: string;
  /** `sha256:...` manifest digest, if given. */
  digest?: string;
}

/** A parsed `containers-storage:` reference. */
export interface CstorReference {
  /** The store specifier, if one was given. */
  store?: StoreSpec;
  /** What to look up in the store. */
  image: ImageSelector;
  /** The reference text without the transport prefix (used as the default tag name). */
  text: string;
}

/** A reference that is not a valid `containers-storage:` reference. */
export class CstorReferenceError extends Error {
  /** The error class name. */
  override name = "CstorReferenceError";
  /** The reference text. */
  readonly reference: string;
  /** Build the error from its structured fields. */
  constructor(reference: string, reason: string) {
    super(`Invalid containers-storage reference "${reference}": ${reason}`);
    this.reference = reference;
  }
}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX = /^[0-9a-f]+$/;
const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$|^\[[0-9a-fA-F:]+\](?::[0-9]+)?$/;

/**
 * Docker-normalise a name (distribution `ParseNormalizedNamed`): a first component with a `.` or
 * `:` or equal to `localhost` is a registry; otherwise the registry is `docker.io`, and a
 * single-component name gets `library/`.
 */
export function normalizeName(ref: string, full: string): NamedRef {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new CstorReferenceError(full, `invalid digest "${digest}"`);
  }
  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(":");
  if (lastColon > rest.lastIndexOf("/")) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag)) throw new CstorReferenceError(full, `invalid tag "${tag}"`);
  }
  if (rest === "") throw new CstorReferenceError(full, "empty image name");
  const slash = rest.indexOf("/");
  let domain: string;
  let path: string;
  const first = slash < 0 ? "" : rest.slice(0, slash);
  if (slash >= 0 && (first.includes(".") || first.includes(":") || first === "localhost")) {
    domain = first;
    path = rest.slice(slash + 1);
    if (!DOMAIN.test(domain)) throw new CstorReferenceError(full, `invalid registry "${domain}"`);
  } else {
    domain = "docker.io";
    path = slash < 0 ? `library/${rest}` : rest;
  }
  for (const c of path.split("/")) {
    if (!PATH_COMPONENT.test(c)) {
      throw new CstorReferenceError(
        full,
        `invalid name component "${c}" (names must be lower case)`,
      );
    }
  }
  return {
    raw: rest,
    repository: `${domain}/${path}`,
    ...(tag === undefined && digest === undefined ? { tag: "latest" } : {}),
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
  };
}

/** Parse `[driver@graphroot+runroot:options]` (without brackets). */
function parseStoreSpec(spec: string, full: string): StoreSpec {
  if (spec === "") throw new CstorReferenceError(full, "empty store specifier");
  const out: StoreSpec = {};
  let rest = spec;
  const at = rest.indexOf("@");
  if (at >= 0) {
    out.driver = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (out.driver === "" || rest === "") {
      throw new CstorReferenceError(full, "empty driver or graph root in store specifier");
    }
  }
  const colon = rest.indexOf(":");
  if (colon >= 0) {
    out.options = rest.slice(colon + 1).split(",");
    rest = rest.slice(0, colon);
  }
  const plus = rest.indexOf("+");
  if (plus >= 0) {
    const run = rest.slice(plus + 1);
    rest = rest.slice(0, plus);
    if (run !== "") out.runRoot = run;
  }
  if (rest !== "") out.graphRoot = rest;
  for (const p of [out.graphRoot, out.runRoot]) {
    if (p !== undefined && !p.startsWith("/")) {
      throw new CstorReferenceError(full, `store path "${p}" is not absolute`);
    }
  }
  return out;
}

/**
 * Parse a `containers-storage:` reference (the prefix is optional).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCstorReference } from "./reference.ts";
 * const r = parseCstorReference("containers-storage:[overlay@/s/root+/s/run]localhost/test:v2");
 * assert.deepEqual(r.store, { driver: "overlay", graphRoot: "/s/root", runRoot: "/s/run" });
 * assert.deepEqual(r.image, {
 *   kind: "name",
 *   name: { raw: "localhost/test", repository: "localhost/test", tag: "v2" },
 * });
 * ```
 */
export function parseCstorReference(reference: string): CstorReference {
  let ref = reference.startsWith(CSTOR_TRANSPORT)
    ? reference.slice(CSTOR_TRANSPORT.length)
    : reference;
  const full = ref;
  let store: StoreSpec | undefined;
  if (ref.startsWith("[")) {
    const close = ref.indexOf("]");
    if (close < 1) throw new CstorReferenceError(full, 'unterminated "["');
    store = parseStoreSpec(ref.slice(1, close), full);
    ref = ref.slice(close + 1);
  }
  if (ref === "") throw new CstorReferenceError(full, "no image name or id");
  const withStore = (image: ImageSelector): CstorReference => ({
    ...(store ? { store } : {}),
    image,
    text: full,
  });

  // `sha256:<64 hex>` is an image id (composefs-rs accepts this form; no image is named sha256).
  if (ref.startsWith("sha256:") && HEX64.test(ref.slice(7))) {
    return withStore({ kind: "id", id: ref.slice(7) });
  }
  // A trailing `@X` that is not a digest is an image id or id prefix.
  const at = ref.lastIndexOf("@");
  if (at >= 0) {
    const possible = ref.slice(at + 1);
    if (possible === "") throw new CstorReferenceError(full, 'empty id after "@"');
    if (!DIGEST.test(possible)) {
      const namePart = ref.slice(0, at);
      const name = namePart === "" ? undefined : normalizeName(namePart, full);
      if (HEX64.test(possible)) {
        return withStore({ kind: "id", id: possible, ...(name ? { name } : {}) });
      }
      if (HEX.test(possible) && possible.length >= MIN_ID_PREFIX) {
        return withStore({ kind: "idPrefix", prefix: possible, ...(name ? { name } : {}) });
      }
      throw new CstorReferenceError(full, `"${possible}" does not look like an image id or digest`);
    }
  }
  if (HEX64.test(ref)) return withStore({ kind: "id", id: ref });
  const name = normalizeName(ref, full);
  if (ref.length >= MIN_ID_PREFIX && !/[@:]/.test(ref) && HEX.test(ref)) {
    return withStore({ kind: "idPrefixOrName", prefix: ref, name });
  }
  return withStore({ kind: "name", name });
}

/**
 * Apply a reference's store specifier to the configured options, as c/image's `GetStore` does:
 * a specifier replaces the configured store (its driver, graph root and run root; unspecified
 * parts fall back to the configuration), and its `:options` replace the driver options, so
 * additional image stores come from them only.
 */
export function applyStoreSpec(base: StoreOptions, spec: StoreSpec | undefined): StoreOptions {
  if (!spec) return base;
  return {
    driver: spec.driver ?? (spec.graphRoot ? null : base.driver),
    graphRoot: spec.graphRoot ?? base.graphRoot,
    runRoot: spec.runRoot ?? base.runRoot,
    imageStores: spec.options ? parseStorageOpts(spec.options, "store specifier") : [],
    configFile: base.configFile,
    rootless: base.rootless,
  };
}

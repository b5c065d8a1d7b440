/**
 * Names of OCI things in the repository: stream content identifiers, named-ref keys and tag
 * paths (repository-format §4.1, §4.7).
 *
 * @module
 */

import { InvalidTagError } from "./errors.ts";

/** Stream name of a tar layer: `oci-layer-<diff_id>` (or the blob digest for artifacts). */
export function layerStreamName(diffId: string): string {
  return `oci-layer-${diffId}`;
}

/** Stream name of a config: `oci-config-<config digest>`. */
export function configStreamName(digest: string): string {
  return `oci-config-${digest}`;
}

/** Stream name of a manifest: `oci-manifest-<manifest digest>`. */
export function manifestStreamName(digest: string): string {
  return `oci-manifest-${digest}`;
}

/** Named-ref key in a manifest stream pointing at its config stream. */
export function configRefName(configDigest: string): string {
  return `config:${configDigest}`;
}

/** Directory below `streams/refs/` holding the OCI tags. */
export const OCI_TAG_REF_DIR = "oci";

/**
 * Encode a tag for its file name: `%` → `%25`, then `/` → `%2F`; nothing else is escaped
 * (`:` is kept), exactly like composefs-rs `encode_tag`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeTag, encodeTag } from "./names.ts";
 * assert.equal(encodeTag("quay.io/a/b:1%"), "quay.io%2Fa%2Fb:1%25");
 * assert.equal(decodeTag("quay.io%2Fa%2Fb:1%25"), "quay.io/a/b:1%");
 * ```
 */
export function encodeTag(tag: string): string {
  return tag.replaceAll("%", "%25").replaceAll("/", "%2F");
}

/**
 * Decode a tag file name in one pass: `%2F` → `/`, `%25` → `%`; any other `%xx` stays as it
 * is (upper-case escapes only, as composefs-rs `decode_tag`).
 */
export function decodeTag(encoded: string): string {
  return encoded.replace(/%2F|%25/g, (m) => (m === "%2F" ? "/" : "%"));
}

/**
 * Validate a tag name: non-empty, no leading `@` (reserved for `@<digest>` references), no
 * NUL. composefs-rs checks only the leading `@`; an empty name would make the ref path the
 * directory itself, so it is refused too.
 */
export function validateTag(tag: string): void {
  if (tag.length === 0) throw new InvalidTagError(tag, "empty");
  if (tag.startsWith("@")) {
    throw new InvalidTagError(tag, "must not start with '@' (reserved for digests)");
  }
  if (tag.includes("\0")) throw new InvalidTagError(tag, "contains NUL");
  if (encodeTag(tag) === "." || encodeTag(tag) === "..") {
    throw new InvalidTagError(tag, "not a valid file name");
  }
}

/** The ref name (relative to `streams/refs/`) of a tag: `oci/<encoded tag>`. */
export function tagRefName(tag: string): string {
  validateTag(tag);
  return `${OCI_TAG_REF_DIR}/${encodeTag(tag)}`;
}

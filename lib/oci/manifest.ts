/**
 * Parsing of OCI/Docker image indexes, manifests and configs from their raw bytes. The raw
 * bytes are always kept by callers: digests are computed over them and they are stored
 * byte-for-byte. Parsing is separate from I/O: everything here takes bytes.
 *
 * @module
 */

import { parseDigest } from "./digest.ts";
import { type BlobKind, InvalidOciDocumentError } from "./errors.ts";
import { isIndexMediaType, isManifestMediaType, OCI_INDEX, OCI_MANIFEST } from "./media_types.ts";

/** An OCI platform. */
export interface Platform {
  /** e.g. `linux`. */
  os: string;
  /** e.g. `amd64`. */
  architecture: string;
  /** e.g. `v8` for arm64. */
  variant?: string;
}

/** An OCI content descriptor (the fields we use). */
export interface Descriptor {
  /** Media type. */
  mediaType: string;
  /** `sha256:<hex>`. */
  digest: string;
  /** Blob size in bytes. */
  size: number;
  /** Platform (index entries only). */
  platform?: Platform;
  /** Annotations. */
  annotations?: Record<string, string>;
  /** Artifact type (index entries). */
  artifactType?: string;
}

/** A parsed image index (OCI index or Docker manifest list). */
export interface ImageIndex {
  /** Media type (declared, or inferred). */
  mediaType: string;
  /** Child manifests. */
  manifests: Descriptor[];
}

/** A parsed image manifest (OCI or Docker schema 2). */
export interface ImageManifest {
  /** Media type (declared, or inferred as OCI). */
  mediaType: string;
  /** The config descriptor. */
  config: Descriptor;
  /** Layer descriptors, base first. */
  layers: Descriptor[];
  /** Artifact type, if any. */
  artifactType?: string;
  /** Subject (referrers), if any. */
  subject?: Descriptor;
  /** Annotations. */
  annotations?: Record<string, string>;
}

/** A parsed image config (the fields we use). */
export interface ImageConfig {
  /** CPU architecture. */
  architecture: string;
  /** Operating system. */
  os: string;
  /** Variant, if any. */
  variant?: string;
  /** Creation time, if any. */
  created?: string;
  /** `rootfs.diff_ids`: sha256 of each uncompressed layer tar, base first. */
  diffIds: string[];
}

/** The annotation that names a tag in an OCI layout's index. */
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";

function parseJson(kind: BlobKind, digest: string | undefined, bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (e) {
    throw new InvalidOciDocumentError(kind, digest, "not UTF-8", { cause: e });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InvalidOciDocumentError(kind, digest, "not valid JSON", { cause: e });
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function optString(
  kind: BlobKind,
  digest: string | undefined,
  o: Record<string, unknown>,
  key: string,
): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") {
    throw new InvalidOciDocumentError(kind, digest, `"${key}" is not a string`);
  }
  return v;
}

function stringMap(
  kind: BlobKind,
  digest: string | undefined,
  v: unknown,
  what: string,
): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v) || Object.values(v).some((x) => typeof x !== "string")) {
    throw new InvalidOciDocumentError(kind, digest, `${what} is not a string map`);
  }
  return v as Record<string, string>;
}

function parsePlatform(kind: BlobKind, digest: string | undefined, v: unknown): Platform {
  if (!isObject(v)) throw new InvalidOciDocumentError(kind, digest, "platform is not an object");
  const os = optString(kind, digest, v, "os");
  const architecture = optString(kind, digest, v, "architecture");
  if (os === undefined || architecture === undefined) {
    throw new InvalidOciDocumentError(kind, digest, "platform lacks os or architecture");
  }
  const variant = optString(kind, digest, v, "variant");
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

/** Validate one descriptor object. `where` names it in errors. */
export function parseDescriptor(
  kind: BlobKind,
  digest: string | undefined,
  v: unknown,
  where: string,
): Descriptor {
  if (!isObject(v)) throw new InvalidOciDocumentError(kind, digest, `${where} is not an object`);
  const mediaType = optString(kind, digest, v, "mediaType");
  const d = optString(kind, digest, v, "digest");
  if (mediaType === undefined) {
    throw new InvalidOciDocumentError(kind, digest, `${where} lacks "mediaType"`);
  }
  if (d === undefined) throw new InvalidOciDocumentError(kind, digest, `${where} lacks "digest"`);
  try {
    parseDigest(d);
  } catch (e) {
    throw new InvalidOciDocumentError(kind, digest, `${where} has an invalid digest`, {
      cause: e,
    });
  }
  const size = v.size;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw new InvalidOciDocumentError(kind, digest, `${where} has an invalid "size"`);
  }
  const out: Descriptor = { mediaType, digest: d, size };
  if (v.platform !== undefined && v.platform !== null) {
    out.platform = parsePlatform(kind, digest, v.platform);
  }
  const annotations = stringMap(kind, digest, v.annotations, `${where} annotations`);
  if (annotations) out.annotations = annotations;
  const artifactType = optString(kind, digest, v, "artifactType");
  if (artifactType !== undefined) out.artifactType = artifactType;
  return out;
}

/** Either an index or a manifest, as found behind a descriptor. */
export type ParsedDocument =
  | { type: "index"; index: ImageIndex }
  | { type: "manifest"; manifest: ImageManifest };

/**
 * Parse an index or manifest. The declared `mediaType` wins; without one (umoci writes
 * manifests without it) the shape decides: `manifests` → OCI index, `config` → OCI manifest.
 * `hint` is the media type from the referring descriptor.
 */
export function parseIndexOrManifest(
  bytes: Uint8Array,
  digest?: string,
  hint?: string,
): ParsedDocument {
  const kind: BlobKind = isIndexMediaType(hint) ? "index" : "manifest";
  const v = parseJson(kind, digest, bytes);
  if (!isObject(v)) throw new InvalidOciDocumentError(kind, digest, "not a JSON object");
  const declared = optString(kind, digest, v, "mediaType");
  let mt = declared ?? (Array.isArray(v.manifests) ? OCI_INDEX : undefined) ??
    (v.config !== undefined ? OCI_MANIFEST : undefined) ?? hint;
  if (mt === undefined) {
    throw new InvalidOciDocumentError(kind, digest, "neither an index nor a manifest");
  }
  if (v.schemaVersion !== 2) {
    throw new InvalidOciDocumentError(kind, digest, `unsupported schemaVersion ${v.schemaVersion}`);
  }
  if (isIndexMediaType(mt)) return { type: "index", index: parseIndexObject(v, digest, mt) };
  if (isManifestMediaType(mt)) {
    return { type: "manifest", manifest: parseManifestObject(v, digest, mt) };
  }
  // An unknown declared type: fall back to the shape, but keep the declared name in errors.
  mt = declared ?? mt;
  throw new InvalidOciDocumentError(kind, digest, `unsupported media type "${mt}"`);
}

function parseIndexObject(
  v: Record<string, unknown>,
  digest: string | undefined,
  mediaType: string,
): ImageIndex {
  if (!Array.isArray(v.manifests)) {
    throw new InvalidOciDocumentError("index", digest, `"manifests" is not an array`);
  }
  const manifests = v.manifests.map((m, i) =>
    parseDescriptor("index", digest, m, `manifests[${i}]`)
  );
  return { mediaType, manifests };
}

function parseManifestObject(
  v: Record<string, unknown>,
  digest: string | undefined,
  mediaType: string,
): ImageManifest {
  const config = parseDescriptor("manifest", digest, v.config, "config");
  if (!Array.isArray(v.layers)) {
    // An OCI manifest may have an empty layer list, but not a missing one.
    throw new InvalidOciDocumentError("manifest", digest, `"layers" is not an array`);
  }
  const layers = v.layers.map((l, i) => parseDescriptor("manifest", digest, l, `layers[${i}]`));
  const out: ImageManifest = { mediaType, config, layers };
  const artifactType = optString("manifest", digest, v, "artifactType");
  if (artifactType !== undefined) out.artifactType = artifactType;
  if (v.subject !== undefined && v.subject !== null) {
    out.subject = parseDescriptor("manifest", digest, v.subject, "subject");
  }
  const annotations = stringMap("manifest", digest, v.annotations, "annotations");
  if (annotations) out.annotations = annotations;
  return out;
}

/** Parse an image index (OCI index or Docker manifest list). */
export function parseIndex(bytes: Uint8Array, digest?: string): ImageIndex {
  const d = parseIndexOrManifest(bytes, digest, OCI_INDEX);
  if (d.type !== "index") {
    throw new InvalidOciDocumentError("index", digest, "is a manifest, not an index");
  }
  return d.index;
}

/** Parse an image manifest (OCI or Docker schema 2). */
export function parseManifest(bytes: Uint8Array, digest?: string): ImageManifest {
  const d = parseIndexOrManifest(bytes, digest, OCI_MANIFEST);
  if (d.type !== "manifest") {
    throw new InvalidOciDocumentError("manifest", digest, "is an index, not a manifest");
  }
  return d.manifest;
}

/** Parse an image config (OCI or Docker); `rootfs.diff_ids` must be valid digests. */
export function parseConfig(bytes: Uint8Array, digest?: string): ImageConfig {
  const v = parseJson("config", digest, bytes);
  if (!isObject(v)) throw new InvalidOciDocumentError("config", digest, "not a JSON object");
  const architecture = optString("config", digest, v, "architecture") ?? "";
  const os = optString("config", digest, v, "os") ?? "";
  const variant = optString("config", digest, v, "variant");
  const created = optString("config", digest, v, "created");
  const rootfs = v.rootfs;
  if (!isObject(rootfs) || !Array.isArray(rootfs.diff_ids)) {
    throw new InvalidOciDocumentError("config", digest, `"rootfs.diff_ids" is missing`);
  }
  const diffIds = rootfs.diff_ids.map((d, i) => {
    if (typeof d !== "string") {
      throw new InvalidOciDocumentError("config", digest, `diff_ids[${i}] is not a string`);
    }
    try {
      parseDigest(d);
    } catch (e) {
      throw new InvalidOciDocumentError("config", digest, `diff_ids[${i}] is invalid`, {
        cause: e,
      });
    }
    return d;
  });
  const out: ImageConfig = { architecture, os, diffIds };
  if (variant !== undefined) out.variant = variant;
  if (created !== undefined) out.created = created;
  return out;
}

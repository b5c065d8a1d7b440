/**
 * `meta.json`: the repository's format version, fs-verity algorithm, feature flags and EROFS
 * formats (repository-format §1.2). Parsing and serialization only; no I/O.
 *
 * @module
 */

import {
  formatAlgorithmName,
  type HashAlgorithm,
  InvalidAlgorithmError,
  parseAlgorithmName,
} from "../fsverity/algorithm.ts";

/** The base format version this implementation reads and writes (`REPO_FORMAT_VERSION`). */
export const REPO_FORMAT_VERSION = 1;

/** The metadata file name in the repository root. */
export const META_JSON = "meta.json";

/** An EROFS format version: 0, 1 (C-compatible) or 2 (composefs-rs native). */
export type ErofsFormatVersion = 0 | 1 | 2;

/** Which EROFS formats images are committed in: `default` first, then `extra` (sorted). */
export interface ErofsFormats {
  /** The primary format. */
  default: ErofsFormatVersion;
  /** Additional formats, sorted and de-duplicated (omitted from JSON when empty). */
  extra: ErofsFormatVersion[];
}

/** The three feature-flag sets, as in ext4: unknown `incompatible` flags refuse the open. */
export interface FeatureFlags {
  /** Unknown ones are ignored. */
  compatible: string[];
  /** Unknown ones make the repository read-only. */
  readOnlyCompatible: string[];
  /** Unknown ones refuse the open. */
  incompatible: string[];
}

/** The contents of `meta.json`. */
export interface RepoMetadata {
  /** Base format version (1). */
  version: number;
  /** fs-verity hash of object IDs. */
  algorithm: HashAlgorithm;
  /** Feature flags. */
  features: FeatureFlags;
  /** EROFS formats as stored (`{"default":2}` when the key is absent). */
  erofsFormats: ErofsFormats;
}

/** Read-only-compatible flag written when the default EROFS format is V1. */
export const FEATURE_V1_EROFS = "v1_erofs";

/** Compatible features this implementation knows (none). */
export const KNOWN_COMPAT: readonly string[] = [];
/** Read-only-compatible features this implementation knows. */
export const KNOWN_RO_COMPAT: readonly string[] = [FEATURE_V1_EROFS];
/** Incompatible features this implementation knows (none). */
export const KNOWN_INCOMPAT: readonly string[] = [];

/** `meta.json` could not be parsed or has invalid values (`MetadataInvalid`). */
export class MetadataInvalidError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "MetadataInvalidError";
  /** What was wrong. */
  readonly detail: string;
  /** Create the error from its structured fields. */
  constructor(detail: string, options?: ErrorOptions) {
    super(`Invalid repository metadata (meta.json): ${detail}`, options);
    this.detail = detail;
  }
}

/** `meta.json` declares a format version newer than this implementation supports. */
export class UnsupportedVersionError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "UnsupportedVersionError";
  /** The version found. */
  readonly version: number;
  /** Create the error from its structured fields. */
  constructor(version: number) {
    super(
      `Repository format version ${version} is newer than the supported version ${REPO_FORMAT_VERSION}`,
    );
    this.version = version;
  }
}

/** `meta.json` lists incompatible features this implementation does not know. */
export class IncompatibleFeaturesError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "IncompatibleFeaturesError";
  /** The unknown incompatible features. */
  readonly features: string[];
  /** Create the error from its structured fields. */
  constructor(features: string[]) {
    super(
      `Repository uses unknown incompatible features: ${features.map((f) => `"${f}"`).join(", ")}`,
    );
    this.features = features;
  }
}

function isFormatVersion(v: unknown): v is ErofsFormatVersion {
  return v === 0 || v === 1 || v === 2;
}

function stringArray(v: unknown, what: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) {
    throw new MetadataInvalidError(`"${what}" must be an array of strings`);
  }
  return [...v];
}

function normalizeExtra(extra: readonly ErofsFormatVersion[]): ErofsFormatVersion[] {
  return [...new Set(extra)].sort((a, b) => a - b);
}

/**
 * Parse `meta.json` bytes. Unknown top-level keys are ignored; the version and features are
 * NOT checked here (see {@link checkMetadata}), so callers can distinguish "invalid" from
 * "too new".
 */
export function parseRepoMetadata(bytes: Uint8Array): RepoMetadata {
  let text: string;
  let v: unknown;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    v = JSON.parse(text);
  } catch (e) {
    throw new MetadataInvalidError(`not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new MetadataInvalidError("not a JSON object");
  }
  const o = v as Record<string, unknown>;
  const version = o.version;
  if (
    typeof version !== "number" || !Number.isInteger(version) || version < 0 || version > 0xffffffff
  ) {
    throw new MetadataInvalidError(`"version" must be an unsigned 32-bit integer`);
  }
  if (typeof o.algorithm !== "string") {
    throw new MetadataInvalidError(`"algorithm" must be a string`);
  }
  let algorithm: HashAlgorithm;
  try {
    algorithm = parseAlgorithmName(o.algorithm);
  } catch (e) {
    if (e instanceof InvalidAlgorithmError) throw new MetadataInvalidError(e.message, { cause: e });
    throw e;
  }
  let features: FeatureFlags = { compatible: [], readOnlyCompatible: [], incompatible: [] };
  if (o.features !== undefined) {
    const f = o.features;
    if (typeof f !== "object" || f === null || Array.isArray(f)) {
      throw new MetadataInvalidError(`"features" must be an object`);
    }
    const fr = f as Record<string, unknown>;
    features = {
      compatible: stringArray(fr["compatible"], "features.compatible"),
      readOnlyCompatible: stringArray(fr["read-only-compatible"], "features.read-only-compatible"),
      incompatible: stringArray(fr["incompatible"], "features.incompatible"),
    };
  }
  // serde default for a missing `erofs_formats` is the legacy `{"default": 2}`.
  let erofsFormats: ErofsFormats = { default: 2, extra: [] };
  if (o.erofs_formats !== undefined) {
    const ef = o.erofs_formats;
    if (typeof ef !== "object" || ef === null || Array.isArray(ef)) {
      throw new MetadataInvalidError(`"erofs_formats" must be an object`);
    }
    const er = ef as Record<string, unknown>;
    if (!isFormatVersion(er.default)) {
      throw new MetadataInvalidError(`"erofs_formats.default" must be 0, 1 or 2`);
    }
    let extra: ErofsFormatVersion[] = [];
    if (er.extra !== undefined) {
      if (!Array.isArray(er.extra) || !er.extra.every(isFormatVersion)) {
        throw new MetadataInvalidError(`"erofs_formats.extra" must be an array of 0, 1 or 2`);
      }
      extra = normalizeExtra(er.extra);
    }
    erofsFormats = { default: er.default, extra };
  }
  return { version, algorithm, features, erofsFormats };
}

/**
 * Serialize exactly as composefs-rs does (`serde_json::to_vec_pretty` + `\n`): 2-space
 * indent, struct field order, `extra` omitted when empty.
 */
export function serializeRepoMetadata(meta: RepoMetadata): Uint8Array<ArrayBuffer> {
  const erofs: Record<string, unknown> = { default: meta.erofsFormats.default };
  const extra = normalizeExtra(meta.erofsFormats.extra);
  if (extra.length > 0) erofs.extra = extra;
  // JSON.stringify(…, 2) and serde_json's pretty printer agree: `"k": v`, `[]` for empty arrays.
  const obj = {
    version: meta.version,
    algorithm: formatAlgorithmName(meta.algorithm),
    features: {
      compatible: meta.features.compatible,
      "read-only-compatible": meta.features.readOnlyCompatible,
      incompatible: meta.features.incompatible,
    },
    erofs_formats: erofs,
  };
  return new TextEncoder().encode(JSON.stringify(obj, null, 2) + "\n");
}

/**
 * Metadata for a new repository (`RepoMetadata::for_formats`): version 1, the given algorithm,
 * `v1_erofs` set iff the default EROFS format is V1. Default formats: `{"default": 1}`.
 */
export function newRepoMetadata(
  algorithm: HashAlgorithm,
  formats: { default: ErofsFormatVersion; extra?: readonly number[] } = { default: 1 },
): RepoMetadata {
  const extra = (formats.extra ?? []).map((v) => {
    if (!isFormatVersion(v)) throw new RangeError(`Invalid EROFS format version ${v}`);
    return v;
  });
  return {
    version: REPO_FORMAT_VERSION,
    algorithm,
    features: {
      compatible: [],
      readOnlyCompatible: formats.default === 1 ? [FEATURE_V1_EROFS] : [],
      incompatible: [],
    },
    erofsFormats: {
      default: formats.default,
      extra: normalizeExtra(extra).filter((v) => v !== formats.default),
    },
  };
}

/** The result of {@link checkMetadata}: may the repository be written? */
export type FeatureCheck = "read-write" | "read-only";

/**
 * Check the version and feature flags: a newer version or an unknown incompatible feature
 * throws; an unknown read-only-compatible feature yields `"read-only"`. (composefs-rs computes
 * but discards the read-only result; we enforce it, as the flag's name promises.)
 */
export function checkMetadata(meta: RepoMetadata): FeatureCheck {
  if (meta.version > REPO_FORMAT_VERSION) throw new UnsupportedVersionError(meta.version);
  const unknownIncompat = meta.features.incompatible.filter((f) => !KNOWN_INCOMPAT.includes(f));
  if (unknownIncompat.length > 0) throw new IncompatibleFeaturesError(unknownIncompat);
  const unknownRo = meta.features.readOnlyCompatible.filter((f) => !KNOWN_RO_COMPAT.includes(f));
  return unknownRo.length > 0 ? "read-only" : "read-write";
}

/** Unknown read-only-compatible features (empty when the repository is writable). */
export function unknownReadOnlyFeatures(meta: RepoMetadata): string[] {
  return meta.features.readOnlyCompatible.filter((f) => !KNOWN_RO_COMPAT.includes(f));
}

/**
 * The effective EROFS formats (`format_config()`): the stored value unless it is the legacy
 * serde default `{"default": 2}`, in which case `v1_erofs` selects V1.
 */
export function effectiveErofsFormats(meta: RepoMetadata): ErofsFormats {
  const ef = meta.erofsFormats;
  if (ef.default !== 2 || ef.extra.length > 0) return { default: ef.default, extra: [...ef.extra] };
  if (meta.features.readOnlyCompatible.includes(FEATURE_V1_EROFS)) return { default: 1, extra: [] };
  return { default: 2, extra: [] };
}

/** Struct equality as composefs-rs's `PartialEq` (used for idempotent init). */
export function metadataEqual(a: RepoMetadata, b: RepoMetadata): boolean {
  const arr = (x: readonly unknown[], y: readonly unknown[]) =>
    x.length === y.length && x.every((v, i) => v === y[i]);
  return a.version === b.version && a.algorithm === b.algorithm &&
    arr(a.features.compatible, b.features.compatible) &&
    arr(a.features.readOnlyCompatible, b.features.readOnlyCompatible) &&
    arr(a.features.incompatible, b.features.incompatible) &&
    a.erofsFormats.default === b.erofsFormats.default &&
    arr(normalizeExtra(a.erofsFormats.extra), normalizeExtra(b.erofsFormats.extra));
}

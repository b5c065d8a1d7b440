/**
 * OCI images in a repository (repository-format §4.3–4.7): config and manifest streams with
 * their named refs, tags under `streams/refs/oci/`, and the read side (resolve, list,
 * inspect). Config and manifest bytes are stored exactly as received, so their digests hold.
 *
 * @module
 */

import { readAllAt } from "../../ffi/fs.ts";
import { NotFoundError } from "../repository/errors.ts";
import type { Repository } from "../repository/repository.ts";
import { CONTENT_TYPE, SplitstreamWriter } from "../repository/splitstream.ts";
import { toHex } from "../repository/object_id.ts";
import { parseSha256Digest, sha256Digest } from "./digest.ts";
import { BlobDigestMismatchError, ImageNotFoundError, InvalidOciDocumentError } from "./errors.ts";
import { type ImageConfig, type ImageManifest, parseConfig, parseManifest } from "./manifest.ts";
import { isImageConfig } from "./media_types.ts";
import {
  configRefName,
  configStreamName,
  decodeTag,
  layerStreamName,
  manifestStreamName,
  OCI_TAG_REF_DIR,
  tagRefName,
  validateTag,
} from "./names.ts";

/** A layer as recorded in config/manifest named refs. */
export interface LayerRef {
  /** diff_id (or, for artifacts, the layer blob digest). */
  diffId: string;
  /** fs-verity digest of the layer splitstream. */
  verity: Uint8Array;
}

/** What {@link finalizeImage} wrote. */
export interface FinalizedImage {
  /** `sha256:` of the manifest bytes. */
  manifestDigest: string;
  /** `sha256:` of the config bytes. */
  configDigest: string;
  /** fs-verity of the manifest splitstream. */
  manifestVerity: Uint8Array;
  /** fs-verity of the config splitstream. */
  configVerity: Uint8Array;
  /** The tag, if one was set. */
  tag?: string;
}

/**
 * A splitstream holding `bytes` (stored as an object now) as its one external object, with
 * these named refs: the shape of every config and manifest stream.
 */
export function externalStreamBytes(
  repo: Repository,
  contentType: bigint,
  namedRefs: [string, Uint8Array][],
  bytes: Uint8Array,
): Uint8Array {
  using sw = new SplitstreamWriter(repo.algorithm, contentType);
  for (const [k, v] of namedRefs) sw.addNamedRef(k, v);
  sw.writeExternal(repo.storeObject(bytes), bytes.length);
  return sw.finish();
}

/** {@link externalStreamBytes}, written and named `name` (and `refName`). */
export function writeExternalStream(
  repo: Repository,
  contentType: bigint,
  namedRefs: [string, Uint8Array][],
  bytes: Uint8Array,
  name: string,
  refName?: string,
): Uint8Array {
  return repo.writeStream(name, externalStreamBytes(repo, contentType, namedRefs, bytes), refName);
}

/** A manifest stream's named refs: `config:<digest>` → config stream, then the layers. */
export function manifestNamedRefs(
  configDigest: string,
  configVerity: Uint8Array,
  layerRefs: [string, Uint8Array][],
): [string, Uint8Array][] {
  return [[configRefName(configDigest), configVerity], ...layerRefs];
}

/**
 * Write the config stream (named refs diff_id → layer verity, in config order; the raw config
 * as one external object) and the manifest stream (`config:<digest>` → config verity, then
 * the layers; the raw manifest) and, last, the tag — so a tag never points at anything that
 * is not durable (DESIGN 9). Existing config/manifest streams are reused as they are (a
 * config stream may already carry `composefs.image` refs).
 */
export function finalizeImage(
  repo: Repository,
  manifestBytes: Uint8Array,
  configBytes: Uint8Array,
  layers: LayerRef[],
  tag?: string,
): FinalizedImage {
  if (tag !== undefined) validateTag(tag);
  const configDigest = sha256Digest(configBytes);
  const manifestDigest = sha256Digest(manifestBytes);
  const configName = configStreamName(configDigest);
  let configVerity = repo.hasStream(configName);
  if (configVerity === null) {
    configVerity = writeExternalStream(
      repo,
      CONTENT_TYPE.OCI_CONFIG,
      layers.map((l) => [l.diffId, l.verity]),
      configBytes,
      configName,
    );
  }
  const manifestName = manifestStreamName(manifestDigest);
  let manifestVerity = repo.hasStream(manifestName);
  if (manifestVerity === null) {
    manifestVerity = writeExternalStream(
      repo,
      CONTENT_TYPE.OCI_MANIFEST,
      manifestNamedRefs(
        configDigest,
        configVerity,
        layers.map((l): [string, Uint8Array] => [l.diffId, l.verity]),
      ),
      manifestBytes,
      manifestName,
      tag === undefined ? undefined : tagRefName(tag),
    );
  } else if (tag !== undefined) {
    repo.nameStream(manifestName, tagRefName(tag));
  }
  const out: FinalizedImage = { manifestDigest, configDigest, manifestVerity, configVerity };
  if (tag !== undefined) out.tag = tag;
  return out;
}

/** An image read back from the repository. */
export interface StoredImage {
  /** `sha256:` of the manifest. */
  manifestDigest: string;
  /** Raw manifest bytes. */
  manifestBytes: Uint8Array;
  /** Parsed manifest. */
  manifest: ImageManifest;
  /** fs-verity of the manifest stream. */
  manifestVerity: Uint8Array;
  /** `sha256:` of the config. */
  configDigest: string;
  /** Raw config bytes. */
  configBytes: Uint8Array;
  /** Parsed config (undefined for artifacts). */
  config: ImageConfig | undefined;
  /** fs-verity of the config stream. */
  configVerity: Uint8Array;
  /** Named refs of the config stream (diff_ids and `composefs.image*`). */
  configRefs: Map<string, Uint8Array>;
  /** True for container images (image config media type). */
  isContainer: boolean;
}

/** Read the single external object of an OCI config/manifest stream. */
function readExternalStream(
  repo: Repository,
  name: string,
  contentType: bigint,
): { bytes: Uint8Array; namedRefs: Map<string, Uint8Array> } {
  const s = repo.readStream(name, contentType);
  if (s.objectRefs.length !== 1) {
    throw new InvalidOciDocumentError(
      contentType === CONTENT_TYPE.OCI_MANIFEST ? "manifest" : "config",
      name,
      `stream has ${s.objectRefs.length} object refs, expected 1`,
    );
  }
  using fd = repo.openObject(s.objectRefs[0]);
  return { bytes: readAllAt(fd), namedRefs: s.namedRefs };
}

/** The manifest digest a reference names: `@sha256:…` directly, else the tag's target. */
export function resolveManifestDigest(repo: Repository, ref: string): string {
  if (ref.startsWith("@")) {
    const d = ref.slice(1);
    parseSha256Digest(d);
    if (repo.hasStream(manifestStreamName(d)) === null) {
      throw new ImageNotFoundError(ref, "the repository");
    }
    return d;
  }
  const refName = tagRefName(ref);
  const entry = repo.listStreamRefs(OCI_TAG_REF_DIR).find((r) => r.name === refName);
  if (entry === undefined) throw new ImageNotFoundError(ref, "the repository");
  // composefs-rs resolve_ref: the last component of the link target names the manifest stream.
  const target = entry.target.slice(entry.target.lastIndexOf("/") + 1);
  const prefix = manifestStreamName("");
  if (!target.startsWith(prefix)) {
    throw new InvalidOciDocumentError("manifest", undefined, `tag "${ref}" points at "${target}"`);
  }
  return target.slice(prefix.length);
}

/**
 * Open an image by tag or `@manifest-digest`, re-hashing the manifest and config against
 * their digests (typed errors on mismatch).
 */
export function resolveImage(repo: Repository, ref: string): StoredImage {
  const manifestDigest = resolveManifestDigest(repo, ref);
  const mName = manifestStreamName(manifestDigest);
  const manifestVerity = repo.hasStream(mName);
  if (manifestVerity === null) throw new ImageNotFoundError(ref, "the repository");
  const m = readExternalStream(repo, mName, CONTENT_TYPE.OCI_MANIFEST);
  const mActual = sha256Digest(m.bytes);
  if (mActual !== manifestDigest) {
    throw new BlobDigestMismatchError("manifest", manifestDigest, mActual);
  }
  const manifest = parseManifest(m.bytes, manifestDigest);
  const configDigest = manifest.config.digest;
  const configVerity = m.namedRefs.get(configRefName(configDigest));
  if (configVerity === undefined) {
    throw new InvalidOciDocumentError(
      "manifest",
      manifestDigest,
      `stream lacks the named ref "${configRefName(configDigest)}"`,
    );
  }
  const cName = configStreamName(configDigest);
  const c = readExternalStream(repo, cName, CONTENT_TYPE.OCI_CONFIG);
  const cActual = sha256Digest(c.bytes);
  if (cActual !== configDigest) throw new BlobDigestMismatchError("config", configDigest, cActual);
  const isContainer = isImageConfig(manifest.config.mediaType);
  return {
    manifestDigest,
    manifestBytes: m.bytes,
    manifest,
    manifestVerity,
    configDigest,
    configBytes: c.bytes,
    config: isContainer ? parseConfig(c.bytes, configDigest) : undefined,
    configVerity: repo.hasStream(cName) ?? configVerity,
    configRefs: c.namedRefs,
    isContainer,
  };
}

/** All tags, decoded, sorted. */
export function listTags(repo: Repository): string[] {
  return repo.listStreamRefs(OCI_TAG_REF_DIR).map((r) =>
    decodeTag(r.name.slice(OCI_TAG_REF_DIR.length + 1))
  ).sort();
}

/** One row of `oci images`. */
export interface ImageSummary {
  /** Tag. */
  name: string;
  /** Manifest digest. */
  manifest_digest: string;
  /** Container image (vs artifact). */
  is_container: boolean;
  /** Config architecture ("" for artifacts). */
  architecture: string;
  /** Config os. */
  os: string;
  /** Config `created`, or null. */
  created: string | null;
  /** Number of layers. */
  layer_count: number;
  /** Number of referrers (not tracked yet: always 0). */
  referrer_count: number;
}

/**
 * List tagged images, each opened with content re-hashing. An image that fails to open is
 * reported through `onError` (the CLI prints a warning) and skipped, as composefs-rs does.
 */
export function listImages(
  repo: Repository,
  onError?: (tag: string, error: unknown) => void,
): ImageSummary[] {
  const out: ImageSummary[] = [];
  for (const name of listTags(repo)) {
    let img: StoredImage;
    try {
      img = resolveImage(repo, name);
    } catch (e) {
      if (!onError) throw e;
      onError(name, e);
      continue;
    }
    out.push({
      name,
      manifest_digest: img.manifestDigest,
      is_container: img.isContainer,
      architecture: img.config?.architecture ?? "",
      os: img.config?.os ?? "",
      created: img.config?.created ?? null,
      layer_count: img.manifest.layers.length,
      referrer_count: 0,
    });
  }
  return out;
}

/** Point tag `name` at the manifest `manifestDigest` (`sha256:…`), replacing any old target. */
export function tagImage(repo: Repository, manifestDigest: string, name: string): void {
  validateTag(name);
  parseSha256Digest(manifestDigest);
  const mName = manifestStreamName(manifestDigest);
  if (repo.hasStream(mName) === null) {
    throw new ImageNotFoundError(manifestDigest, "the repository");
  }
  repo.nameStream(mName, tagRefName(name));
}

/** Remove tag `name`; the image becomes eligible for GC unless otherwise referenced. */
export function untagImage(repo: Repository, name: string): void {
  try {
    repo.removeStreamRef(tagRefName(name));
  } catch (e) {
    if (e instanceof NotFoundError) {
      throw new ImageNotFoundError(name, "the repository", { cause: e });
    }
    throw e;
  }
}

/** `oci inspect` JSON (ctl/varlink.rs shape). */
export interface ImageInspection {
  /** Raw manifest JSON text. */
  manifest: string;
  /** Raw config JSON text. */
  config: string;
  /** Referrer manifest digests (not tracked yet: empty). */
  referrers: string[];
  /** `composefs.image` named ref of the config, hex, or null. */
  composefs_erofs: string | null;
  /** `composefs.image.boot` named ref of the config, hex, or null. */
  composefs_boot_erofs: string | null;
}

/** Inspect an image by tag or `@manifest-digest`. */
export function inspectImage(repo: Repository, ref: string): ImageInspection {
  const img = resolveImage(repo, ref);
  const dec = new TextDecoder();
  const erofs = img.configRefs.get("composefs.image");
  const boot = img.configRefs.get("composefs.image.boot");
  return {
    manifest: dec.decode(img.manifestBytes),
    config: dec.decode(img.configBytes),
    referrers: [],
    composefs_erofs: erofs ? toHex(erofs) : null,
    composefs_boot_erofs: boot ? toHex(boot) : null,
  };
}

/** The layer stream names of an image in config order (diff_ids; layer digests for artifacts). */
export function imageLayerStreams(img: StoredImage): string[] {
  const ids = img.config?.diffIds ?? img.manifest.layers.map((l) => l.digest);
  return ids.map(layerStreamName);
}

/**
 * The composefs EROFS image of an OCI container image and its linkage (repository-format
 * §4.6, erofs-format §4): build the merged tree, write one image per configured EROFS format
 * (`images/<hex>`), rewrite the config stream with `composefs.image` (V2) /
 * `composefs.image.v1` (V1) named refs, rewrite the manifest stream to point at the new config
 * stream, and — in {@link finalizeComposefsImage} — set the tag last, so no ref ever points at
 * something that is not durable (DESIGN 9).
 *
 * @module
 */

import { readAllAt } from "../../ffi/fs.ts";
import type { BorrowedFd } from "../../ffi/owned_fd.ts";
import type { FormatVersion } from "../erofs/format.ts";
import type { Directory } from "../erofs/tree.ts";
import { writeErofs } from "../erofs/writer.ts";
import { imageId } from "../erofs/image_id.ts";
import { effectiveErofsFormats } from "../repository/meta.ts";
import { idEqual, toHex } from "../repository/object_id.ts";
import type { Repository } from "../repository/repository.ts";
import { CONTENT_TYPE } from "../repository/splitstream.ts";
import { parseSha256Digest, sha256Digest } from "./digest.ts";
import { BlobDigestMismatchError, ImageNotFoundError, InvalidOciDocumentError } from "./errors.ts";
import {
  externalStreamBytes,
  type FinalizedImage,
  finalizeImage,
  type LayerRef,
  manifestNamedRefs,
  resolveImage,
  type StoredImage,
  tagImage,
  writeExternalStream,
} from "./image_store.ts";
import { type ImageConfig, parseConfig, parseManifest } from "./manifest.ts";
import { isImageConfig } from "./media_types.ts";
import { buildImageTree, MergeError, MissingUsrError, type XattrFiltering } from "./merged_tree.ts";
import { configRefName, configStreamName, manifestStreamName, validateTag } from "./names.ts";

/** Config named-ref key of the V2 image id. */
export const IMAGE_REF_V2 = "composefs.image";
/** Config named-ref key of the V1 image id. */
export const IMAGE_REF_V1 = "composefs.image.v1";
/** Prefix shared by every image key (boot keys included). */
export const IMAGE_REF_PREFIX = "composefs.image";

/** A format version has no config ref key (V0: composefs-rs links only V1 and V2). */
export class UnsupportedImageVersionError extends Error {
  override name = "UnsupportedImageVersionError";
  /** The version asked for. */
  readonly version: number;
  constructor(version: number) {
    super(
      `EROFS format V${version} cannot be linked from an OCI config (only V1 and V2 have a "composefs.image" key)`,
    );
    this.version = version;
  }
}

/** The image has no composefs image linked for the wanted format. */
export class NoComposefsImageError extends Error {
  /** Always `NoComposefsImageError`. */
  override name = "NoComposefsImageError";
  /** The image reference. */
  readonly image: string;
  /** The format looked for. */
  readonly version: number;
  /** Build the error from its structured fields. */
  constructor(image: string, version: number) {
    super(
      `No composefs EROFS image linked for "${image}" (format V${version}) — try re-pulling the image`,
    );
    this.image = image;
    this.version = version;
  }
}

/** The config named-ref key for `version`. */
export function imageRefKey(version: FormatVersion): string {
  if (version === 1) return IMAGE_REF_V1;
  if (version === 2) return IMAGE_REF_V2;
  throw new UnsupportedImageVersionError(version);
}

/**
 * The EROFS formats to generate: `[override]` when given (global `--erofs-version`), else the
 * repository's default then its extras, sorted, without duplicates.
 */
export function imageVersions(repo: Repository, override?: FormatVersion): FormatVersion[] {
  if (override !== undefined) return [override];
  const f = effectiveErofsFormats(repo.meta);
  const out: FormatVersion[] = [f.default];
  for (const v of [...f.extra].sort()) if (!out.includes(v)) out.push(v);
  return out;
}

/** The format readers use: the override, else the repository's default. */
export function primaryVersion(repo: Repository, override?: FormatVersion): FormatVersion {
  return imageVersions(repo, override)[0];
}

/** A config to build a filesystem from. */
export interface ConfigView {
  /** `sha256:` of the config. */
  configDigest: string;
  /** Parsed config (container images only). */
  config: ImageConfig | undefined;
  /** Container image (vs artifact). */
  isContainer: boolean;
  /** Config stream named refs (diff_id → layer verity, `composefs.image*`). */
  configRefs: Map<string, Uint8Array>;
}

/**
 * Resolve a reference to a config: a tag, `@<manifest digest>`, or `@<config digest>`
 * (cfsctl `oci compute-id`/`oci dump` take config digests). The config is re-hashed.
 */
export function resolveConfig(repo: Repository, ref: string): ConfigView {
  if (ref.startsWith("@")) {
    const d = ref.slice(1);
    parseSha256Digest(d);
    const name = configStreamName(d);
    if (repo.hasStream(name) !== null && repo.hasStream(manifestStreamName(d)) === null) {
      const s = repo.readStream(name, CONTENT_TYPE.OCI_CONFIG);
      if (s.objectRefs.length !== 1) {
        throw new InvalidOciDocumentError(
          "config",
          d,
          `stream has ${s.objectRefs.length} object refs`,
        );
      }
      using fd = repo.openObject(s.objectRefs[0]);
      const bytes = readAllAt(fd);
      const actual = sha256Digest(bytes);
      if (actual !== d) throw new BlobDigestMismatchError("config", d, actual);
      return {
        configDigest: d,
        config: parseConfig(bytes, d),
        isContainer: true,
        configRefs: s.namedRefs,
      };
    }
  }
  return resolveImage(repo, ref);
}

/** Options of {@link ensureComposefsImage} and the id/tree helpers. */
export interface ComposefsImageOptions {
  /** Generate only this format (global `--erofs-version`); default: the repository's formats. */
  erofsVersion?: FormatVersion;
  /** Xattr filtering (default `allowlist-only`, what pulls always use). */
  xattrs?: XattrFiltering;
}

/** The merged filesystem of an image (tag, `@manifest` or `@config` digest). */
export function imageTree(
  repo: Repository,
  ref: string,
  opts: ComposefsImageOptions = {},
): Directory {
  const cv = resolveConfig(repo, ref);
  return buildImageTree(repo, cv as StoredImage, { xattrs: opts.xattrs });
}

/** `oci compute-id`: the image id the repository's (or the overridden) format would give. */
export function computeImageId(
  repo: Repository,
  ref: string,
  opts: ComposefsImageOptions = {},
): Uint8Array {
  const tree = imageTree(repo, ref, opts);
  return imageId(
    writeErofs(tree, { version: primaryVersion(repo, opts.erofsVersion) }),
    repo.algorithm,
  );
}

/**
 * EROFS images a same-algorithm local source already has for this image, beneath its
 * `objects/` directory: the destination would generate byte-identical ones (same layers,
 * same object ids, same writer), so they are linked instead of rebuilt.
 */
export interface PrebuiltImages {
  /** The source repository's `objects/` directory. */
  objectsDir: BorrowedFd;
  /** Images by format version. */
  images: LinkedImage[];
  /** How they may be stored (the copy's reflink/hardlink/copy choices). */
  store: { allowReflink: boolean; allowHardlink: boolean; allowCopy: boolean };
}

/** One generated (or already present) image. */
export interface LinkedImage {
  /** Format version. */
  version: FormatVersion;
  /** Image id (fs-verity of the EROFS bytes). */
  id: Uint8Array;
}

/** What {@link ensureComposefsImage} did. */
export interface ComposefsImageResult {
  /** Manifest digest. */
  manifestDigest: string;
  /** Config digest. */
  configDigest: string;
  /** Verity of the (possibly rewritten) config stream. */
  configVerity: Uint8Array;
  /** Verity of the (possibly rewritten) manifest stream. */
  manifestVerity: Uint8Array;
  /** Images linked for the wanted formats (empty for artifacts). */
  images: LinkedImage[];
  /** True when images were written or streams rewritten now. */
  changed: boolean;
  /**
   * Why no image was generated, when the layers do not form a filesystem composefs can
   * describe (no `/usr`, an entry without its parent, a dangling hardlink). composefs-rs fails
   * the whole pull then; we keep the image (its layers are valid OCI) and report this, and
   * `oci mount` says no image is linked.
   */
  skipped?: string;
}

/**
 * A config stream's named refs, in composefs-rs `write_config_raw` order: the layers, then
 * `composefs.image`, `composefs.image.v1` and any other image keys (boot ones) by name.
 */
function configNamedRefs(
  layerRefs: [string, Uint8Array][],
  imageRefs: [string, Uint8Array][],
): [string, Uint8Array][] {
  const rank = (k: string) => (k === IMAGE_REF_V2 ? 0 : k === IMAGE_REF_V1 ? 1 : 2);
  const sorted = [...imageRefs].sort(([a], [b]) =>
    rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0)
  );
  return [...layerRefs, ...sorted];
}

function imagePresent(repo: Repository, id: Uint8Array): boolean {
  try {
    return idEqual(repo.imageId(toHex(id)), id);
  } catch {
    return false;
  }
}

/**
 * Make sure the container image `manifestDigest` has a composefs image for each wanted format
 * and that its config and manifest streams link them (repository-format §4.6). Idempotent: a
 * re-run after a crash at any point completes the linkage; an image already linked is not
 * rebuilt. Artifacts are left alone. Does not touch tags.
 */
export function ensureComposefsImage(
  repo: Repository,
  manifestDigest: string,
  opts: ComposefsImageOptions = {},
  prebuilt?: PrebuiltImages,
): ComposefsImageResult {
  const img = resolveImage(repo, `@${manifestDigest}`);
  const result: ComposefsImageResult = {
    manifestDigest,
    configDigest: img.configDigest,
    configVerity: img.configVerity,
    manifestVerity: img.manifestVerity,
    images: [],
    changed: false,
  };
  if (!img.isContainer || img.config === undefined) return result;
  // V0 has no config key in composefs-rs (which then fails the pull); we link the formats
  // that have one and say why V0 was left out.
  const all = imageVersions(repo, opts.erofsVersion);
  const versions = all.filter((v) => v !== 0);
  if (versions.length < all.length) result.skipped = new UnsupportedImageVersionError(0).message;
  const keys = versions.map(imageRefKey);
  const refs = new Map(img.configRefs);
  let tree: Directory | undefined;
  let configChanged = false;
  for (const [i, v] of versions.entries()) {
    const have = refs.get(keys[i]);
    if (have !== undefined && imagePresent(repo, have)) {
      result.images.push({ version: v, id: have });
      continue;
    }
    const ready = opts.xattrs === undefined
      ? prebuilt?.images.find((p) => p.version === v)
      : undefined;
    if (ready !== undefined) {
      repo.importTrustedObject(prebuilt!.objectsDir, ready.id, prebuilt!.store);
      repo.linkImageObject(ready.id);
      result.images.push({ version: v, id: ready.id });
      result.changed = true;
      if (have === undefined || !idEqual(have, ready.id)) configChanged = true;
      refs.set(keys[i], ready.id);
      continue;
    }
    if (tree === undefined) {
      try {
        tree = buildImageTree(repo, img, { xattrs: opts.xattrs });
      } catch (e) {
        if (e instanceof MergeError || e instanceof MissingUsrError) {
          result.skipped = e.message;
          result.images = [];
          return result;
        }
        throw e;
      }
    }
    const id = repo.writeImage(writeErofs(tree, { version: v }));
    result.images.push({ version: v, id });
    result.changed = true;
    if (have === undefined || !idEqual(have, id)) configChanged = true;
    refs.set(keys[i], id);
  }
  const diffIds = img.config.diffIds;
  const layerRefs: [string, Uint8Array][] = diffIds.map((d) => {
    const v = refs.get(d);
    if (v === undefined) {
      throw new InvalidOciDocumentError(
        "config",
        img.configDigest,
        `stream lacks the named ref for layer "${d}"`,
      );
    }
    return [d, v];
  });
  let configVerity = img.configVerity;
  if (configChanged) {
    const imageRefs = [...refs].filter(([k]) => k.startsWith(IMAGE_REF_PREFIX));
    configVerity = writeExternalStream(
      repo,
      CONTENT_TYPE.OCI_CONFIG,
      configNamedRefs(layerRefs, imageRefs),
      img.configBytes,
      configStreamName(img.configDigest),
    );
    result.changed = true;
  }
  // The manifest must point at the current config stream (also after a crash between the two).
  const mName = manifestStreamName(manifestDigest);
  const mStream = repo.readStream(mName, CONTENT_TYPE.OCI_MANIFEST);
  const linked = mStream.namedRefs.get(configRefName(img.configDigest));
  if (linked === undefined || !idEqual(linked, configVerity)) {
    result.manifestVerity = writeExternalStream(
      repo,
      CONTENT_TYPE.OCI_MANIFEST,
      manifestNamedRefs(img.configDigest, configVerity, layerRefs),
      img.manifestBytes,
      mName,
    );
    result.changed = true;
  }
  result.configVerity = configVerity;
  return result;
}

/**
 * The composefs images `ref`'s config links that are present in `repo` (V2 and V1 keys), for
 * a same-algorithm copy to link instead of rebuilding.
 */
export function linkedImages(repo: Repository, ref: string): LinkedImage[] {
  const img = resolveImage(repo, ref);
  const out: LinkedImage[] = [];
  for (const version of [2, 1] as const) {
    const id = img.configRefs.get(imageRefKey(version));
    if (id !== undefined && imagePresent(repo, id)) out.push({ version, id });
  }
  return out;
}

/** What {@link finalizeComposefsImage} returns. */
export interface FinalizedComposefsImage extends FinalizedImage {
  /** Images linked for the wanted formats (empty for artifacts). */
  images: LinkedImage[];
  /** Why no image was generated (see {@link ComposefsImageResult.skipped}). */
  skipped?: string;
}

/**
 * `finalizeImage` + {@link ensureComposefsImage} + tag, in that order: config and manifest
 * streams, the EROFS images and the rewritten streams are durable before the tag names them.
 * Use this wherever an image is completed (`oci pull`, `oci copy`, varlink FinalizeImage).
 */
export function finalizeComposefsImage(
  repo: Repository,
  manifestBytes: Uint8Array,
  configBytes: Uint8Array,
  layers: LayerRef[],
  tag?: string,
  opts: ComposefsImageOptions = {},
  prebuilt?: PrebuiltImages,
): FinalizedComposefsImage {
  if (tag !== undefined) validateTag(tag);
  if (prebuilt !== undefined) {
    const whole = finalizeFromPrebuilt(
      repo,
      manifestBytes,
      configBytes,
      layers,
      tag,
      opts,
      prebuilt,
    );
    if (whole !== null) return whole;
  }
  const fin = finalizeImage(repo, manifestBytes, configBytes, layers);
  const r = ensureComposefsImage(repo, fin.manifestDigest, opts, prebuilt);
  const out: FinalizedComposefsImage = {
    ...fin,
    configVerity: r.configVerity,
    manifestVerity: r.manifestVerity,
    images: r.images,
  };
  if (r.skipped !== undefined) out.skipped = r.skipped;
  if (tag !== undefined) {
    tagImage(repo, fin.manifestDigest, tag);
    out.tag = tag;
  }
  return out;
}

/**
 * A new container image whose composefs images a same-algorithm local source already has,
 * in one batch: the EROFS objects, the config stream with its final named refs (the ones
 * {@link ensureComposefsImage}'s rewrite would give it) and the manifest stream are stored,
 * then named — the first name syncs, once — then the tag. Null when the batch does not
 * apply (streams already present, an artifact, non-default xattr filtering, a format the
 * source lacks): the general path runs instead.
 */
function finalizeFromPrebuilt(
  repo: Repository,
  manifestBytes: Uint8Array,
  configBytes: Uint8Array,
  layers: LayerRef[],
  tag: string | undefined,
  opts: ComposefsImageOptions,
  prebuilt: PrebuiltImages,
): FinalizedComposefsImage | null {
  if (opts.xattrs !== undefined) return null;
  const manifestDigest = sha256Digest(manifestBytes);
  const configDigest = sha256Digest(configBytes);
  const cName = configStreamName(configDigest);
  const mName = manifestStreamName(manifestDigest);
  if (repo.hasStream(cName) !== null || repo.hasStream(mName) !== null) return null;
  const manifest = parseManifest(manifestBytes, manifestDigest);
  if (!isImageConfig(manifest.config.mediaType) || manifest.config.digest !== configDigest) {
    return null;
  }
  const images: LinkedImage[] = [];
  for (const v of imageVersions(repo, opts.erofsVersion)) {
    const ready = prebuilt.images.find((p) => p.version === v);
    if (v === 0 || ready === undefined) return null;
    images.push(ready);
  }
  for (const i of images) repo.importTrustedObject(prebuilt.objectsDir, i.id, prebuilt.store);
  const layerRefs = layers.map((l): [string, Uint8Array] => [l.diffId, l.verity]);
  const imageRefs = images.map((i): [string, Uint8Array] => [imageRefKey(i.version), i.id]);
  const configVerity = repo.storeStream(
    externalStreamBytes(
      repo,
      CONTENT_TYPE.OCI_CONFIG,
      configNamedRefs(layerRefs, imageRefs),
      configBytes,
    ),
    cName,
  );
  const manifestVerity = repo.storeStream(
    externalStreamBytes(
      repo,
      CONTENT_TYPE.OCI_MANIFEST,
      manifestNamedRefs(configDigest, configVerity, layerRefs),
      manifestBytes,
    ),
    mName,
  );
  for (const i of images) repo.linkImageObject(i.id);
  repo.linkStreamObject(cName, configVerity);
  repo.linkStreamObject(mName, manifestVerity);
  const out: FinalizedComposefsImage = {
    manifestDigest,
    configDigest,
    manifestVerity,
    configVerity,
    images,
  };
  if (tag !== undefined) {
    tagImage(repo, manifestDigest, tag);
    out.tag = tag;
  }
  return out;
}

/**
 * The image id linked from `ref`'s config for the wanted format.
 *
 * @throws {NoComposefsImageError} when none is linked.
 */
export function linkedImageId(
  repo: Repository,
  ref: string,
  opts: Pick<ComposefsImageOptions, "erofsVersion"> = {},
): Uint8Array {
  const img = resolveImage(repo, ref);
  const v = primaryVersion(repo, opts.erofsVersion);
  // Readers pick by epoch (composefs-rs oci_image.rs): V0 and V1 repositories read the V1 key.
  const id = img.configRefs.get(v === 2 ? IMAGE_REF_V2 : IMAGE_REF_V1);
  if (id === undefined) throw new NoComposefsImageError(ref, v);
  return id;
}

export { ImageNotFoundError };

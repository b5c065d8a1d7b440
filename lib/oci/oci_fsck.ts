/**
 * `oci fsck` (repository-format §4.11): the repository fsck, then per tagged image: tag name,
 * manifest digest and parse, `config:<digest>` named ref, config digest, and for container
 * images every diff_id's named ref, layer stream and referenced object. Layer contents are
 * not re-hashed (that is what `oci layer` + sha256 is for). The composefs linkage is checked
 * too: every `composefs.image*` ref of the config must name an image (`images/<hex>`) whose object exists
 * and parses as a composefs EROFS image.
 *
 * @module
 */

import type { Repository } from "../repository/repository.ts";
import { type FsckReport, fsckReportJson } from "../repository/fsck.ts";
import { idEqual, toHex } from "../repository/object_id.ts";
import { readAllAt } from "../../ffi/fs.ts";
import { fsckErofs } from "../erofs/reader.ts";
import { ImageNotFoundError } from "./errors.ts";
import { imageLayerStreams, listTags, resolveImage, type StoredImage } from "./image_store.ts";

/** Result of {@link ociFsck}. */
export interface OciFsckReport {
  /** No problems anywhere. */
  ok: boolean;
  /** Images checked. */
  imagesChecked: number;
  /** Images with at least one problem. */
  imagesCorrupted: number;
  /** One line per problem: `oci fsck: <kind>: <image>: <detail>`. */
  errors: string[];
  /** The repository-level report. */
  repo: FsckReport;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Check one image; returns its problems. */
function checkImage(repo: Repository, tag: string): string[] {
  const errs: string[] = [];
  const err = (kind: string, detail: string) => errs.push(`oci fsck: ${kind}: ${tag}: ${detail}`);
  if (tag.startsWith("@")) err("invalid-tag", "tag names must not start with '@'");
  let img: StoredImage;
  try {
    img = resolveImage(repo, tag);
  } catch (e) {
    const kind = e instanceof Error && e.name === "BlobDigestMismatchError"
      ? "digest-mismatch"
      : "image-open-failed";
    err(kind, errorText(e));
    return errs;
  }
  const streams = imageLayerStreams(img);
  const ids = img.config?.diffIds ?? img.manifest.layers.map((l) => l.digest);
  for (let i = 0; i < ids.length; i++) {
    const diffId = ids[i];
    const named = img.configRefs.get(diffId);
    if (img.isContainer && named === undefined) {
      err("missing-layer-ref", `config has no named ref for layer "${diffId}"`);
      continue;
    }
    let stream: Uint8Array | null;
    try {
      stream = repo.hasStream(streams[i]);
    } catch (e) {
      err("layer-stream-broken", `"${streams[i]}": ${errorText(e)}`);
      continue;
    }
    if (stream === null) {
      err("missing-layer-stream", `"${streams[i]}" does not exist`);
      continue;
    }
    if (named !== undefined && !idEqual(named, stream)) {
      // The named ref is what readers follow; the stream link may have been rewritten.
      if (!repo.hasObject(named)) {
        err("missing-layer-object", `"${diffId}" refers to missing object ${toHex(named)}`);
      }
    }
    if (!repo.hasObject(stream)) {
      err("missing-layer-object", `"${streams[i]}" refers to missing object ${toHex(stream)}`);
    }
  }
  checkComposefsLinkage(repo, img, err);
  return errs;
}

/** The config → `images/<hex>` links that `oci mount` follows. */
function checkComposefsLinkage(
  repo: Repository,
  img: StoredImage,
  err: (kind: string, detail: string) => void,
): void {
  // A manifest stream still naming the config stream from before the image refs were added
  // is not an error: it is what a crash between the two rewrites leaves (DESIGN 9), readers
  // follow streams/oci-config-…, and the next finalize re-points it.
  for (const [key, id] of img.configRefs) {
    if (!key.startsWith("composefs.image")) continue;
    const hex = toHex(id);
    try {
      if (!idEqual(repo.imageId(hex), id)) throw new Error(`images/${hex} names another object`);
      using fd = repo.openImage(hex);
      const problems = fsckErofs(readAllAt(fd));
      if (problems.length > 0) err("composefs-image-corrupt", `${key} ${hex}: ${problems[0]}`);
    } catch (e) {
      err("missing-composefs-image", `${key} ${hex}: ${errorText(e)}`);
    }
  }
}

/**
 * Check the repository and the given image (or every tagged image). A named image that does
 * not exist is an error ({@link ImageNotFoundError}), as in composefs-rs.
 */
export function ociFsck(repo: Repository, image?: string): OciFsckReport {
  const repoReport = repo.fsck();
  let tags: string[];
  if (image !== undefined) {
    if (!listTags(repo).includes(image) && !image.startsWith("@")) {
      throw new ImageNotFoundError(image, "the repository");
    }
    tags = [image];
  } else tags = listTags(repo);
  const errors: string[] = [];
  let corrupted = 0;
  for (const t of tags) {
    const e = checkImage(repo, t);
    if (e.length) corrupted++;
    errors.push(...e);
  }
  return {
    ok: repoReport.ok && errors.length === 0,
    imagesChecked: tags.length,
    imagesCorrupted: corrupted,
    errors,
    repo: repoReport,
  };
}

/** The CLI JSON shape: `{ok, images_checked, images_corrupted, errors[], repo: {…}}`. */
export function ociFsckJson(r: OciFsckReport): Record<string, unknown> {
  return {
    ok: r.ok,
    images_checked: r.imagesChecked,
    images_corrupted: r.imagesCorrupted,
    errors: r.errors,
    repo: fsckReportJson(r.repo),
  };
}

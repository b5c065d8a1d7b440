/**
 * `oci pull` from an OCI layout directory (`oci:`) or archive (`oci-archive:`): choose the
 * manifest, verify everything (blob sizes and digests, every layer's diff_id), import the
 * missing layers as splitstreams, then write config and manifest streams and the tag.
 * A failure tags nothing (the tag is the last write).
 *
 * Layers stream from the blob through decompression and hashing into the repository, one
 * bounded chunk at a time: memory does not grow with layer size.
 *
 * @module
 */

import { cooperate } from "../../ffi/event_loop.ts";
import type { Repository } from "../repository/repository.ts";
import { CONTENT_TYPE, SplitstreamWriter } from "../repository/splitstream.ts";
import { decompress, LayerDecompressionError } from "./decompress.ts";
import {
  BlobDigestMismatchError,
  BlobSizeMismatchError,
  InvalidOciDocumentError,
  UnsupportedMediaTypeError,
} from "./errors.ts";
import type { LayerRef } from "./image_store.ts";
import type { FormatVersion } from "../erofs/format.ts";
import { finalizeComposefsImage, type FinalizedComposefsImage } from "./composefs_image.ts";
import { emptyLayerStats, type LayerStats, LayerWriter } from "./layer_writer.ts";
import { MAX_CONFIG_SIZE, OciLayout, parseLayoutReference } from "./layout_source.ts";
import { type Descriptor, parseConfig, type Platform } from "./manifest.ts";
import { isImageConfig, tarLayerCompression } from "./media_types.ts";
import { layerStreamName, validateTag } from "./names.ts";
import { TarFormatError, TarSplitter } from "./tar_split.ts";

/** Progress events of a pull (the CLI renders them on stderr). */
export type PullEvent =
  | { type: "manifest"; manifestDigest: string; configDigest: string; layers: number }
  | { type: "layer-start"; index: number; digest: string; diffId: string; size: number }
  | { type: "layer-progress"; index: number; digest: string; read: number; size: number }
  | { type: "layer-done"; index: number; digest: string; diffId: string; stats: LayerStats }
  | { type: "layer-skipped"; index: number; digest: string; diffId: string };

/** Options of {@link pullImage}. */
export interface PullOptions {
  /** Tag to set (default: none). */
  tag?: string;
  /** Platform to select from an index (default: the running platform). */
  platform?: Platform;
  /** Progress callback. */
  onEvent?: (e: PullEvent) => void;
  /** Generate only this EROFS format (global `--erofs-version`); default: the repository's. */
  erofsVersion?: FormatVersion;
}

/** Result of {@link pullImage}. */
export interface PullResult extends FinalizedComposefsImage {
  /** Layers in config order. */
  layers: (LayerRef & { skipped: boolean })[];
  /** Summed counters of the imported layers. */
  stats: LayerStats;
}

async function importTarLayer(
  repo: Repository,
  layout: OciLayout,
  desc: Descriptor,
  diffId: string,
  index: number,
  onEvent?: (e: PullEvent) => void,
): Promise<{ verity: Uint8Array; stats: LayerStats }> {
  const compression = tarLayerCompression(desc.mediaType)!;
  let read = 0;
  const blob = layout.streamBlob(desc, "layer", (n) => {
    read += n;
    onEvent?.({ type: "layer-progress", index, digest: desc.digest, read, size: desc.size });
  });
  using w = new LayerWriter(repo, { diffId, layer: desc.digest });
  const splitter = new TarSplitter(w);
  const tar = decompress(blob, compression);
  try {
    for await (const chunk of tar) {
      await splitter.push(chunk);
      // The chain above is all microtasks: let timers and other connections have a turn.
      await cooperate();
    }
    splitter.finish();
  } catch (e) {
    if (e instanceof BlobDigestMismatchError || e instanceof BlobSizeMismatchError) throw e;
    // Decoding failed before the end of the blob: a corrupt blob is the root cause to report.
    const actual = layout.blobDigest(desc.digest);
    if (actual !== desc.digest) {
      throw new BlobDigestMismatchError("layer", desc.digest, actual, { cause: e });
    }
    if (e instanceof TarFormatError || compression === "none") throw e;
    throw new LayerDecompressionError(desc.digest, compression, { cause: e });
  }
  const r = w.commit();
  return { verity: r.verity, stats: r.stats };
}

/** A non-tar layer of an artifact: one external object in an `oci_blob` stream. */
async function importBlobLayer(
  repo: Repository,
  layout: OciLayout,
  desc: Descriptor,
): Promise<Uint8Array> {
  using obj = repo.createObjectWriter();
  for await (const chunk of layout.streamBlob(desc, "layer")) {
    obj.write(chunk);
    await cooperate();
  }
  const { id } = obj.finish();
  using sw = new SplitstreamWriter(repo.algorithm, CONTENT_TYPE.OCI_BLOB);
  sw.writeExternal(id, desc.size);
  return repo.writeStream(layerStreamName(desc.digest), sw.finish());
}

/**
 * Pull `source` (`oci:DIR[:TAG|@DIGEST]` or `oci-archive:FILE[:TAG|@DIGEST]`) into `repo`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Repository } from "../repository/repository.ts";
 * import { encodeTar } from "../tar/tar_writer.ts";
 * import { writeOciLayout } from "./layout_writer.ts";
 * import { pullImage } from "./pull.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const tar = encodeTar([
 *   { path: "usr/", type: "dir", mode: 0o755 },
 *   { path: "usr/hello.txt", type: "file", content: new Uint8Array(100) },
 * ]);
 * await writeOciLayout(`${dir}/layout`, [tar], { tag: "v1" });
 * using repo = await Repository.init(`${dir}/repo`, { algorithm: "sha256", insecure: true });
 * const r = await pullImage(repo, `oci:${dir}/layout:v1`, { tag: "hello:v1" });
 * assert.equal(r.tag, "hello:v1");
 * assert.equal(r.layers.length, 1);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function pullImage(
  repo: Repository,
  source: string,
  opts: PullOptions = {},
): Promise<PullResult> {
  // A bad tag must fail before any work is done, not after the layers are imported.
  if (opts.tag !== undefined) validateTag(opts.tag);
  const ref = parseLayoutReference(source);
  using layout = OciLayout.open(ref);
  const sel = layout.selectManifest(opts.platform);
  const manifest = sel.manifest;
  const configBytes = layout.readBlob(manifest.config, "config", MAX_CONFIG_SIZE);
  const isContainer = isImageConfig(manifest.config.mediaType);
  let diffIds: string[];
  if (isContainer) {
    diffIds = parseConfig(configBytes, manifest.config.digest).diffIds;
    if (diffIds.length !== manifest.layers.length) {
      throw new InvalidOciDocumentError(
        "config",
        manifest.config.digest,
        `${diffIds.length} diff_ids for ${manifest.layers.length} layers`,
      );
    }
  } else {
    // Artifacts: the layer digests stand in for diff_ids (composefs-rs oci/lib.rs:563-582).
    diffIds = manifest.layers.map((l) => l.digest);
  }
  opts.onEvent?.({
    type: "manifest",
    manifestDigest: sel.descriptor.digest,
    configDigest: manifest.config.digest,
    layers: manifest.layers.length,
  });
  const stats = emptyLayerStats();
  const layers: PullResult["layers"] = [];
  for (let i = 0; i < manifest.layers.length; i++) {
    const desc = manifest.layers[i];
    const diffId = diffIds[i];
    const name = layerStreamName(diffId);
    const existing = repo.hasStream(name);
    if (existing !== null) {
      opts.onEvent?.({ type: "layer-skipped", index: i, digest: desc.digest, diffId });
      layers.push({ diffId, verity: existing, skipped: true });
      continue;
    }
    opts.onEvent?.({ type: "layer-start", index: i, digest: desc.digest, diffId, size: desc.size });
    const compression = tarLayerCompression(desc.mediaType);
    let verity: Uint8Array;
    if (compression !== undefined) {
      const r = await importTarLayer(repo, layout, desc, diffId, i, opts.onEvent);
      verity = r.verity;
      for (const k of Object.keys(stats) as (keyof LayerStats)[]) stats[k] += r.stats[k];
      opts.onEvent?.({ type: "layer-done", index: i, digest: desc.digest, diffId, stats: r.stats });
    } else if (!isContainer) {
      verity = await importBlobLayer(repo, layout, desc);
      opts.onEvent?.({
        type: "layer-done",
        index: i,
        digest: desc.digest,
        diffId,
        stats: emptyLayerStats(),
      });
    } else {
      throw new UnsupportedMediaTypeError(desc.mediaType, `layer "${desc.digest}"`);
    }
    layers.push({ diffId, verity, skipped: false });
  }
  // Streams, then the composefs image and the config/manifest rewrite, then the tag (last).
  const fin = finalizeComposefsImage(repo, sel.bytes, configBytes, layers, opts.tag, {
    erofsVersion: opts.erofsVersion,
  });
  if (fin.manifestDigest !== sel.descriptor.digest) {
    // readBlob verified the bytes against this digest; this cannot differ.
    throw new BlobDigestMismatchError("manifest", sel.descriptor.digest, fin.manifestDigest);
  }
  return { ...fin, layers, stats };
}

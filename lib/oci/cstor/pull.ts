/**
 * `oci pull containers-storage:…`: import an image from containers-storage into a composefs
 * repository, zero-copy where the filesystem allows (reflink, else hardlink, else copy).
 *
 * Each missing layer's tar-split is turned into splitdirfdstream chunks (file contents named
 * beneath the layer's directory fd, CRC-checked) and drained through the same
 * {@link drainChunks} as `oci copy` and varlink PutLayer; the rebuilt tar must hash to the
 * layer's diff_id before the layer is named (composefs-rs checks neither, spec §5). The tag is
 * written last, so any failure tags nothing. The stores stay read-locked throughout.
 *
 * @module
 */

import type { Repository } from "../../repository/repository.ts";
import type { FormatVersion } from "../../erofs/format.ts";
import { finalizeComposefsImage } from "../composefs_image.ts";
import { drainChunks } from "../layer_sync.ts";
import { emptyLayerStats, type LayerCommit, type LayerStats } from "../layer_writer.ts";
import { DiffIdMismatchError } from "../errors.ts";
import { TarSplitCrcMismatchError } from "./errors.ts";
import { layerStreamName } from "../names.ts";
import type { PullEvent, PullResult } from "../pull.ts";
import { CstorImageSource, type CstorOpenOptions } from "./source.ts";

/** Options of {@link pullFromContainersStorage}. */
export interface CstorPullOptions extends CstorOpenOptions {
  /** Tag to set (default: none). */
  tag?: string;
  /** `--zerocopy`: reflink or hardlink only; fail instead of copying (default false). */
  zeroCopy?: boolean;
  /**
   * Check every file's tar-split CRC-64 before storing it (default true). With `false` the
   * layer's diff_id check alone guards the content (sha256 is the stronger check; this saves
   * a pass over the data), and a mismatch is then traced to its file with the CRCs.
   */
  verifyCrc?: boolean;
  /** Progress callback (same events as an `oci:` pull). */
  onEvent?: (e: PullEvent) => void;
  /** Generate only this EROFS format (global `--erofs-version`); default: the repository's. */
  erofsVersion?: FormatVersion;
}

/** Result of {@link pullFromContainersStorage}. */
export interface CstorPullResult extends PullResult {
  /** containers-storage image id. */
  imageId: string;
  /** Graph root of the store the image was found in. */
  store: string;
}

/**
 * After a diff_id mismatch with CRC checks off: re-read the layer with them on, to name the
 * file that changed. Throws its {@link TarSplitCrcMismatchError} (caused by `mismatch`);
 * returns when every file still matches (the tar-split metadata itself is then at fault).
 */
async function pinpointChangedFile(
  src: CstorImageSource,
  index: number,
  mismatch: DiffIdMismatchError,
): Promise<void> {
  using again = src.openLayer(index, { verifyCrc: true });
  try {
    for await (const _ of again.chunks) { /* the CRC check is the point */ }
  } catch (e) {
    if (e instanceof TarSplitCrcMismatchError) {
      throw new TarSplitCrcMismatchError(e.layerId, e.file, e.expected, e.actual, {
        cause: mismatch,
      });
    }
    throw e;
  }
}

/**
 * Pull `reference` (`containers-storage:[driver@root+run]NAME[:TAG]`, `…@ID`, …) into `repo`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Repository } from "../../repository/repository.ts";
 * import { pullFromContainersStorage } from "./pull.ts";
 * import { StoreNotFoundError } from "./errors.ts";
 * const dir = await Deno.makeTempDir();
 * const repo = await Repository.init(`${dir}/repo`, { algorithm: "sha256", insecure: true });
 * await assert.rejects(
 *   pullFromContainersStorage(repo, `containers-storage:[overlay@${dir}/none]localhost/x:1`),
 *   StoreNotFoundError,
 * );
 * repo.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @throws {StoreNotFoundError}, {ImageNotFoundError}, {LayerMismatchError},
 *   {StorageConfError}, {CstorReferenceError} before anything is written;
 *   {TarSplitCrcMismatchError}, {LayerContentError}, {DiffIdMismatchError} while a layer is
 *   read (nothing is named for that layer, nothing is tagged).
 */
export async function pullFromContainersStorage(
  repo: Repository,
  reference: string,
  opts: CstorPullOptions = {},
): Promise<CstorPullResult> {
  using src = CstorImageSource.open(reference, opts);
  opts.onEvent?.({
    type: "manifest",
    manifestDigest: src.manifestDigest,
    configDigest: src.configDigest,
    layers: src.layers.length,
  });
  const stats = emptyLayerStats();
  const layers: PullResult["layers"] = [];
  for (let i = 0; i < src.layers.length; i++) {
    const l = src.layers[i];
    const existing = repo.hasStream(layerStreamName(l.diffId));
    if (existing !== null) {
      opts.onEvent?.({ type: "layer-skipped", index: i, digest: l.digest, diffId: l.diffId });
      layers.push({ diffId: l.diffId, verity: existing, skipped: true });
      continue;
    }
    const size = l.size ?? 0;
    opts.onEvent?.({ type: "layer-start", index: i, digest: l.digest, diffId: l.diffId, size });
    using stream = src.openLayer(i, { verifyCrc: opts.verifyCrc ?? true });
    let r: LayerCommit;
    try {
      r = await drainChunks(repo, stream.chunks, stream.dirfds, {
        diffId: l.diffId,
        allowReflink: true,
        allowHardlink: true,
        allowCopy: !opts.zeroCopy,
        // Layer diff files are immutable under the store's read lock (they are hardlinked
        // into the repository on the same premise): hash them rather than the cold clone.
        stableSource: true,
        onProgress: (read) =>
          opts.onEvent?.({ type: "layer-progress", index: i, digest: l.digest, read, size }),
      });
    } catch (e) {
      if (e instanceof DiffIdMismatchError && opts.verifyCrc === false) {
        await pinpointChangedFile(src, i, e);
      }
      throw e;
    }
    for (const k of Object.keys(stats) as (keyof LayerStats)[]) stats[k] += r.stats[k];
    opts.onEvent?.({
      type: "layer-done",
      index: i,
      digest: l.digest,
      diffId: l.diffId,
      stats: r.stats,
    });
    layers.push({ diffId: l.diffId, verity: r.verity, skipped: false });
  }
  // Streams, then the composefs image and the config/manifest rewrite, then the tag (last).
  const fin = finalizeComposefsImage(repo, src.manifest, src.config, layers, opts.tag, {
    erofsVersion: opts.erofsVersion,
  });
  return {
    ...fin,
    layers,
    stats,
    imageId: src.imageId,
    store: src.stores[src.imageStore].path,
  };
}

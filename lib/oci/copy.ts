/**
 * `oci copy`: an image from a layer source to a layer sink through splitdirfdstream
 * (spec cli-oci-cstor §3). Manifest and config bytes are kept exactly, so OCI digests are
 * unchanged; layers are re-hashed into the sink's algorithm and checked against their
 * diff_ids; the tag is written last.
 *
 * @module
 */

import type { HashAlgorithm } from "../fsverity/mod.ts";
import type { LayerSink, LayerSource, PutLayerResult } from "./copy_endpoint.ts";
import type { LayerRef } from "./image_store.ts";
import type { LayerStats } from "./layer_writer.ts";

/** Progress of a copy, as typed events (the CLI renders them; the library never prints). */
export type CopyEvent =
  | { type: "start"; image: string; layers: number }
  | { type: "layer-skipped"; index: number; diffId: string }
  | { type: "layer-start"; index: number; diffId: string }
  | { type: "layer-progress"; index: number; diffId: string; bytes: number }
  | { type: "layer-done"; index: number; diffId: string; bytes: number; stats: LayerStats }
  | { type: "finalized"; manifestDigest: string };

/** Options of {@link copyImage}. */
export interface CopyOptions {
  /** Tag in the destination; default the source's tag (so the copy is a GC root). */
  name?: string;
  /** Reflink or hardlink only; refuse up front when that cannot work. */
  zerocopy?: boolean;
  /**
   * Re-hash every object and check every diff_id even between local repositories of one
   * algorithm (where, by default, objects are linked under their known names unread).
   */
  verify?: boolean;
  /** Progress events. */
  onEvent?: (e: CopyEvent) => void;
}

/** Totals of one copy (the `--json` summary). */
export interface CopySummary {
  /** The image reference that was copied. */
  image: string;
  /** Tag written in the destination, if any. */
  tag: string | null;
  /** Manifest digest (same on both sides). */
  manifestDigest: string;
  /** Config digest (same on both sides). */
  configDigest: string;
  /** fs-verity of the destination manifest stream, hex. */
  manifestVerity: string;
  /** fs-verity of the destination config stream, hex. */
  configVerity: string;
  /** Source and destination algorithms. */
  algorithms: { source: HashAlgorithm; destination: HashAlgorithm };
  /** Layers transferred. */
  layersCopied: number;
  /** Layers the destination already had. */
  layersSkipped: number;
  /** External objects stored by reflink. */
  objectsReflinked: number;
  /** External objects stored by hardlink. */
  objectsHardlinked: number;
  /** External objects stored by copying bytes. */
  objectsCopied: number;
  /** External objects the destination already had. */
  objectsAlreadyPresent: number;
  /** Layer bytes transferred (tar size). */
  bytes: number;
  /** Wall-clock seconds. */
  seconds: number;
}

/** `--zerocopy` cannot work between these repositories; nothing was written. */
export class ZeroCopyUnavailableError extends Error {
  /** Always `ZeroCopyUnavailableError`. */
  override name = "ZeroCopyUnavailableError";
  /** Why: different algorithms or different filesystems. */
  readonly reason: "algorithm" | "filesystem";
  /** Build the error from its structured fields. */
  constructor(reason: "algorithm" | "filesystem", detail: string) {
    super(detail);
    this.reason = reason;
  }
}

/** The source image has no manifest or config. */
export class EmptyImageError extends Error {
  /** Always `EmptyImageError`. */
  override name = "EmptyImageError";
  /** The image reference. */
  readonly image: string;
  /** Build the error from its structured fields. */
  constructor(image: string) {
    super(`Source image "${image}" has an empty manifest or config`);
    this.image = image;
  }
}

/**
 * Copy `image` (a tag or `@sha256:<manifest digest>` in the source) from `source` to `sink`.
 *
 * @example Copy an image from a sha256 repository into a sha512 one
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   copyImage,
 *   encodeTar,
 *   LocalRepositoryEndpoint,
 *   pullImage,
 *   Repository,
 *   writeOciLayout,
 * } from "@cfs-deno/cfs";
 *
 * const dir = await Deno.makeTempDir();
 * const tar = encodeTar([{ path: "hello.txt", type: "file", content: new Uint8Array(100) }]);
 * await writeOciLayout(`${dir}/layout`, [tar], { tag: "demo" });
 * using src = await Repository.init(`${dir}/a`, { algorithm: "sha256", insecure: true });
 * await pullImage(src, `oci:${dir}/layout:demo`, { tag: "demo" });
 * using dst = await Repository.init(`${dir}/b`, { algorithm: "sha512", insecure: true });
 * const summary = await copyImage(
 *   new LocalRepositoryEndpoint(src),
 *   new LocalRepositoryEndpoint(dst),
 *   "demo",
 * );
 * assert.equal(summary.layersCopied, 1);
 * assert.equal(summary.tag, "demo");
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @throws {ZeroCopyUnavailableError} with `zerocopy`, when the algorithms or filesystems differ
 *   (checked before anything is written).
 * @throws the source's not-found error, `DiffIdMismatchError` from the sink, I/O errors.
 */
export async function copyImage(
  source: LayerSource,
  sink: LayerSink,
  image: string,
  opts: CopyOptions = {},
): Promise<CopySummary> {
  const t0 = performance.now();
  if (opts.zerocopy) {
    if (source.algorithm !== sink.algorithm) {
      throw new ZeroCopyUnavailableError(
        "algorithm",
        `--zerocopy requires matching hash algorithms; source uses ${source.algorithm} but destination uses ${sink.algorithm}`,
      );
    }
    if (
      source.objectsDevice !== undefined && sink.objectsDevice !== undefined &&
      source.objectsDevice !== sink.objectsDevice
    ) {
      throw new ZeroCopyUnavailableError(
        "filesystem",
        "--zerocopy requires both repositories on one filesystem (reflinks and hardlinks cannot cross filesystems)",
      );
    }
  }
  const img = await source.inspect(image);
  if (img.manifest.length === 0 || img.config.length === 0) throw new EmptyImageError(image);
  const summary: CopySummary = {
    image,
    tag: null,
    manifestDigest: img.manifestDigest,
    configDigest: "",
    manifestVerity: "",
    configVerity: "",
    algorithms: { source: source.algorithm, destination: sink.algorithm },
    layersCopied: 0,
    layersSkipped: 0,
    objectsReflinked: 0,
    objectsHardlinked: 0,
    objectsCopied: 0,
    objectsAlreadyPresent: 0,
    bytes: 0,
    seconds: 0,
  };
  opts.onEvent?.({ type: "start", image, layers: img.layerIds.length });
  // Between local repositories of one algorithm the layer splitstreams come out identical,
  // so objects are linked under the names they already have, unread: the data was verified
  // when it entered the source. Across algorithms or a trust boundary everything is
  // re-hashed and each diff_id checked.
  const trustedObjectNames = !opts.verify && source.localRepository === true &&
    source.algorithm === sink.algorithm;
  const layers: LayerRef[] = new Array(img.layerIds.length);
  const pending: { index: number; diffId: string }[] = [];
  // A diff_id listed twice (identical layers, e.g. empty ones) travels once.
  const repeats = new Map<number, number>();
  const firstPending = new Map<string, number>();
  for (const [index, diffId] of img.layerIds.entries()) {
    const first = firstPending.get(diffId);
    if (first !== undefined) {
      repeats.set(index, first);
      continue;
    }
    const existing = await sink.hasLayer(diffId);
    if (existing === null) {
      pending.push({ index, diffId });
      firstPending.set(diffId, index);
    } else {
      summary.layersSkipped++;
      layers[index] = { diffId, verity: existing };
      opts.onEvent?.({ type: "layer-skipped", index, diffId });
    }
  }
  const store = {
    allowReflink: true,
    // Hardlinks only between repositories of one algorithm: in a secure repository the
    // link would need fs-verity enabled in place on the source's file (cli-oci-cstor §3.4).
    allowHardlink: source.algorithm === sink.algorithm,
    allowCopy: !opts.zerocopy,
  };
  const done = (index: number, diffId: string, bytes: number, r: PutLayerResult) => {
    summary.layersCopied++;
    summary.bytes += bytes;
    summary.objectsReflinked += r.stats.objectsReflinked;
    summary.objectsHardlinked += r.stats.objectsHardlinked;
    summary.objectsCopied += r.stats.objectsCopied;
    summary.objectsAlreadyPresent += r.stats.objectsAlreadyPresent;
    layers[index] = { diffId, verity: r.verity };
    opts.onEvent?.({ type: "layer-done", index, diffId, bytes, stats: r.stats });
  };
  // A same-algorithm local pair moves each layer's closure (its stream and objects, linked
  // under the names they have), all layers in one batch so their names cost one sync;
  // everything else travels as splitdirfdstream.
  const closures = trustedObjectNames && sink.putLayerClosures && source.layerClosure
    ? pending.flatMap((p) => {
      const closure = source.layerClosure!(p.diffId);
      return closure === null ? [] : [{ ...p, closure }];
    })
    : [];
  if (closures.length > 0) {
    const results = await sink.putLayerClosures!(closures, store, (i, bytes) => {
      const { index, diffId } = closures[i];
      opts.onEvent?.(
        bytes === 0
          ? { type: "layer-start", index, diffId }
          : { type: "layer-progress", index, diffId, bytes },
      );
    });
    for (const [i, c] of closures.entries()) done(c.index, c.diffId, c.closure.size, results[i]);
  }
  for (const { index, diffId } of pending) {
    if (layers[index] !== undefined) continue;
    opts.onEvent?.({ type: "layer-start", index, diffId });
    let bytes = 0;
    await using transfer = await source.getLayer(diffId);
    const r = await sink.putLayer(diffId, transfer, {
      ...store,
      trustedObjectNames,
      // A repository this process opened: its objects are immutable.
      stableSource: source.localRepository === true,
      onProgress: (n: number) => {
        bytes = n;
        opts.onEvent?.({ type: "layer-progress", index, diffId, bytes: n });
      },
    });
    done(index, diffId, bytes, r);
  }
  for (const [index, first] of repeats) {
    layers[index] = layers[first];
    summary.layersSkipped++;
    opts.onEvent?.({ type: "layer-skipped", index, diffId: layers[first].diffId });
  }
  const tag = opts.name ?? img.tag;
  // Same reasoning for the composefs images: a same-algorithm local sink would generate the
  // source's EROFS byte for byte, so it links it.
  const images = trustedObjectNames ? source.composefsImages?.(image) : undefined;
  const prebuilt = images && images.images.length > 0 ? { ...images, store } : undefined;
  const fin = await sink.finalizeImage(img.manifest, img.config, layers, tag, prebuilt);
  opts.onEvent?.({ type: "finalized", manifestDigest: fin.manifestDigest });
  summary.tag = tag ?? null;
  summary.configDigest = fin.configDigest;
  summary.manifestVerity = fin.manifestVerity.toHex();
  summary.configVerity = fin.configVerity.toHex();
  summary.seconds = (performance.now() - t0) / 1000;
  return summary;
}

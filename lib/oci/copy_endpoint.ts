/**
 * The two abstract ends of `oci copy` (DESIGN "Layers"): a layer source and a layer sink.
 * A local repository implements both ({@link LocalRepositoryEndpoint}); the varlink client
 * implements them over a socket. `copyImage` only ever talks to these interfaces, so
 * `lib/oci/` never imports `lib/varlink/`.
 *
 * A layer travels as splitdirfdstream bytes plus directory fds: exactly what GetLayer puts in
 * its pipe and PutLayer reads from it.
 *
 * @module
 */

import type { BorrowedFd } from "../../ffi/owned_fd.ts";
import type { Chunk } from "../splitdirfdstream/chunk.ts";
import type { HashAlgorithm } from "../fsverity/mod.ts";
import type { Repository } from "../repository/repository.ts";
import { SplitdirfdstreamDecoderStream } from "../splitdirfdstream/decoder.ts";
import { SplitdirfdstreamEncoderStream } from "../splitdirfdstream/encoder.ts";
import { type FinalizedImage, type LayerRef, resolveImage } from "./image_store.ts";
import {
  type ComposefsImageOptions,
  finalizeComposefsImage,
  linkedImages,
  type PrebuiltImages,
} from "./composefs_image.ts";
import { drainChunks, produceLayer } from "./layer_sync.ts";
import {
  type ClosureImportOptions,
  importLayerClosures,
  type LayerClosure,
  layerClosure,
} from "./layer_closure.ts";
import type { LayerStats } from "./layer_writer.ts";
import { layerStreamName } from "./names.ts";
import { listTags, resolveManifestDigest } from "./image_store.ts";

/** An image's documents as the source stores them (bytes kept exactly). */
export interface SourceImage {
  /** `sha256:` of the manifest. */
  manifestDigest: string;
  /** Raw manifest bytes. */
  manifest: Uint8Array;
  /** Raw config bytes. */
  config: Uint8Array;
  /** Layer ids in order: config diff_ids (container images) or manifest layer digests. */
  layerIds: string[];
  /** A tag of the source image, when the reference was a tag (default `--name`). */
  tag?: string;
}

/** A layer in transit: splitdirfdstream bytes and the dirfds its FileBackedData chunks use. */
export interface LayerTransfer extends AsyncDisposable {
  /** splitdirfdstream bytes (what crosses a pipe). Read either this or `chunks`, not both. */
  readonly bytes: ReadableStream<Uint8Array>;
  /**
   * The same stream already decoded, when the producer lives in this process: a consumer in
   * the same process takes it and skips encoding and decoding every chunk.
   */
  readonly chunks?: ReadableStream<Chunk>;
  /** Directory fds, lent by this transfer: valid until it is disposed, which closes them. */
  readonly dirfds: readonly BorrowedFd[];
}

/**
 * A layer as its closure in a local repository: the stream object and the objects it
 * references, all beneath `objectsDir` (borrowed from the source; valid while it is open).
 */
export interface LayerClosureTransfer extends LayerClosure {
  /** The source repository's `objects/` directory. */
  objectsDir: BorrowedFd;
}

/** Where layers come from. */
export interface LayerSource {
  /** fs-verity algorithm of the source repository. */
  readonly algorithm: HashAlgorithm;
  /** `st_dev` of the source `objects/` directory, when local. */
  readonly objectsDevice?: bigint;
  /**
   * True for a repository this process opened itself: its FileBackedData names are object
   * ids that a same-algorithm sink may link without re-hashing.
   */
  readonly localRepository?: boolean;
  /** Read an image's manifest and config by tag or `@sha256:…`. */
  inspect(image: string): Promise<SourceImage>;
  /** Stream one stored layer. */
  getLayer(diffId: string): Promise<LayerTransfer>;
  /**
   * A local repository's layer as its closure, for a same-algorithm sink in this process
   * (see layer_closure.ts); null when the layer has to travel as a stream.
   */
  layerClosure?(diffId: string): LayerClosureTransfer | null;
  /**
   * A local repository's composefs images of `image` (beneath its `objects/`), which a
   * same-algorithm sink in this process links instead of regenerating.
   */
  composefsImages?(image: string): Omit<PrebuiltImages, "store">;
}

/** How the sink may store objects. */
export interface PutLayerOptions {
  /** Try reflinks. */
  allowReflink: boolean;
  /** Try hardlinks. */
  allowHardlink: boolean;
  /** Fall back to copying. */
  allowCopy: boolean;
  /** Take FileBackedData names as trusted object ids (see `DrainOptions.trustedObjectNames`). */
  trustedObjectNames?: boolean;
  /** The producer's files are never modified (see `DrainOptions.stableSource`). */
  stableSource?: boolean;
  /** Layer bytes consumed so far. */
  onProgress?: (bytes: number) => void;
}

/** What a sink reports for one stored layer (PutLayerReply's counters). */
export interface PutLayerResult {
  /** fs-verity of the new layer splitstream. */
  verity: Uint8Array;
  /** Counters. */
  stats: LayerStats;
}

/** Where layers go. */
export interface LayerSink {
  /** fs-verity algorithm of the destination repository. */
  readonly algorithm: HashAlgorithm;
  /** `st_dev` of the destination `objects/` directory, when local. */
  readonly objectsDevice?: bigint;
  /** The stored layer's verity, or null when absent. */
  hasLayer(diffId: string): Promise<Uint8Array | null>;
  /** Consume a layer; verifies its sha256 against `diffId` before naming anything. */
  putLayer(diffId: string, layer: LayerTransfer, opts: PutLayerOptions): Promise<PutLayerResult>;
  /**
   * Link trusted layer closures from a same-algorithm local source (objects are named by
   * their digests there, so nothing is read or re-hashed); the layers are named together
   * after their objects, with one sync. `onProgress` gets each layer's (estimated) bytes
   * done: 0 when it starts, its size when its objects are in.
   */
  putLayerClosures?(
    layers: { diffId: string; closure: LayerClosureTransfer }[],
    store: ClosureImportOptions,
    onProgress?: (layer: number, bytes: number) => void,
  ): Promise<PutLayerResult[]>;
  /** Write config and manifest streams (bytes kept exactly) and the tag, last. */
  finalizeImage(
    manifest: Uint8Array,
    config: Uint8Array,
    layers: LayerRef[],
    tag?: string,
    prebuilt?: PrebuiltImages,
  ): Promise<FinalizedImage>;
}

/** A local repository as both ends of a copy. */
export class LocalRepositoryEndpoint implements LayerSource, LayerSink {
  readonly #repo: Repository;
  readonly #imageOpts: ComposefsImageOptions;

  /**
   * Wrap an open repository (opened for writing when used as a sink). `imageOpts` controls
   * the composefs image generated when an image is finalized (EROFS format override).
   */
  constructor(repo: Repository, imageOpts: ComposefsImageOptions = {}) {
    this.#repo = repo;
    this.#imageOpts = imageOpts;
  }

  /** A local repository (see {@link LayerSource.localRepository}). */
  readonly localRepository = true;

  /** The repository's algorithm. */
  get algorithm(): HashAlgorithm {
    return this.#repo.algorithm;
  }

  /** Device of `objects/`. */
  get objectsDevice(): bigint {
    return this.#repo.objectsDevice();
  }

  inspect(image: string): Promise<SourceImage> {
    const img = resolveImage(this.#repo, image);
    let tag: string | undefined;
    if (!image.startsWith("@")) tag = image;
    else {
      // A digest reference: default the name to a tag pointing at the same manifest, if any.
      const digest = resolveManifestDigest(this.#repo, image);
      tag = listTags(this.#repo).find((t) => resolveManifestDigest(this.#repo, t) === digest);
    }
    return Promise.resolve({
      manifestDigest: img.manifestDigest,
      manifest: img.manifestBytes,
      config: img.configBytes,
      layerIds: img.config?.diffIds ?? img.manifest.layers.map((l) => l.digest),
      ...(tag === undefined ? {} : { tag }),
    });
  }

  getLayer(diffId: string): Promise<LayerTransfer> {
    const produced = produceLayer(this.#repo, diffId);
    return Promise.resolve({
      // Encoded only when a consumer asks for bytes (a varlink sink); a local sink reads chunks.
      get bytes() {
        return produced.chunks.pipeThrough(new SplitdirfdstreamEncoderStream());
      },
      chunks: produced.chunks,
      dirfds: produced.dirfds,
      [Symbol.asyncDispose]() {
        produced[Symbol.dispose]();
        return Promise.resolve();
      },
    });
  }

  layerClosure(diffId: string): LayerClosureTransfer | null {
    const c = layerClosure(this.#repo, diffId);
    return c === null ? null : { ...c, objectsDir: this.#repo.objectsDirFd() };
  }

  putLayerClosures(
    layers: { diffId: string; closure: LayerClosureTransfer }[],
    store: ClosureImportOptions,
    onProgress?: (layer: number, bytes: number) => void,
  ): Promise<PutLayerResult[]> {
    return importLayerClosures(this.#repo, layers, store, onProgress);
  }

  hasLayer(diffId: string): Promise<Uint8Array | null> {
    return Promise.resolve(this.#repo.hasStream(layerStreamName(diffId)));
  }

  async putLayer(
    diffId: string,
    layer: LayerTransfer,
    opts: PutLayerOptions,
  ): Promise<PutLayerResult> {
    const chunks = layer.chunks ?? layer.bytes.pipeThrough(new SplitdirfdstreamDecoderStream());
    const r = await drainChunks(this.#repo, chunks, layer.dirfds, { diffId, ...opts });
    return { verity: r.verity, stats: r.stats };
  }

  composefsImages(image: string): Omit<PrebuiltImages, "store"> {
    return { objectsDir: this.#repo.objectsDirFd(), images: linkedImages(this.#repo, image) };
  }

  finalizeImage(
    manifest: Uint8Array,
    config: Uint8Array,
    layers: LayerRef[],
    tag?: string,
    prebuilt?: PrebuiltImages,
  ): Promise<FinalizedImage> {
    // Config/manifest streams, the composefs image and the rewrite cascade, then the tag.
    return Promise.resolve(
      finalizeComposefsImage(
        this.#repo,
        manifest,
        config,
        layers,
        tag,
        this.#imageOpts,
        prebuilt,
      ),
    );
  }
}

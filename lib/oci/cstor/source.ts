/**
 * An image in containers-storage, opened for import: the stores resolved as c/storage does,
 * read-locked for as long as the value lives, the image found, its manifest and config read
 * (bytes kept exactly), and its layer chain matched against the config's diff_ids.
 *
 * @module
 */

import type { OwnedFd } from "../../../ffi/owned_fd.ts";
import type { Chunk } from "../../splitdirfdstream/chunk.ts";
import { sha256Digest } from "../digest.ts";
import { ImageNotFoundError, InvalidOciDocumentError } from "../errors.ts";
import { parseConfig, parseManifest } from "../manifest.ts";
import { isImageConfig } from "../media_types.ts";
import { LayerMismatchError, TarSplitCorruptError } from "./errors.ts";
import { layerChunks, type LayerChunksOptions, type LayerChunksStats } from "./layer_chunks.ts";
import { applyStoreSpec, type CstorReference, parseCstorReference } from "./reference.ts";
import { ContainersStore, type StoreLock } from "./store.ts";
import { type ResolveContext, resolveStoreOptions, type StoreOptions } from "./storage_conf.ts";
import { findImage, layerChain, type LayerRecord } from "./store_model.ts";
import { TarSplitDecoderStream, TarSplitFormatError } from "./tar_split_entries.ts";

/** One layer of an opened image. */
export interface CstorLayer {
  /** The config's diff_id. */
  diffId: string;
  /** The manifest's layer descriptor digest (compressed digest, as pulled). */
  digest: string;
  /** containers-storage layer id. */
  layerId: string;
  /** Uncompressed size from layers.json, when recorded. */
  size?: number;
  /** Index into {@link CstorImageSource.stores}. */
  store: number;
}

/** A layer being read: its chunks, the directory fds they name, and counters. */
export interface CstorLayerStream extends Disposable {
  /** splitdirfdstream chunks, in tar order. */
  chunks: AsyncGenerator<Chunk>;
  /** dirfd 0 = the layer's directory; overlay lower layers follow, closest first. */
  dirfds: OwnedFd[];
  /** Filled in while `chunks` is consumed. */
  stats: LayerChunksStats;
}

/** Options of {@link CstorImageSource.open}. */
export interface CstorOpenOptions extends ResolveContext {
  /** Use these store options instead of resolving storage.conf. */
  storeOptions?: StoreOptions;
}

/** An image in containers-storage, open and read-locked until disposed. */
export class CstorImageSource implements Disposable {
  /** The parsed reference. */
  readonly reference: CstorReference;
  /** The stores searched (graph root first, then additional image stores). */
  readonly stores: ContainersStore[];
  /** Index of the store the image was found in. */
  readonly imageStore: number;
  /** Image id (the config digest's hex). */
  readonly imageId: string;
  /** Raw manifest bytes and their digest. */
  readonly manifest: Uint8Array;
  /** `sha256:` of {@link CstorImageSource.manifest}. */
  readonly manifestDigest: string;
  /** Raw config bytes and their digest. */
  readonly config: Uint8Array;
  /** `sha256:` of {@link CstorImageSource.config}. */
  readonly configDigest: string;
  /** Layers in config order. */
  readonly layers: CstorLayer[];
  #locks: StoreLock[];

  private constructor(init: {
    reference: CstorReference;
    stores: ContainersStore[];
    locks: StoreLock[];
    imageStore: number;
    imageId: string;
    manifest: Uint8Array;
    config: Uint8Array;
    layers: CstorLayer[];
  }) {
    this.reference = init.reference;
    this.stores = init.stores;
    this.#locks = init.locks;
    this.imageStore = init.imageStore;
    this.imageId = init.imageId;
    this.manifest = init.manifest;
    this.manifestDigest = sha256Digest(init.manifest);
    this.config = init.config;
    this.configDigest = sha256Digest(init.config);
    this.layers = init.layers;
  }

  /**
   * Resolve the stores (storage.conf, environment, the reference's `[driver@root+run]`), open
   * and read-lock them, and find the image.
   *
   * @throws {StoreNotFoundError} a store directory is missing or not a store.
   * @throws {ImageNotFoundError} no store has the image.
   * @throws {LayerMismatchError} the layer chain disagrees with the config's diff_ids.
   */
  static open(reference: string, opts: CstorOpenOptions = {}): CstorImageSource {
    const ref = parseCstorReference(reference);
    const so = applyStoreSpec(opts.storeOptions ?? resolveStoreOptions(opts), ref.store);
    const stores: ContainersStore[] = [];
    const locks: StoreLock[] = [];
    const cleanup = () => {
      for (const l of locks.reverse()) l[Symbol.dispose]();
      for (const s of stores) s[Symbol.dispose]();
    };
    try {
      stores.push(ContainersStore.open(so.graphRoot, so.driver, false));
      for (const p of so.imageStores) {
        // An additional store need not use the main store's driver name in its layout.
        stores.push(ContainersStore.open(p, so.driver ?? stores[0].driver, true));
      }
      for (const s of stores) locks.push(s.lock());
      // Images: the first store that has it wins (c/storage searches the RW store first).
      let found: { store: number; image: ReturnType<typeof findImage> } | null = null;
      for (let i = 0; i < stores.length && !found; i++) {
        const image = findImage(stores[i].images(), ref.image, ref.text);
        if (image) found = { store: i, image };
      }
      if (!found || !found.image) {
        throw new ImageNotFoundError(
          ref.text,
          `containers-storage (${stores.map((s) => `"${s.path}"`).join(", ")})`,
        );
      }
      const image = found.image;
      const st = stores[found.store];
      const manifest = st.bigData(image.id, "manifest");
      const config = st.bigData(image.id, `sha256:${image.id}`);
      const m = parseManifest(manifest);
      const configDigest = sha256Digest(config);
      if (m.config.digest !== configDigest) {
        throw new InvalidOciDocumentError(
          "manifest",
          sha256Digest(manifest),
          `config descriptor "${m.config.digest}" but the stored config is "${configDigest}"`,
        );
      }
      if (!isImageConfig(m.config.mediaType)) {
        throw new LayerMismatchError(image.id, `"${m.config.mediaType}" is not an image config`);
      }
      const diffIds = parseConfig(config, configDigest).diffIds;
      const allLayers: LayerRecord[][] = stores.map((s) => s.layers());
      const chain = layerChain(image, allLayers, found.store);
      if (chain.length !== diffIds.length || m.layers.length !== diffIds.length) {
        throw new LayerMismatchError(
          image.id,
          `${chain.length} storage layers and ${m.layers.length} manifest layers for ${diffIds.length} diff_ids`,
        );
      }
      const layers: CstorLayer[] = chain.map(({ layer, store }, i) => {
        if (layer.diffDigest !== undefined && layer.diffDigest !== diffIds[i]) {
          throw new LayerMismatchError(
            image.id,
            `layer ${i} ("${layer.id}") has diff-digest "${layer.diffDigest}" but the config says "${
              diffIds[i]
            }"`,
          );
        }
        // The layer's content may live in another store (c/storage searches all layer stores).
        let s = store;
        if (!stores[s].hasLayerDir(layer.id)) {
          const other = stores.findIndex((x) => x.hasLayerDir(layer.id));
          if (other < 0) {
            throw new LayerMismatchError(image.id, `layer "${layer.id}" has no content directory`);
          }
          s = other;
        }
        const out: CstorLayer = {
          diffId: diffIds[i],
          digest: m.layers[i].digest,
          layerId: layer.id,
          store: s,
        };
        if (layer.diffSize !== undefined) out.size = layer.diffSize;
        return out;
      });
      return new CstorImageSource({
        reference: ref,
        stores,
        locks,
        imageStore: found.store,
        imageId: image.id,
        manifest,
        config,
        layers,
      });
    } catch (e) {
      cleanup();
      throw e;
    }
  }

  /**
   * Open layer `index` for reading: the tar-split entries turned into chunks, with CRC checks.
   * Dispose the result after the consumer is done with the files.
   */
  openLayer(
    index: number,
    opts: Omit<LayerChunksOptions, "layerId"> = {},
  ): CstorLayerStream {
    const l = this.layers[index];
    if (!l) throw new RangeError(`No layer ${index}`);
    const store = this.stores[l.store];
    const dirfds: OwnedFd[] = [];
    try {
      dirfds.push(store.openLayerDir(l.layerId));
      for (const lower of store.lowerLayerIds(l.layerId)) {
        const s = this.stores.find((x) => x.hasLayerDir(lower));
        if (s) dirfds.push(s.openLayerDir(lower));
      }
      const stats: LayerChunksStats = { files: 0, fileBacked: 0, inlined: 0, bytes: 0 };
      // Opened on first use, so a layer that is never read holds no tar-split fd.
      const chunks = (async function* () {
        const entries = store.tarSplit(l.layerId).pipeThrough(new TarSplitDecoderStream());
        try {
          yield* layerChunks(entries, dirfds, { ...opts, layerId: l.layerId }, stats);
        } catch (e) {
          // DecompressionStream reports bad gzip as a TypeError; give both a layer context.
          if (e instanceof TarSplitFormatError || e instanceof TypeError) {
            throw new TarSplitCorruptError(l.layerId, e.message, { cause: e });
          }
          throw e;
        }
      })();
      return {
        chunks,
        dirfds,
        stats,
        [Symbol.dispose]() {
          void chunks.return(undefined);
          for (const fd of dirfds) fd.close();
        },
      };
    } catch (e) {
      for (const fd of dirfds) fd.close();
      throw e;
    }
  }

  /** Release the locks and close the stores. */
  [Symbol.dispose](): void {
    for (const l of this.#locks.reverse()) l[Symbol.dispose]();
    for (const s of this.stores) s[Symbol.dispose]();
  }
}

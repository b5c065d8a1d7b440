/**
 * Typed client for `org.composefs.Repository` and `org.composefs.Oci`, and
 * {@link VarlinkRepositoryEndpoint}: a repository behind a varlink server as both ends of
 * `oci copy` (the `LayerSource`/`LayerSink` of `lib/oci/copy_endpoint.ts`).
 *
 * Reply types keep the wire's snake_case names (they are the IDL's). Errors are the typed
 * {@link RepositoryError}/{@link OciError}/{@link VarlinkServiceError} from `errors.ts`.
 *
 * @module
 */

import { pipe } from "../../ffi/fs.ts";
import { readableFromFd, writableToFd } from "../../ffi/fd_stream.ts";
import type { OwnedFd } from "../../ffi/owned_fd.ts";
import type { HashAlgorithm } from "../fsverity/mod.ts";
import { fromHex } from "../repository/object_id.ts";
import { sha256Digest } from "../oci/digest.ts";
import { parseConfig, parseManifest } from "../oci/manifest.ts";
import { isImageConfig } from "../oci/media_types.ts";
import type { FinalizedImage, LayerRef } from "../oci/image_store.ts";
import type {
  LayerSink,
  LayerSource,
  LayerTransfer,
  PutLayerOptions,
  PutLayerResult,
  SourceImage,
} from "../oci/copy_endpoint.ts";
import { splitLayerFds } from "../splitdirfdstream/transport.ts";
import { type CallReply, VarlinkClient } from "./client.ts";
import type { JsonObject } from "./protocol.ts";

const REPO = "org.composefs.Repository";
const OCI = "org.composefs.Oci";

/** `Fsck` reply (also `Check`'s `repo`). */
export interface FsckReply {
  /** No problem was found. */
  ok: boolean;
  /** meta.json is present. */
  has_metadata: boolean;
  /** Objects whose digest was checked. */
  objects_checked: number;
  /** Objects with a wrong digest. */
  objects_corrupted: number;
  /** Splitstreams checked. */
  streams_checked: number;
  /** Splitstreams with problems. */
  streams_corrupted: number;
  /** Images checked. */
  images_checked: number;
  /** Images with problems. */
  images_corrupted: number;
  /** Symlinks that do not resolve. */
  broken_links: number;
  /** Objects referenced but absent. */
  missing_objects: number;
  /** Every finding, as text. */
  errors: string[];
}

/** `OpenRepository` reply. */
export interface OpenRepositoryReply {
  /** The new handle (server-wide, from 1). */
  handle: number;
  /** The repository's fs-verity algorithm. */
  hash_algorithm?: HashAlgorithm | null;
  /** `st_dev` of `objects/`. */
  objects_device_id?: number | bigint | null;
}

/** `Gc` reply. */
export interface GcReply {
  /** What was (or would be) removed. */
  result: {
    objects_removed: number;
    objects_bytes: number;
    images_pruned: number;
    streams_pruned: number;
  };
  /** True for a dry run. */
  dry_run: boolean;
}

/** One `ListImages` entry. */
export interface OciImageEntry {
  /** Tag. */
  name: string;
  /** `sha256:` of the manifest. */
  manifest_digest: string;
  /** Container image (not an artifact). */
  is_container: boolean;
  /** Config architecture. */
  architecture: string;
  /** Config os. */
  os: string;
  /** Config `created`, or null. */
  created?: string | null;
  /** Number of layers. */
  layer_count: number;
  /** Number of referrers. */
  referrer_count: number;
}

/** `Inspect` reply. */
export interface InspectReply {
  /** Raw manifest JSON. */
  manifest: string;
  /** Raw config JSON. */
  config: string;
  /** Referrer manifest digests. */
  referrers: string[];
  /** Verity of the linked EROFS image, or null. */
  composefs_erofs?: string | null;
  /** Verity of the linked boot EROFS image, or null. */
  composefs_boot_erofs?: string | null;
}

/** `Check` reply. */
export interface CheckReply {
  /** No problem was found. */
  ok: boolean;
  /** Images checked. */
  images_checked: number;
  /** Images with problems. */
  images_corrupted: number;
  /** Every finding, as text. */
  errors: string[];
  /** The repository fsck. */
  repo: FsckReply;
}

/** One `Pull` frame: exactly one field is set. */
export interface PullFrame {
  /** A transfer started. */
  started?: { id: string; total?: number | null; unit: "Bytes" | "Items" };
  /** Bytes or items fetched so far. */
  progress?: { id: string; fetched: number; total?: number | null };
  /** A layer was already present. */
  skipped?: { id: string };
  /** A transfer finished. */
  done?: { id: string; transferred: number };
  /** A free-form message. */
  message?: string;
  /** The pull result (last frame). */
  completed?: {
    manifest_digest: string;
    config_digest: string;
    manifest_verity: string;
    config_verity: string;
    stats: string;
    boot_image?: string | null;
    boot_image_mode?: string | null;
    boot_image_format_version?: string | null;
  };
}

/** `PutLayer` reply (counters default to 0: old servers may omit them, spec §4.6). */
export interface PutLayerReply {
  /** fs-verity of the layer splitstream, hex. */
  layer_verity: string;
  /** The layer was already stored before this call. */
  already_present: boolean;
  /** Objects stored by reflink. */
  objects_reflinked: number;
  /** Objects stored by hardlink. */
  objects_hardlinked: number;
  /** Objects stored by copying. */
  objects_copied: number;
  /** Objects already in the repository. */
  objects_already_present: number;
}

/** `FinalizeImage` reply. */
export interface FinalizeImageReply {
  /** `sha256:` of the manifest. */
  manifest_digest: string;
  /** fs-verity of the manifest stream, hex. */
  manifest_verity: string;
  /** `sha256:` of the config. */
  config_digest: string;
  /** fs-verity of the config stream, hex. */
  config_verity: string;
}

/** A received GetLayer: the data pipe, the dirfds region and the lifetime fds (all owned). */
export interface ReceivedLayer extends Disposable {
  /** Read end of the splitdirfdstream pipe. */
  pipe: OwnedFd;
  /** The whole dirfds region (dummies included; never open them). */
  dirfds: OwnedFd[];
  /** Keepalive and extra lifetime fds: close them only when done with every file. */
  lifetime: OwnedFd[];
}

function params(r: CallReply): JsonObject {
  for (const f of r.fds) f.close();
  return r.parameters;
}

/**
 * Typed calls of both composefs interfaces over one {@link VarlinkClient}.
 *
 * @example
 * ```ts ignore
 * using c = await ComposefsClient.connect("/run/cfs.sock");
 * const { handle } = await c.openRepository({ path: "/srv/repo" });
 * console.log(await c.listImages(handle));
 * ```
 */
export class ComposefsClient implements Disposable {
  /** The underlying client. */
  readonly client: VarlinkClient;

  /** Create it. */
  constructor(client: VarlinkClient) {
    this.client = client;
  }

  /** Connect to `address` (`unix:PATH` or a path). */
  static async connect(address: string): Promise<ComposefsClient> {
    return new ComposefsClient(await VarlinkClient.connect(address));
  }

  async #call<T>(method: string, p: JsonObject = {}, fds?: OwnedFd[]): Promise<T> {
    return params(await this.client.call(method, p, { fds })) as unknown as T;
  }

  /** `InitRepository`. */
  initRepository(
    p: { path: string; algorithm?: string; insecure?: boolean },
  ): Promise<{ created: boolean }> {
    return this.#call(`${REPO}.InitRepository`, p);
  }
  /** `EnsureRepository`. */
  ensureRepository(
    p: { path: string; algorithm?: string; insecure?: boolean },
  ): Promise<{ status: "Opened" | "Created" | "Upgraded" }> {
    return this.#call(`${REPO}.EnsureRepository`, p);
  }
  /** `OpenRepository` (exactly one of path, user, system). */
  openRepository(
    p: { path?: string; user?: boolean; system?: boolean },
  ): Promise<OpenRepositoryReply> {
    return this.#call(`${REPO}.OpenRepository`, p);
  }
  /** `CloseRepository`. */
  async closeRepository(handle: number): Promise<void> {
    await this.#call(`${REPO}.CloseRepository`, { handle });
  }
  /** `Fsck`. */
  fsck(handle: number, opts: { metadataOnly?: boolean } = {}): Promise<FsckReply> {
    return this.#call(`${REPO}.Fsck`, { handle, metadata_only: opts.metadataOnly ?? false });
  }
  /** `Gc`. */
  gc(handle: number, opts: { dryRun: boolean; roots?: string[] }): Promise<GcReply> {
    return this.#call(`${REPO}.Gc`, { handle, dry_run: opts.dryRun, roots: opts.roots ?? [] });
  }
  /** `ImageObjects`. */
  async imageObjects(handle: number, name: string): Promise<string[]> {
    return (await this.#call<{ object_ids: string[] }>(`${REPO}.ImageObjects`, { handle, name }))
      .object_ids;
  }
  /** `ListImageRefs`. */
  async listImageRefs(handle: number): Promise<{ name: string; digest: string }[]> {
    return (await this.#call<{ images: { name: string; digest: string }[] }>(
      `${REPO}.ListImageRefs`,
      { handle },
    )).images;
  }

  /** `Oci.GetInfo`: the server's features. */
  async ociFeatures(): Promise<string[]> {
    return (await this.#call<{ features: string[] }>(`${OCI}.GetInfo`)).features;
  }
  /** `ListImages`. */
  async listImages(handle: number, filter?: string): Promise<OciImageEntry[]> {
    return (await this.#call<{ images: OciImageEntry[] }>(`${OCI}.ListImages`, {
      handle,
      ...(filter === undefined ? {} : { filter }),
    })).images;
  }
  /** `Inspect` (`image` is a tag or `@sha256:…`). */
  inspect(handle: number, image: string): Promise<InspectReply> {
    return this.#call(`${OCI}.Inspect`, { handle, image });
  }
  /** `Check`. */
  check(handle: number, image?: string): Promise<CheckReply> {
    return this.#call(`${OCI}.Check`, { handle, ...(image === undefined ? {} : { image }) });
  }
  /** `Tag`. */
  async tag(handle: number, manifestDigest: string, name: string): Promise<void> {
    await this.#call(`${OCI}.Tag`, { handle, manifest_digest: manifestDigest, name });
  }
  /** `Untag`. */
  async untag(handle: number, name: string): Promise<void> {
    await this.#call(`${OCI}.Untag`, { handle, name });
  }
  /** `Pull` with `more`: progress frames, then the `completed` frame. */
  async *pull(
    handle: number,
    p: { image: string; name?: string; localFetch?: string },
  ): AsyncGenerator<PullFrame> {
    for await (
      const r of this.client.callMore(`${OCI}.Pull`, {
        handle,
        image: p.image,
        ...(p.name === undefined ? {} : { name: p.name }),
        local_fetch: p.localFetch ?? "auto",
        bootable: false,
      })
    ) yield params(r) as PullFrame;
  }
  /** `HasLayer`. */
  hasLayer(
    handle: number,
    diffId: string,
  ): Promise<{ present: boolean; layer_verity?: string | null }> {
    return this.#call(`${OCI}.HasLayer`, { handle, diff_id: diffId });
  }
  /**
   * `GetLayer` with `more`: concatenates every frame's fds and splits them by `dir_count`
   * (spec §4.3.5). Dispose the result to close everything, lifetime fds last.
   */
  async getLayer(handle: number, diffId: string): Promise<ReceivedLayer> {
    const fds: OwnedFd[] = [];
    let dirCount = -1;
    try {
      for await (
        const r of this.client.callMore(`${OCI}.GetLayer`, { handle, params: { diff_id: diffId } })
      ) {
        fds.push(...r.fds);
        dirCount = Number(r.parameters.dir_count);
      }
      const s = splitLayerFds(fds, dirCount);
      return {
        ...s,
        [Symbol.dispose]() {
          s.pipe.close();
          for (const f of s.dirfds) f.close();
          for (const f of s.lifetime) f.close();
        },
      };
    } catch (e) {
      for (const f of fds) f.close();
      throw e;
    }
  }
  /** `PutLayer` with `[pipeRead, ...dirfds]` (closed once sent). */
  async putLayer(
    handle: number,
    diffId: string,
    fds: OwnedFd[],
    opts: { zerocopy?: boolean } = {},
  ): Promise<PutLayerReply> {
    const r = await this.#call<Partial<PutLayerReply>>(`${OCI}.PutLayer`, {
      handle,
      diff_id: diffId,
      zerocopy: opts.zerocopy ?? false,
    }, fds);
    return {
      layer_verity: r.layer_verity!,
      already_present: r.already_present ?? false,
      objects_reflinked: r.objects_reflinked ?? 0,
      objects_hardlinked: r.objects_hardlinked ?? 0,
      objects_copied: r.objects_copied ?? 0,
      objects_already_present: r.objects_already_present ?? 0,
    };
  }
  /** `FinalizeImage`. */
  finalizeImage(
    handle: number,
    p: {
      manifestJson: string;
      configJson: string;
      layers: { diff_id: string; layer_verity: string }[];
      name?: string;
    },
  ): Promise<FinalizeImageReply> {
    return this.#call(`${OCI}.FinalizeImage`, {
      handle,
      manifest_json: p.manifestJson,
      config_json: p.configJson,
      layers: p.layers,
      ...(p.name === undefined ? {} : { name: p.name }),
    });
  }

  /** Close the connection. */
  close(): void {
    this.client.close();
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** A GetLayer transfer whose pipe can be relayed as is to a PutLayer (no bytes through us). */
const RELAY = Symbol("relayPipe");

interface RelayableTransfer extends LayerTransfer {
  [RELAY](): OwnedFd | undefined;
}

function isRelayable(t: LayerTransfer): t is RelayableTransfer {
  return RELAY in t;
}

const dec = new TextDecoder("utf-8", { fatal: true });

/**
 * A repository behind a composefs varlink server, usable as both ends of `copyImage`.
 * Layers relayed from another varlink server travel server to server: this process only
 * forwards the pipe and dirfds (spec §4.8).
 */
export class VarlinkRepositoryEndpoint
  implements LayerSource, LayerSink, Disposable, AsyncDisposable {
  readonly #c: ComposefsClient;
  readonly #handle: number;
  /** The repository's algorithm (from OpenRepository). */
  readonly algorithm: HashAlgorithm;
  /** `st_dev` of its `objects/`, when the server told. */
  readonly objectsDevice?: bigint;

  private constructor(c: ComposefsClient, handle: number, alg: HashAlgorithm, dev?: bigint) {
    this.#c = c;
    this.#handle = handle;
    this.algorithm = alg;
    if (dev !== undefined) this.objectsDevice = dev;
  }

  /** Connect to `address` and open the repository at `path` there. */
  static async open(address: string, path: string): Promise<VarlinkRepositoryEndpoint> {
    const c = await ComposefsClient.connect(address);
    try {
      const r = await c.openRepository({ path });
      const alg = r.hash_algorithm ?? "sha512";
      const dev = r.objects_device_id == null ? undefined : BigInt(r.objects_device_id);
      return new VarlinkRepositoryEndpoint(c, r.handle, alg, dev);
    } catch (e) {
      c.close();
      throw e;
    }
  }

  async inspect(image: string): Promise<SourceImage> {
    const r = await this.#c.inspect(this.#handle, image);
    const enc = new TextEncoder();
    const manifest = enc.encode(r.manifest);
    const config = enc.encode(r.config);
    const manifestDigest = sha256Digest(manifest);
    const m = parseManifest(manifest, manifestDigest);
    const layerIds = isImageConfig(m.config.mediaType)
      ? parseConfig(config, m.config.digest).diffIds
      : m.layers.map((l) => l.digest);
    return {
      manifestDigest,
      manifest,
      config,
      layerIds,
      ...(image.startsWith("@") ? {} : { tag: image }),
    };
  }

  async getLayer(diffId: string): Promise<LayerTransfer> {
    const got = await this.#c.getLayer(this.#handle, diffId);
    let pipeFd: OwnedFd | undefined = got.pipe;
    let bytes: ReadableStream<Uint8Array> | undefined;
    const transfer: RelayableTransfer = {
      get bytes(): ReadableStream<Uint8Array> {
        if (bytes === undefined) {
          if (pipeFd === undefined) throw new TypeError("Layer pipe was already relayed");
          bytes = readableFromFd(pipeFd);
          pipeFd = undefined;
        }
        return bytes;
      },
      dirfds: got.dirfds,
      [RELAY]() {
        const p = pipeFd;
        pipeFd = undefined;
        return p;
      },
      async [Symbol.asyncDispose]() {
        pipeFd?.close();
        if (bytes !== undefined && !bytes.locked) await bytes.cancel();
        for (const f of got.dirfds) f.close();
        for (const f of got.lifetime) f.close();
      },
    };
    return transfer;
  }

  async hasLayer(diffId: string): Promise<Uint8Array | null> {
    const r = await this.#c.hasLayer(this.#handle, diffId);
    return r.present && r.layer_verity ? fromHex(r.layer_verity.toLowerCase()) : null;
  }

  async putLayer(
    diffId: string,
    layer: LayerTransfer,
    opts: PutLayerOptions,
  ): Promise<PutLayerResult> {
    const zerocopy = !opts.allowCopy;
    const dirfds = layer.dirfds.map((d) => d.dup());
    const relayed = isRelayable(layer) ? layer[RELAY]() : undefined;
    let reply: PutLayerReply;
    if (relayed !== undefined) {
      reply = await this.#c.putLayer(this.#handle, diffId, [relayed, ...dirfds], { zerocopy });
    } else {
      // Push: we produce the bytes into a pipe the server drains (spec §4.7).
      const p = pipe();
      const pump = layer.bytes.pipeTo(writableToFd(p.write));
      const call = this.#c.putLayer(this.#handle, diffId, [p.read, ...dirfds], { zerocopy });
      try {
        reply = await call;
      } catch (e) {
        // The server stopped reading: the pump ends with EPIPE, which is not the story to tell.
        await pump.catch(() => undefined);
        throw e;
      }
      await pump;
    }
    return {
      verity: fromHex(reply.layer_verity.toLowerCase()),
      stats: {
        objectsReflinked: reply.objects_reflinked,
        objectsHardlinked: reply.objects_hardlinked,
        objectsCopied: reply.objects_copied,
        objectsAlreadyPresent: reply.objects_already_present,
        inlineBytes: 0,
        externalBytes: 0,
      },
    };
  }

  async finalizeImage(
    manifest: Uint8Array,
    config: Uint8Array,
    layers: LayerRef[],
    tag?: string,
  ): Promise<FinalizedImage> {
    const r = await this.#c.finalizeImage(this.#handle, {
      manifestJson: dec.decode(manifest),
      configJson: dec.decode(config),
      layers: layers.map((l) => ({ diff_id: l.diffId, layer_verity: l.verity.toHex() })),
      ...(tag === undefined ? {} : { name: tag }),
    });
    const out: FinalizedImage = {
      manifestDigest: r.manifest_digest,
      configDigest: r.config_digest,
      manifestVerity: fromHex(r.manifest_verity.toLowerCase()),
      configVerity: fromHex(r.config_verity.toLowerCase()),
    };
    if (tag !== undefined) out.tag = tag;
    return out;
  }

  /** Close the connection; the handle stays open on the server (handles are server-wide). */
  close(): void {
    this.#c.close();
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** `CloseRepository` on the server, then close the connection. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      if (!this.#c.client.closed) await this.#c.closeRepository(this.#handle);
    } finally {
      this.close();
    }
  }
}

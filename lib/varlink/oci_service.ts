/**
 * `org.composefs.Oci` (spec §2.4/§2.5, §4) over `lib/oci`: images (list, inspect, check, tag,
 * untag, compute-id, pull from `oci:`, `oci-archive:` and `containers-storage:` with progress
 * frames) and the layer transfer methods HasLayer, GetLayer (fd frames + a producer writing
 * the splitdirfdstream into a pipe), PutLayer (verified drain from a client's pipe and dirfds)
 * and FinalizeImage (which also generates the composefs EROFS images before tagging).
 * OciMount hands out a detached mount of the image's EROFS over the repository's objects.
 * Not yet served: boot images (bootable pulls, ComputeId and OciMount with `bootable`).
 *
 * @module
 */

import { openPath, pipe } from "../../ffi/fs.ts";
import { readableFromFd, writableToFd } from "../../ffi/fd_stream.ts";
import { cancelWaits } from "../../ffi/event_loop.ts";
import type { OwnedFd } from "../../ffi/owned_fd.ts";
import type { Repository } from "../repository/repository.ts";
import { fromHex, toHex } from "../repository/object_id.ts";
import { parseDigest } from "../oci/digest.ts";
import { DiffIdMismatchError, ImageNotFoundError } from "../oci/errors.ts";
import {
  inspectImage,
  type LayerRef,
  listImages,
  resolveImage,
  tagImage,
  untagImage,
} from "../oci/image_store.ts";
import { ociFsck, ociFsckJson } from "../oci/oci_fsck.ts";
import { drainChunks, produceLayer } from "../oci/layer_sync.ts";
import { layerStreamName } from "../oci/names.ts";
import { type PullEvent, pullImage, type PullResult } from "../oci/pull.ts";
import { pullFromContainersStorage } from "../oci/cstor/pull.ts";
import { resolveStoreOptions } from "../oci/cstor/storage_conf.ts";
import { computeImageId, finalizeComposefsImage, linkedImageId } from "../oci/composefs_image.ts";
import { mountReply, takeMountFds } from "./repository_service.ts";
import type { XattrFiltering } from "../oci/merged_tree.ts";
import type { LayerStats } from "../oci/layer_writer.ts";
import type { Chunk } from "../splitdirfdstream/chunk.ts";
import { SplitdirfdstreamDecoderStream } from "../splitdirfdstream/decoder.ts";
import { SplitdirfdstreamEncoderStream } from "../splitdirfdstream/encoder.ts";
import {
  buildLayerFdLayout,
  seedFromId,
  splitFdsIntoFrames,
} from "../splitdirfdstream/transport.ts";
import { FdLimitExceededError } from "../splitdirfdstream/errors.ts";
import { OciError } from "./errors.ts";
import type { HandleTable } from "./handles.ts";
import { ProducerPool } from "./producer_pool.ts";
import type { InterfaceDefinition, MethodReply } from "./service.ts";
import type { JsonObject, JsonValue } from "./protocol.ts";
import OCI_IDL from "./org.composefs.Oci.varlink" with { type: "text" };

/** Feature strings of `Oci.GetInfo` (composefs-rs: the repo service's only feature). */
export const OCI_FEATURES: readonly string[] = ["splitdirfdstream-v0"];

/** Minimum interval between Pull progress frames of one layer, so frames stay few. */
const PROGRESS_INTERVAL_MS = 200;

/** Options of {@link ociInterface}. */
export interface OciServiceOptions {
  /** Diagnostics (producer failures, unreadable images skipped by ListImages). */
  log?: (message: string) => void;
  /** Most GetLayer producers alive at once (default {@link MAX_PRODUCERS}). */
  maxProducers?: number;
  /** The pool of live producers (disposing it stops them); default a private one. */
  producers?: ProducerPool;
}

/**
 * Default cap on live GetLayer producers. Each lives until its consumer closes the keepalive
 * (spec §4.3.4) and holds a few fds, so a client could otherwise pin them without bound (§5).
 */
export const MAX_PRODUCERS = 64;

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function repoFor(handles: HandleTable, handle: JsonValue | undefined): Repository {
  const repo = handles.get(handle);
  if (repo === undefined) throw OciError.invalidHandle(typeof handle === "number" ? handle : -1);
  return repo;
}

function checkDigest(digest: string): { algorithm: string; hex: string } {
  try {
    return parseDigest(digest);
  } catch (e) {
    throw OciError.invalidDigest(message(e), { cause: e });
  }
}

/** Verity hex in the repository's algorithm; both hex cases are accepted (as `hex::decode`). */
function parseVerity(hex: string, repo: Repository, what: string): Uint8Array {
  const size = repo.algorithm === "sha256" ? 32 : 64;
  try {
    return fromHex(hex.toLowerCase(), size);
  } catch (e) {
    throw OciError.invalidDigest(`${what} "${hex}": ${message(e)}`, { cause: e });
  }
}

/** Sum of object counters, as a one-line `stats` string for Pull's completed frame. */
function statsLine(s: LayerStats): string {
  return `${s.objectsReflinked} reflinked, ${s.objectsHardlinked} hardlinked, ` +
    `${s.objectsCopied} copied, ${s.objectsAlreadyPresent} already present`;
}

/** A push/pull queue between a callback producer and an async generator. */
class FrameQueue<T> {
  #items: T[] = [];
  #wake: (() => void) | undefined;
  push(item: T): void {
    this.#items.push(item);
    this.#wake?.();
  }
  async *drain(done: Promise<unknown>): AsyncGenerator<T> {
    let finished = false;
    const fin = done.finally(() => {
      finished = true;
      this.#wake?.();
    });
    for (;;) {
      while (this.#items.length > 0) yield this.#items.shift()!;
      if (finished) break;
      await new Promise<void>((r) => (this.#wake = r));
      this.#wake = undefined;
    }
    await fin;
  }
}

/** Pull progress events → `PullProgress` frames (each sets exactly one field). */
function pullFrames(queue: FrameQueue<JsonObject>): (e: PullEvent) => void {
  const last = new Map<string, number>();
  const read = new Map<string, number>();
  return (e) => {
    switch (e.type) {
      case "manifest":
        queue.push({
          message:
            `Pulling manifest ${e.manifestDigest} (config ${e.configDigest}, ${e.layers} layers)`,
        });
        break;
      case "layer-start":
        queue.push({ started: { id: e.digest, total: e.size, unit: "Bytes" } });
        break;
      case "layer-progress": {
        read.set(e.digest, e.read);
        const now = Date.now();
        if (now - (last.get(e.digest) ?? 0) < PROGRESS_INTERVAL_MS && e.read < e.size) return;
        last.set(e.digest, now);
        queue.push({ progress: { id: e.digest, fetched: e.read, total: e.size } });
        break;
      }
      case "layer-done":
        queue.push({ done: { id: e.digest, transferred: read.get(e.digest) ?? 0 } });
        break;
      case "layer-skipped":
        queue.push({ skipped: { id: e.digest } });
        break;
    }
  };
}

/** `XattrFiltering` wire names (Rust variants) → ours; absent = `AllowlistOnly`. */
function xattrMode(v: JsonValue | undefined): XattrFiltering {
  return v === "KeepUserXattrs" ? "keep-user-xattrs" : "allowlist-only";
}

/** Containers-image transports Pull serves: OCI layouts/archives and containers-storage. */
const CSTOR_PREFIX = "containers-storage:";

/**
 * Pull `image` by transport. `local_fetch` (spec §2.5): `auto`/`if-possible` and
 * `zerocopy`/`zero-copy`; anything else disables local fetching, which for
 * containers-storage means copying every file.
 */
function pullAny(
  repo: Repository,
  image: string,
  o: { tag?: string; onEvent?: (e: PullEvent) => void; localFetch: string; storageRoot?: string },
): Promise<PullResult> {
  const tag = o.tag ? { tag: o.tag } : {};
  if (image.startsWith(CSTOR_PREFIX)) {
    const zeroCopy = o.localFetch === "zerocopy" || o.localFetch === "zero-copy";
    const storeOptions = o.storageRoot === undefined
      ? undefined
      : { ...resolveStoreOptions(), graphRoot: o.storageRoot, imageStores: [] };
    return pullFromContainersStorage(repo, image, {
      ...tag,
      onEvent: o.onEvent,
      zeroCopy,
      ...(storeOptions ? { storeOptions } : {}),
    });
  }
  if (image.startsWith("oci:") || image.startsWith("oci-archive:")) {
    return pullImage(repo, image, { ...tag, onEvent: o.onEvent });
  }
  return Promise.reject(
    OciError.internal(
      `unsupported image transport in "${image}": this server pulls oci:, oci-archive: and containers-storage:`,
    ),
  );
}

/** The interface definition, sharing `handles` with `org.composefs.Repository`. */
export function ociInterface(
  handles: HandleTable,
  options: OciServiceOptions = {},
): InterfaceDefinition {
  const log = options.log ?? (() => {});
  const producers = options.producers ??
    new ProducerPool(options.maxProducers ?? MAX_PRODUCERS);
  return {
    idl: OCI_IDL,
    internalError: (e) => OciError.internal(message(e), { cause: e }),
    methods: {
      ListImages(p): Promise<MethodReply> {
        const repo = repoFor(handles, p.handle);
        const filter = p.filter as string | null | undefined;
        const images = listImages(
          repo,
          (tag, e) => log(`ListImages: skipping "${tag}": ${message(e)}`),
        )
          .filter((i) => filter == null || i.name.includes(filter));
        return Promise.resolve({ parameters: { images: images as unknown as JsonValue[] } });
      },
      Check(p): Promise<MethodReply> {
        const repo = repoFor(handles, p.handle);
        const report = ociFsck(repo, (p.image as string | null | undefined) ?? undefined);
        return Promise.resolve({ parameters: ociFsckJson(report) as JsonObject });
      },
      Inspect(p): Promise<MethodReply> {
        const repo = repoFor(handles, p.handle);
        const image = p.image as string;
        try {
          return Promise.resolve({ parameters: { ...inspectImage(repo, image) } });
        } catch (e) {
          if (e instanceof ImageNotFoundError) {
            throw OciError.noSuchImage(image.startsWith("@") ? image.slice(1) : image, {
              cause: e,
            });
          }
          if (image.startsWith("@")) {
            throw OciError.internal(`invalid image reference: ${message(e)}`, { cause: e });
          }
          throw e;
        }
      },
      Tag: {
        writes: true,
        handler(p): Promise<MethodReply> {
          const repo = repoFor(handles, p.handle);
          const digest = p.manifest_digest as string;
          try {
            parseDigest(digest);
          } catch (e) {
            throw OciError.internal(`invalid digest: ${message(e)}`, { cause: e });
          }
          tagImage(repo, digest, p.name as string);
          return Promise.resolve({});
        },
      },
      Untag: {
        writes: true,
        handler(p): Promise<MethodReply> {
          untagImage(repoFor(handles, p.handle), p.name as string);
          return Promise.resolve({});
        },
      },
      ComputeId(p): Promise<MethodReply> {
        const repo = repoFor(handles, p.handle);
        if (p.bootable === true) {
          throw OciError.internal(
            "ComputeId: the boot transform is not supported by this server yet",
          );
        }
        // `verity` only pins a config digest's stream; we re-hash the config anyway.
        const id = computeImageId(repo, p.image as string, { xattrs: xattrMode(p.xattrs) });
        return Promise.resolve({ parameters: { image_id: toHex(id) } });
      },
      Pull: {
        writes: true,
        async *handler(p, ctx): AsyncGenerator<MethodReply> {
          if (p.expected_digest != null && p.bootable !== true) {
            throw OciError.invalidRequest("expected_digest requires bootable");
          }
          if (p.expected_digest != null && p.xattrs != null) {
            throw OciError.invalidRequest("expected_digest cannot be combined with xattrs");
          }
          const repo = repoFor(handles, p.handle);
          if (p.bootable === true) {
            throw OciError.internal(
              "bootable pulls are not supported by this server yet: it does not generate boot images",
            );
          }
          const queue = new FrameQueue<JsonObject>();
          const frames = ctx.more ? pullFrames(queue) : undefined;
          // The pull checks for a vanished client at every progress event: throwing there
          // stops it (nothing is tagged; written objects wait for GC), as composefs-rs aborts
          // the task when the client goes away.
          const onEvent = (e: PullEvent) => {
            ctx.signal.throwIfAborted();
            frames?.(e);
          };
          const image = p.image as string;
          const tag = (p.name as string | null | undefined) ?? undefined;
          const pulled = pullAny(repo, image, {
            tag,
            onEvent,
            localFetch: p.local_fetch as string,
            storageRoot: (p.storage_root as string | null | undefined) ?? undefined,
          });
          // Settles either way; a failure is rethrown by `await pulled` below, or logged when
          // the client went away before the pull finished.
          const settled = pulled.then(() => undefined, (e: unknown) => e);
          let finished = false;
          try {
            for await (const frame of queue.drain(settled)) {
              ctx.signal.throwIfAborted();
              yield { parameters: frame };
            }
            // The pull may have stopped because the client left (its events check the signal):
            // then there is nobody to answer, only the failure to log.
            ctx.signal.throwIfAborted();
            finished = true;
          } finally {
            if (!finished) {
              settled.then((e) => {
                if (e !== undefined) {
                  log(`Pull ${image}: failed after the client left: ${message(e)}`);
                }
              });
            }
          }
          const r = await pulled;
          yield {
            parameters: {
              completed: {
                manifest_digest: r.manifestDigest,
                config_digest: r.configDigest,
                manifest_verity: toHex(r.manifestVerity),
                config_verity: toHex(r.configVerity),
                stats: statsLine(r.stats),
                boot_image: null,
                boot_image_mode: null,
                boot_image_format_version: null,
              },
            },
          };
        },
      },
      OciMount(p, ctx): Promise<MethodReply> {
        const repo = repoFor(handles, p.handle);
        const image = p.image as string;
        if (p.bootable === true) {
          throw OciError.internal("OciMount: bootable images are not supported by this server yet");
        }
        // The reference takes a manifest digest without "@" here (spec §9.5); we accept both.
        let ref = image;
        if (/^sha(256|384|512):/.test(image) || image.startsWith("@")) {
          const d = image.startsWith("@") ? image.slice(1) : image;
          try {
            parseDigest(d);
          } catch (e) {
            throw OciError.internal(`Invalid manifest digest: ${message(e)}`, { cause: e });
          }
          ref = `@${d}`;
        }
        try {
          resolveImage(repo, ref);
        } catch (e) {
          throw OciError.noSuchImage(`${image}: ${message(e)}`, { cause: e });
        }
        let id: Uint8Array;
        try {
          id = linkedImageId(repo, ref);
        } catch (e) {
          throw OciError.internal(message(e), { cause: e });
        }
        const options = p.options as JsonObject;
        const fds = takeMountFds(options, ctx, (m) => OciError.internal(`InvalidSpec: ${m}`));
        try {
          using fd = repo.openImage(toHex(id));
          return Promise.resolve(mountReply(repo, fd, image, options, fds));
        } catch (e) {
          throw OciError.internal(message(e), { cause: e });
        } finally {
          for (const f of fds) f.close();
        }
      },
      GetInfo(): Promise<MethodReply> {
        return Promise.resolve({ parameters: { features: [...OCI_FEATURES] } });
      },
      HasLayer(p): Promise<MethodReply> {
        const diffId = p.diff_id as string;
        checkDigest(diffId);
        const repo = repoFor(handles, p.handle);
        const verity = repo.hasStream(layerStreamName(diffId));
        return Promise.resolve({
          parameters: { present: verity !== null, layer_verity: verity ? toHex(verity) : null },
        });
      },
      GetLayer: {
        // serde default: consumer_has_cap_dac_override may be omitted (spec §2.4).
        normalize: (p) => {
          const params = p.params;
          if (typeof params !== "object" || params === null || Array.isArray(params)) return p;
          return {
            ...p,
            params: {
              consumer_has_cap_dac_override: false,
              ...params,
              ...(params.consumer_has_cap_dac_override == null
                ? { consumer_has_cap_dac_override: false }
                : {}),
            },
          };
        },
        handler: (p, ctx) => getLayer(handles, p, ctx.more, log, producers),
      },
      PutLayer: {
        writes: true,
        async handler(p, ctx): Promise<MethodReply> {
          if (ctx.fdCount < 2) {
            throw OciError.invalidRequest(
              `expected at least 2 fds (1 pipe + >=1 dir fd), got ${ctx.fdCount}`,
            );
          }
          const diffId = p.diff_id as string;
          const parsed = checkDigest(diffId);
          const repo = repoFor(handles, p.handle);
          const alreadyPresent = repo.hasStream(layerStreamName(diffId)) !== null;
          if (parsed.algorithm !== "sha256") {
            throw OciError.internal(
              `PutLayer: only sha256 diff_ids can be verified, got a ${parsed.algorithm} diff_id`,
            );
          }
          const [pipeRead, ...dirfds] = ctx.takeFds();
          try {
            const chunks = readableFromFd(pipeRead).pipeThrough(
              new SplitdirfdstreamDecoderStream(),
            );
            const r = await drainChunks(repo, chunks, dirfds, {
              diffId,
              allowCopy: p.zerocopy !== true,
            });
            return {
              parameters: {
                layer_verity: toHex(r.verity),
                already_present: alreadyPresent,
                objects_reflinked: r.stats.objectsReflinked,
                objects_hardlinked: r.stats.objectsHardlinked,
                objects_copied: r.stats.objectsCopied,
                objects_already_present: r.stats.objectsAlreadyPresent,
              },
            };
          } catch (e) {
            if (e instanceof DiffIdMismatchError) {
              throw OciError.diffIdMismatch(e.expected, e.actual);
            }
            throw e;
          } finally {
            pipeRead.close();
            for (const d of dirfds) d.close();
          }
        },
      },
      FinalizeImage: {
        writes: true,
        handler(p): Promise<MethodReply> {
          const repo = repoFor(handles, p.handle);
          const layers: LayerRef[] = (p.layers as JsonObject[]).map((l) => {
            const diffId = l.diff_id as string;
            try {
              parseDigest(diffId);
            } catch (e) {
              throw OciError.invalidDigest(`diff_id "${diffId}": ${message(e)}`, { cause: e });
            }
            return { diffId, verity: parseVerity(l.layer_verity as string, repo, "layer_verity") };
          });
          const enc = new TextEncoder();
          const r = finalizeComposefsImage(
            repo,
            enc.encode(p.manifest_json as string),
            enc.encode(p.config_json as string),
            layers,
            (p.name as string | null | undefined) ?? undefined,
          );
          return Promise.resolve({
            parameters: {
              manifest_digest: r.manifestDigest,
              manifest_verity: toHex(r.manifestVerity),
              config_digest: r.configDigest,
              config_verity: toHex(r.configVerity),
            },
          });
        },
      },
    },
  };
}

/**
 * GetLayer (spec §4.3): check, build the fd layout, start the producer, then yield the frames.
 * The producer writes the splitdirfdstream into the pipe, closes it, then waits for the
 * keepalive's EOF (every copy of its write end closed: the consumer is done or gone).
 */
async function* getLayer(
  handles: HandleTable,
  p: JsonObject,
  more: boolean,
  log: (m: string) => void,
  producers: ProducerPool,
): AsyncGenerator<MethodReply> {
  const params = p.params as JsonObject;
  const diffId = params.diff_id as string | null | undefined;
  if (diffId == null) {
    throw OciError.invalidRequest("GetLayer: diff_id is required for the repo service");
  }
  checkDigest(diffId);
  const repo = repoFor(handles, p.handle);
  const streamName = layerStreamName(diffId);
  if (repo.hasStream(streamName) === null) throw OciError.noSuchLayer(diffId);
  if (!producers.hasRoom) {
    throw OciError.internal(
      `GetLayer: ${producers.live} layer transfers are in progress (the limit); close finished ones first`,
    );
  }
  const seed = seedFromId(streamName);

  const owned: OwnedFd[] = [];
  const produced = produceLayer(repo, diffId);
  let frames: OwnedFd[][];
  let realIndices: number[];
  let dirCount: number;
  let dataWrite: OwnedFd;
  let keepaliveRead: OwnedFd;
  try {
    const data = pipe();
    owned.push(data.read, data.write);
    const keepalive = pipe();
    owned.push(keepalive.read, keepalive.write);
    const layout = buildLayerFdLayout({
      pipeRead: data.read,
      realDirs: produced.dirfds.map((d) => {
        const dup = d.dup();
        owned.push(dup);
        return dup;
      }),
      keepaliveWrite: keepalive.write,
      seed,
      makeDummy: () => {
        const d = openPath("/dev/null");
        owned.push(d);
        return d;
      },
    });
    try {
      frames = splitFdsIntoFrames(layout.fds, seed, more);
    } catch (e) {
      if (e instanceof FdLimitExceededError) {
        throw OciError.fdLimitExceeded(e.fdCount, e.maxPerFrame);
      }
      throw e;
    }
    realIndices = layout.realIndices;
    dirCount = layout.dirCount;
    dataWrite = data.write;
    keepaliveRead = keepalive.read;
  } catch (e) {
    for (const f of owned) f.close();
    produced[Symbol.dispose]();
    throw e;
  }

  // The producer (phase 1: produce, phase 2: keepalive wait, phase 3: release) runs on its own.
  const remap = new TransformStream<Chunk, Chunk>({
    transform(c, controller) {
      controller.enqueue(
        c.type === "fileBackedData" ? { ...c, dirfdIndex: realIndices[c.dirfdIndex] } : c,
      );
    },
  });
  // Released when the consumer closes the keepalive, or at once when the service is disposed
  // (a pending wait on either pipe is cancelled, so nothing reads or writes a closed fd).
  const end = producers.add(() => {
    for (const fd of [dataWrite, keepaliveRead]) {
      cancelWaits(fd, new Error("GetLayer producer released"));
      fd.close();
    }
    produced[Symbol.dispose]();
  });
  (async () => {
    try {
      await produced.chunks.pipeThrough(remap).pipeThrough(new SplitdirfdstreamEncoderStream())
        .pipeTo(writableToFd(dataWrite));
    } catch (e) {
      log(`GetLayer ${diffId}: producer stopped: ${message(e)}`);
    } finally {
      dataWrite.close();
    }
    try {
      if (!keepaliveRead.closed) {
        await readableFromFd(keepaliveRead, { pipeSize: 0 }).pipeTo(new WritableStream());
      }
    } catch (e) {
      log(`GetLayer ${diffId}: keepalive wait ended: ${message(e)}`);
    } finally {
      end();
    }
  })();

  let sent = 0;
  try {
    for (const batch of frames) {
      sent++;
      yield { parameters: { dir_count: dirCount }, fds: batch };
    }
  } finally {
    // Frames never handed over (the client went away): their fds are ours to close.
    for (const batch of frames.slice(sent)) for (const f of batch) f.close();
  }
}

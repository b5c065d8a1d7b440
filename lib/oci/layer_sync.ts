/**
 * Layer transfer through splitdirfdstream, both ends:
 *
 * - {@link produceLayer}: a stored layer splitstream → splitdirfdstream chunks. Inline bytes
 *   become Metadata chunks; each external object becomes a FileBackedData chunk naming
 *   `XX/<rest>` beneath dirfd 0, the source repository's `objects/` directory (composefs-rs
 *   `layer_sync.rs`, spec cli-oci-cstor §3.2).
 * - {@link drainChunks}: splitdirfdstream chunks + dirfds → a layer splitstream in a
 *   repository, through the same {@link LayerWriter} as a tar import, so every path writes
 *   byte-identical streams. Object IDs are computed in the destination's algorithm while the
 *   bytes are read; the layer's sha256 must equal its diff_id before anything is named.
 *
 * `oci copy`, varlink GetLayer/PutLayer and the containers-storage import all use these two.
 *
 * @module
 */

import { cooperate } from "../../ffi/event_loop.ts";
import { fstat } from "../../ffi/fs.ts";
import type { BorrowedFd } from "../../ffi/owned_fd.ts";
import type { Chunk } from "../splitdirfdstream/chunk.ts";
import { openChunkFile } from "../splitdirfdstream/reconstruct.ts";
import type { Repository } from "../repository/repository.ts";
import { ObjectNotFoundError } from "../repository/errors.ts";
import type { HashAlgorithm } from "../fsverity/mod.ts";
import { CONTENT_TYPE } from "../repository/splitstream.ts";
import { type LayerCommit, LayerWriter } from "./layer_writer.ts";
import { layerStreamName } from "./names.ts";

/** How the drain may store external objects. */
export interface DrainOptions {
  /** The layer's diff_id (`sha256:<hex>`): the drained tar must hash to it. */
  diffId: string;
  /** Try FICLONE first (default true). */
  allowReflink?: boolean;
  /**
   * Then try a hardlink (default false; only happens on the same filesystem). Only for
   * producers whose files nobody will modify afterwards (a repository, containers-storage
   * layers): a hardlinked object shares the producer's inode.
   */
  allowHardlink?: boolean;
  /** Finally copy bytes (default true; false = `--zerocopy`). */
  allowCopy?: boolean;
  /**
   * The producer is a repository of this algorithm that this process opened itself (a
   * local same-algorithm copy): FileBackedData names `XX/<rest>` are taken as object ids and
   * the objects are reflinked/hardlinked without being read or the diff_id re-checked. Never
   * for producers across a trust boundary (varlink clients, containers-storage).
   */
  trustedObjectNames?: boolean;
  /**
   * Nobody modifies the producer's files while they are drained (a repository this process
   * opened): reflinked objects are hashed from the producer's file, usually in the page
   * cache, rather than from the fresh clone. Never for producers across a trust boundary.
   */
  stableSource?: boolean;
  /** Called with the number of layer bytes consumed so far (for progress). */
  onProgress?: (bytes: number) => void;
}

/**
 * Consume a splitdirfdstream into `repo` as the layer `oci-layer-<diffId>`.
 *
 * Metadata chunks are stored inline; InlineData and FileBackedData chunks are file contents
 * (inline up to 64 bytes, else objects). FileBackedData files are opened with openat2 beneath
 * `dirfds[index]` and must be exactly as long as declared.
 *
 * @throws {DiffIdMismatchError} the reconstructed tar does not hash to `diffId` (nothing named).
 * @throws the splitdirfdstream path errors (`InvalidFilenameError`, `DirfdIndexOutOfRangeError`,
 *   `FileOpenError`, …) and `RangeError` for a file whose size differs from the chunk's.
 */
export async function drainChunks(
  repo: Repository,
  chunks: AsyncIterable<Chunk> | Iterable<Chunk>,
  dirfds: readonly BorrowedFd[],
  opts: DrainOptions,
): Promise<LayerCommit> {
  using w = new LayerWriter(repo, { diffId: opts.diffId });
  let bytes = 0;
  for await (const c of chunks) {
    if (c.type === "metadata") {
      w.writeInline(c.data);
      bytes += c.data.length;
    } else if (c.type === "inlineData") {
      w.beginFile(c.data.length);
      w.writeFileChunk(c.data);
      w.endFile();
      bytes += c.data.length;
    } else {
      using fd = openChunkFile(dirfds, c.dirfdIndex, c.filename);
      const store = {
        allowReflink: opts.allowReflink ?? true,
        allowHardlink: opts.allowHardlink ?? false,
        allowCopy: opts.allowCopy ?? true,
        stableSource: opts.stableSource ?? false,
      };
      // Only a trusted local repository's names are object ids; otherwise names are only
      // names: the repository hashes what it stores, so a lying producer cannot alias an object.
      const trustedId = opts.trustedObjectNames
        ? objectIdFromPath(c.filename, repo.algorithm)
        : undefined;
      if (trustedId) w.writeTrustedObject(fd, c.contentLength, trustedId, store);
      else w.writeFileFromFd(fd, c.contentLength, store);
      bytes += c.contentLength;
    }
    opts.onProgress?.(bytes);
    // Decoded chunks arrive as microtasks and are stored synchronously: without a macrotask
    // turn now and then, a long drain would starve timers and every other connection.
    await cooperate();
  }
  return w.commit();
}

/** `XX/<rest>` with the hex length of `alg` → the object ID it names, else undefined. */
function objectIdFromPath(filename: string, alg: HashAlgorithm): Uint8Array | undefined {
  const hexLen = alg === "sha256" ? 64 : 128;
  if (filename.length !== hexLen + 1 || filename[2] !== "/") return undefined;
  const hex = filename.slice(0, 2) + filename.slice(3);
  if (!/^[0-9a-f]+$/.test(hex)) return undefined;
  return Uint8Array.fromHex(hex);
}

/**
 * The size of a referenced object. A secure repository opens it (checking its fs-verity
 * measurement); an insecure one only stats it, the consumer hashes what it reads anyway.
 */
function objectSize(repo: Repository, id: Uint8Array): number {
  if (!repo.insecure) {
    using fd = repo.openObject(id);
    return fstat(fd).size;
  }
  const size = repo.objectSize(id);
  if (size === null) throw new ObjectNotFoundError(repo.objectPath(id));
  return size;
}

/** A layer being produced: its chunks and the directory fds they refer to. */
export interface ProducedLayer extends Disposable {
  /** The chunks, in stream order. */
  chunks: ReadableStream<Chunk>;
  /** dirfd 0 = the source repository's `objects/` directory (a dup lent by this value). */
  readonly dirfds: readonly BorrowedFd[];
  /** Total tar size recorded in the splitstream. */
  size: number;
}

/** Largest Metadata chunk the producer emits: inline runs are split so memory stays bounded. */
const MAX_METADATA_CHUNK = 1024 * 1024;

/**
 * Produce the stored layer `oci-layer-<diffId>` of `repo` as splitdirfdstream chunks.
 *
 * @throws the repository's not-found error when the layer stream is absent.
 */
export function produceLayer(repo: Repository, diffId: string): ProducedLayer {
  const stream = repo.readStream(layerStreamName(diffId), CONTENT_TYPE.OCI_LAYER);
  const objects = repo.objectsDirFd().dup();
  const it = stream.chunks()[Symbol.iterator]();
  let pending: Chunk[] = [];
  const chunks = new ReadableStream<Chunk>({
    async pull(controller) {
      // Producing is synchronous (open + fstat per object): yield like the drain does.
      await cooperate();
      while (pending.length === 0) {
        const r = it.next();
        if (r.done) {
          controller.close();
          return;
        }
        const c = r.value;
        if ("inline" in c) {
          for (let off = 0; off < c.inline.length; off += MAX_METADATA_CHUNK) {
            pending.push({
              type: "metadata",
              data: c.inline.subarray(off, off + MAX_METADATA_CHUNK),
            });
          }
        } else {
          pending.push({
            type: "fileBackedData",
            contentLength: objectSize(repo, c.external),
            dirfdIndex: 0,
            filename: repo.objectPath(c.external),
          });
        }
      }
      controller.enqueue(pending.shift()!);
    },
    cancel() {
      pending = [];
    },
  }, { highWaterMark: 16 });
  return {
    chunks,
    dirfds: [objects.borrow()],
    size: stream.streamSize,
    [Symbol.dispose]() {
      objects.close();
    },
  };
}

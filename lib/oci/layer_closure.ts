/**
 * A stored layer as its closure: the layer splitstream object and the objects its header
 * lists. Between two local repositories of one algorithm the destination's writer would
 * produce exactly that splitstream again (same object ids, same inline bytes, same encoder),
 * so `oci copy` brings the closure over by linking each object under the name it already
 * has, and names the stream — the cost of `cp -al`/`cp --reflink` instead of a decode and
 * re-encode per layer. Across algorithms or trust boundaries layers travel as
 * splitdirfdstream instead (layer_sync.ts).
 *
 * @module
 */

import { cooperate } from "../../ffi/event_loop.ts";
import type { BorrowedFd } from "../../ffi/owned_fd.ts";
import type { Repository } from "../repository/repository.ts";
import { NotFoundError } from "../repository/errors.ts";
import { CONTENT_TYPE } from "../repository/splitstream.ts";
import { emptyLayerStats, type LayerStats } from "./layer_writer.ts";
import { layerStreamName } from "./names.ts";

/** Objects between two progress reports (a few ms of linking). */
const PROGRESS_EVERY = 512;

/** A layer's splitstream object and the objects it references, by id. */
export interface LayerClosure {
  /** fs-verity id of the layer splitstream. */
  streamId: Uint8Array;
  /** Objects the stream references (its header's object-ref table). */
  objectIds: Uint8Array[];
  /** Tar size recorded in the stream. */
  size: number;
}

/**
 * The closure of the stored layer `oci-layer-<diffId>`, or null when the layer cannot travel
 * as one: a stream of another content type (an artifact blob, which a copy rewrites as
 * `ocilayer` like composefs-rs) or one that references other streams.
 *
 * @throws the repository's not-found error when the layer is absent, `StreamMismatchError`
 *   for a malformed stream.
 */
export function layerClosure(repo: Repository, diffId: string): LayerClosure | null {
  const name = layerStreamName(diffId);
  const streamId = repo.hasStream(name);
  if (streamId === null) throw new NotFoundError("stream", name);
  const s = repo.readStreamObject(streamId, name);
  if (s.contentType !== CONTENT_TYPE.OCI_LAYER || s.streamRefs.length > 0) return null;
  return { streamId, objectIds: s.objectRefs, size: s.streamSize };
}

/** How {@link importLayerClosure} may store objects (as in `PutLayerOptions`). */
export interface ClosureImportOptions {
  /** Try reflinks. */
  allowReflink: boolean;
  /** Try hardlinks. */
  allowHardlink: boolean;
  /** Fall back to copying. */
  allowCopy: boolean;
}

/**
 * Bring layer closures from another repository of the same algorithm (`from` beneath each
 * closure: that repository's `objects/` directory) into `repo` and name each
 * `oci-layer-<diffId>`: every object and stream object first, then the names — the first
 * name syncs the filesystem, so a batch costs one sync (DESIGN 9). A run killed midway
 * leaves only unnamed objects (gc collects them; a re-run finds them present).
 *
 * @throws {ObjectNotFoundError} when the source lacks an object (nothing is named).
 */
export async function importLayerClosures(
  repo: Repository,
  layers: { diffId: string; closure: LayerClosure & { objectsDir: BorrowedFd } }[],
  store: ClosureImportOptions,
  onProgress?: (layer: number, bytes: number) => void,
): Promise<{ verity: Uint8Array; stats: LayerStats }[]> {
  const out = [];
  for (const [index, { closure }] of layers.entries()) {
    const stats = emptyLayerStats();
    const total = closure.objectIds.length;
    onProgress?.(index, 0);
    for (const [i, id] of closure.objectIds.entries()) {
      // Object sizes are not known without a stat each: report the share of objects done.
      if (i > 0 && i % PROGRESS_EVERY === 0) {
        onProgress?.(index, Math.floor(closure.size * i / total));
      }
      const method = repo.importTrustedObject(closure.objectsDir, id, store);
      if (method === "reflinked") stats.objectsReflinked++;
      else if (method === "hardlinked") stats.objectsHardlinked++;
      else if (method === "copied") stats.objectsCopied++;
      else stats.objectsAlreadyPresent++;
      // Linking is synchronous: let timers and other connections in now and then.
      await cooperate();
    }
    // The stream object last (it is not one of the layer's objects: not counted).
    repo.importTrustedObject(closure.objectsDir, closure.streamId, store);
    onProgress?.(index, closure.size);
    out.push({ verity: closure.streamId, stats });
  }
  for (const { diffId, closure } of layers) {
    repo.linkStreamObject(layerStreamName(diffId), closure.streamId);
  }
  return out;
}

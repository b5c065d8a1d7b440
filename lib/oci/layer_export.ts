/**
 * `oci layer`: a stored layer back as its exact tar bytes, or a summary of its splitstream.
 *
 * @module
 */

import type { Repository } from "../repository/repository.ts";
import { CONTENT_TYPE } from "../repository/splitstream.ts";
import { NotFoundError } from "../repository/errors.ts";
import { toHex } from "../repository/object_id.ts";
import { parseSha256Digest } from "./digest.ts";
import { ImageNotFoundError } from "./errors.ts";
import { layerStreamName } from "./names.ts";
import { TarSplitter } from "./tar_split.ts";

/** `oci layer --json` (composefs-rs camelCase shape). */
export interface LayerInfo {
  /** The diff_id. */
  diffId: string;
  /** fs-verity of the layer splitstream, hex. */
  verity: string;
  /** Tar length. */
  size: number;
  /** Tar entries (extension headers not counted). */
  entryCount: number;
  /** Splitstream composition. */
  splitstream: { externalObjects: number; externalSize: number; inlineSize: number };
}

function streamFor(repo: Repository, diffId: string): { name: string; verity: Uint8Array } {
  parseSha256Digest(diffId);
  const name = layerStreamName(diffId);
  const verity = repo.hasStream(name);
  if (verity === null) throw new ImageNotFoundError(diffId, "the repository (no such layer)");
  return { name, verity };
}

/** The layer's tar, reassembled from its splitstream (byte-identical to the original). */
export function exportLayer(repo: Repository, diffId: string): ReadableStream<Uint8Array> {
  const { name } = streamFor(repo, diffId);
  try {
    repo.readStream(name, CONTENT_TYPE.OCI_LAYER);
    return repo.catStream(name);
  } catch (e) {
    if (e instanceof NotFoundError) {
      throw new ImageNotFoundError(diffId, "the repository (no such layer)", { cause: e });
    }
    throw e;
  }
}

/** Summarize a stored layer; reads the whole tar once to count entries. */
export async function layerInfo(repo: Repository, diffId: string): Promise<LayerInfo> {
  const { name, verity } = streamFor(repo, diffId);
  const s = repo.readStream(name, CONTENT_TYPE.OCI_LAYER);
  let externalObjects = 0;
  let externalSize = 0;
  let inlineSize = 0;
  const splitter = new TarSplitter({
    writeInline: (b) => {
      inlineSize += b.length;
    },
    beginFile: (n) => {
      externalObjects++;
      externalSize += n;
    },
    writeFileChunk: () => {},
    endFile: () => {},
  });
  for await (const chunk of repo.catStream(name)) await splitter.push(chunk);
  splitter.finish();
  return {
    diffId,
    verity: toHex(verity),
    size: s.streamSize,
    entryCount: splitter.entries,
    splitstream: { externalObjects, externalSize, inlineSize },
  };
}

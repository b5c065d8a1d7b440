/**
 * Write an OCI image layout directory (oci-layout, index.json, blobs/sha256/…) from layer tars:
 * what the demo ships instead of depending on umoci, and what tests use for exact inputs.
 *
 * @module
 */

import { join } from "node:path";
import { sha256Digest } from "./digest.ts";

/** Media types written by {@link writeOciLayout}. */
export const MEDIA_TYPE = {
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  index: "application/vnd.oci.image.index.v1+json",
  layerTar: "application/vnd.oci.image.layer.v1.tar",
  layerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
} as const;

/** What {@link writeOciLayout} built. */
export interface WrittenImage {
  /** `sha256:<hex>` of the manifest. */
  manifestDigest: string;
  /** `sha256:<hex>` of the config. */
  configDigest: string;
  /** `sha256:<hex>` diff_id of each layer (uncompressed). */
  diffIds: string[];
}

async function gzip(b: Uint8Array): Promise<Uint8Array> {
  const s = new Blob([b as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return await new Response(s).bytes();
}

async function writeBlob(dir: string, bytes: Uint8Array): Promise<string> {
  const digest = sha256Digest(bytes);
  await Deno.mkdir(join(dir, "blobs", "sha256"), { recursive: true });
  await Deno.writeFile(join(dir, "blobs", "sha256", digest.slice(7)), bytes);
  return digest;
}

/** Options for {@link writeOciLayout}. */
export interface WriteOciLayoutOptions {
  /** Tag recorded as `org.opencontainers.image.ref.name` in index.json. */
  tag: string;
  /** Compress layers with gzip (default true). */
  gzip?: boolean;
  /** Image architecture (default amd64). */
  architecture?: string;
}

/** Write (or add to) an OCI layout at `dir` holding one image made of `layers` (tar bytes). */
export async function writeOciLayout(
  dir: string,
  layers: Uint8Array[],
  opts: WriteOciLayoutOptions,
): Promise<WrittenImage> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
  const diffIds = layers.map((l) => sha256Digest(l));
  const layerDescs = [];
  for (const tar of layers) {
    const blob = opts.gzip === false ? tar : await gzip(tar);
    layerDescs.push({
      mediaType: opts.gzip === false ? MEDIA_TYPE.layerTar : MEDIA_TYPE.layerGzip,
      digest: await writeBlob(dir, blob),
      size: blob.length,
    });
  }
  const config = new TextEncoder().encode(JSON.stringify({
    architecture: opts.architecture ?? "amd64",
    os: "linux",
    config: {},
    rootfs: { type: "layers", diff_ids: diffIds },
    history: layers.map(() => ({ created_by: "cfs-deno layout writer" })),
  }));
  const configDigest = await writeBlob(dir, config);
  const manifest = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.manifest,
    config: { mediaType: MEDIA_TYPE.config, digest: configDigest, size: config.length },
    layers: layerDescs,
  }));
  const manifestDigest = await writeBlob(dir, manifest);
  const indexPath = join(dir, "index.json");
  let index: { schemaVersion: number; mediaType?: string; manifests: unknown[] };
  try {
    index = JSON.parse(await Deno.readTextFile(indexPath));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    index = { schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests: [] };
  }
  index.manifests.push({
    mediaType: MEDIA_TYPE.manifest,
    digest: manifestDigest,
    size: manifest.length,
    annotations: { "org.opencontainers.image.ref.name": opts.tag },
  });
  await Deno.writeTextFile(indexPath, JSON.stringify(index));
  return { manifestDigest, configDigest, diffIds };
}

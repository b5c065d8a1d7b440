/**
 * containers-storage's metadata files, as data: `<driver>-images/images.json`,
 * `<driver>-layers/layers.json`, big-data file names, image lookup and the layer chain.
 * Pure: the bytes come from `store.ts`.
 *
 * @module
 */

import type { ImageSelector, NamedRef } from "./reference.ts";

/** One entry of `layers.json` (the fields we use). */
export interface LayerRecord {
  /** Layer id (the directory name under the driver's root). */
  id: string;
  /** Parent layer id; absent for a base layer. */
  parent?: string;
  /** `sha256:` digest of the uncompressed tar (absent for container layers). */
  diffDigest?: string;
  /** Size of the uncompressed tar. */
  diffSize?: number;
  /** True while c/storage is still writing the layer (`flags.incomplete`). */
  incomplete: boolean;
}

/** One entry of `images.json` (the fields we use). */
export interface ImageRecord {
  /** Image id: the config digest's hex. */
  id: string;
  /** Manifest digest (`sha256:...`), if recorded. */
  digest?: string;
  /** All manifest digests the image is known under. */
  digests: string[];
  /** Names (`localhost/test:v2`, `docker.io/library/x@sha256:...`). */
  names: string[];
  /** Top layer id; absent for an image without layers. */
  layer?: string;
  /** Big-data keys (`manifest`, `sha256:<id>`, `manifest-sha256:...`). */
  bigDataNames: string[];
}

/** images.json / layers.json content that is not what c/storage writes. */
export class StoreMetadataError extends Error {
  /** The error class name. */
  override name = "StoreMetadataError";
  /** The file (path relative to the store, or absolute). */
  readonly file: string;
  /** Build the error from its structured fields. */
  constructor(file: string, reason: string, options?: ErrorOptions) {
    super(`Invalid containers-storage metadata "${file}": ${reason}`, options);
    this.file = file;
  }
}

/** Ids are used as path components beneath the store: no `/`, no leading `.`. */
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

function parseArray(bytes: Uint8Array, file: string): Record<string, unknown>[] {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    throw new StoreMetadataError(file, "not valid JSON", { cause: e });
  }
  if (v === null) return []; // c/storage writes "null" for an empty store
  if (!Array.isArray(v)) throw new StoreMetadataError(file, "not a JSON array");
  return v.map((e, i) => {
    if (typeof e !== "object" || e === null || Array.isArray(e)) {
      throw new StoreMetadataError(file, `entry ${i} is not an object`);
    }
    return e as Record<string, unknown>;
  });
}

function optStr(
  o: Record<string, unknown>,
  k: string,
  file: string,
  i: number,
): string | undefined {
  const v = o[k];
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string") {
    throw new StoreMetadataError(file, `entry ${i}: "${k}" is not a string`);
  }
  return v;
}

function strList(o: Record<string, unknown>, k: string, file: string, i: number): string[] {
  const v = o[k];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) {
    throw new StoreMetadataError(file, `entry ${i}: "${k}" is not an array of strings`);
  }
  return v as string[];
}

function id(o: Record<string, unknown>, k: string, file: string, i: number): string | undefined {
  const v = optStr(o, k, file, i);
  if (v !== undefined && !SAFE_ID.test(v)) {
    throw new StoreMetadataError(file, `entry ${i}: "${k}" ${JSON.stringify(v)} is not a valid id`);
  }
  return v;
}

/** Parse `layers.json`. */
export function parseLayersJson(bytes: Uint8Array, file = "layers.json"): LayerRecord[] {
  return parseArray(bytes, file).map((o, i) => {
    const lid = id(o, "id", file, i);
    if (lid === undefined) throw new StoreMetadataError(file, `entry ${i} has no "id"`);
    const flags = o.flags;
    const incomplete = typeof flags === "object" && flags !== null &&
      (flags as Record<string, unknown>).incomplete === true;
    const diffSize = o["diff-size"];
    const rec: LayerRecord = { id: lid, incomplete };
    const parent = id(o, "parent", file, i);
    if (parent !== undefined) rec.parent = parent;
    const dd = optStr(o, "diff-digest", file, i);
    if (dd !== undefined) rec.diffDigest = dd;
    if (typeof diffSize === "number" && Number.isSafeInteger(diffSize) && diffSize >= 0) {
      rec.diffSize = diffSize;
    }
    return rec;
  });
}

/** Parse `images.json`. */
export function parseImagesJson(bytes: Uint8Array, file = "images.json"): ImageRecord[] {
  return parseArray(bytes, file).map((o, i) => {
    const iid = id(o, "id", file, i);
    if (iid === undefined) throw new StoreMetadataError(file, `entry ${i} has no "id"`);
    const rec: ImageRecord = {
      id: iid,
      digests: strList(o, "digests", file, i),
      names: strList(o, "names", file, i),
      bigDataNames: strList(o, "big-data-names", file, i),
    };
    const digest = optStr(o, "digest", file, i);
    if (digest !== undefined) rec.digest = digest;
    const layer = id(o, "layer", file, i);
    if (layer !== undefined) rec.layer = layer;
    return rec;
  });
}

/**
 * File name of an image's big-data item (c/storage `makeBigDataBaseName`): the key itself if it
 * is made only of `[.0-9a-z]` (and is not `.`/`..`-like), else `=` + base64(key).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bigDataFileName } from "./store_model.ts";
 * assert.equal(bigDataFileName("manifest"), "manifest");
 * assert.equal(bigDataFileName("sha256:ab"), "=" + btoa("sha256:ab"));
 * ```
 */
export function bigDataFileName(key: string): string {
  if (/^[.0-9a-z]+$/.test(key) && key !== "." && key !== "..") return key;
  return "=" + new TextEncoder().encode(key).toBase64();
}

/** Several images match a reference (an id prefix or a short name). */
export class AmbiguousImageError extends Error {
  /** The error class name. */
  override name = "AmbiguousImageError";
  /** The reference. */
  readonly reference: string;
  /** Ids of the matching images. */
  readonly candidates: string[];
  /** Build the error from its structured fields. */
  constructor(reference: string, candidates: string[]) {
    super(
      `Reference "${reference}" is ambiguous: it matches images ${
        candidates.map((c) => `"${c.slice(0, 12)}"`).join(", ")
      }`,
    );
    this.reference = reference;
    this.candidates = candidates;
  }
}

function uniqueOrThrow(ref: string, found: ImageRecord[]): ImageRecord | null {
  const ids = [...new Set(found.map((f) => f.id))];
  if (ids.length > 1) throw new AmbiguousImageError(ref, ids);
  return found[0] ?? null;
}

function nameMatches(images: ImageRecord[], n: NamedRef, ref: string): ImageRecord | null {
  if (n.digest !== undefined) {
    const d = n.digest;
    const exact = images.filter((im) =>
      (im.digest === d || im.digests.includes(d)) &&
      im.names.some((x) => x === `${n.repository}@${d}` || x.startsWith(`${n.repository}:`))
    );
    if (exact.length) return uniqueOrThrow(ref, exact);
    return uniqueOrThrow(
      ref,
      images.filter((im) =>
        (im.digest === d || im.digests.includes(d)) &&
        im.names.some((x) => x.startsWith(`${n.repository}@`) || x.startsWith(`${n.repository}:`))
      ),
    );
  }
  const wanted = `${n.repository}:${n.tag ?? "latest"}`;
  const exact = images.filter((im) => im.names.includes(wanted));
  if (exact.length) return uniqueOrThrow(ref, exact);
  // Short names (as composefs-rs and podman's short-name lookup): `test:v2` matches
  // `localhost/test:v2`, at a "/" boundary.
  const suffix = `/${n.raw}:${n.tag ?? "latest"}`;
  return uniqueOrThrow(ref, images.filter((im) => im.names.some((x) => x.endsWith(suffix))));
}

/**
 * Find the image a selector means in one store's images. `null` when it is not there.
 * Throws {@link AmbiguousImageError} when an id prefix or short name matches several.
 */
export function findImage(
  images: ImageRecord[],
  sel: ImageSelector,
  ref: string,
): ImageRecord | null {
  switch (sel.kind) {
    case "id":
      return images.find((im) => im.id === sel.id) ?? null;
    case "idPrefix":
      return uniqueOrThrow(ref, images.filter((im) => im.id.startsWith(sel.prefix)));
    case "idPrefixOrName": {
      const byId = uniqueOrThrow(ref, images.filter((im) => im.id.startsWith(sel.prefix)));
      return byId ?? nameMatches(images, sel.name, ref);
    }
    case "name":
      return nameMatches(images, sel.name, ref);
  }
}

/** The image's layers cannot be resolved (a missing parent, a cycle, an incomplete layer). */
export class LayerChainError extends Error {
  /** The error class name. */
  override name = "LayerChainError";
  /** The image id. */
  readonly imageId: string;
  /** The layer the problem is at. */
  readonly layerId: string;
  /** Build the error from its structured fields. */
  constructor(imageId: string, layerId: string, reason: string) {
    super(`Image "${imageId}": layer "${layerId}" ${reason}`);
    this.imageId = imageId;
    this.layerId = layerId;
  }
}

/** Maximum layer depth; overlay itself stops at 500 lower layers (composefs-rs uses the same). */
export const MAX_LAYER_DEPTH = 500;

/**
 * Walk from an image's top layer through `parent` links (as c/storage does), searching the
 * stores' layer lists in order, and return the chain base first, each with the index of the
 * store it was found in.
 */
export function layerChain(
  image: ImageRecord,
  stores: readonly LayerRecord[][],
  preferStore = 0,
): { layer: LayerRecord; store: number }[] {
  const order = [preferStore, ...stores.map((_, i) => i).filter((i) => i !== preferStore)];
  const lookup = (lid: string) => {
    for (const s of order) {
      const l = stores[s]?.find((x) => x.id === lid);
      if (l) return { layer: l, store: s };
    }
    return null;
  };
  const out: { layer: LayerRecord; store: number }[] = [];
  const seen = new Set<string>();
  let cur = image.layer;
  while (cur !== undefined) {
    if (seen.has(cur)) throw new LayerChainError(image.id, cur, "is its own ancestor");
    if (out.length >= MAX_LAYER_DEPTH) {
      throw new LayerChainError(image.id, cur, `exceeds the depth limit of ${MAX_LAYER_DEPTH}`);
    }
    seen.add(cur);
    const found = lookup(cur);
    if (!found) throw new LayerChainError(image.id, cur, "is not in any layer store");
    if (found.layer.incomplete) {
      throw new LayerChainError(image.id, cur, "is incomplete (still being written)");
    }
    out.push(found);
    cur = found.layer.parent;
  }
  return out.reverse();
}

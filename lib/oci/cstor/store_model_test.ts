import assert from "node:assert/strict";
import fc from "fast-check";
import {
  AmbiguousImageError,
  bigDataFileName,
  findImage,
  type ImageRecord,
  layerChain,
  LayerChainError,
  parseImagesJson,
  parseLayersJson,
  StoreMetadataError,
} from "./store_model.ts";
import { parseCstorReference } from "./reference.ts";

const enc = new TextEncoder();
const A = "a".repeat(64);
const B = "b".repeat(64);
const C = "c".repeat(64);

// Shapes recorded from a store written by skopeo 1.9.3 / c/storage 1.43.
const LAYERS = JSON.stringify([
  {
    id: A,
    created: "2026-11-28T00:37:23.771232904Z",
    "compressed-diff-digest": "sha256:7be3",
    "compressed-size": 104993,
    "diff-digest": `sha256:${A}`,
    "diff-size": 105984,
    compression: 2,
    uidset: [0],
    gidset: [0],
  },
  { id: B, parent: A, "diff-digest": "sha256:8133", "diff-size": 9728, uidset: [0] },
  { id: C, parent: B, flags: { incomplete: true } },
]);
const IMAGES = JSON.stringify([
  {
    id: "1".repeat(64),
    digest: "sha256:d7c1",
    names: ["localhost/test:v2"],
    layer: B,
    "big-data-names": ["sha256:" + "1".repeat(64), "manifest"],
  },
  {
    id: "12" + "3".repeat(62),
    names: ["docker.io/library/busybox:latest", "quay.io/x/test:v2"],
    layer: A,
  },
]);

Deno.test("store_model: parses real-shaped layers.json and images.json", () => {
  const layers = parseLayersJson(enc.encode(LAYERS));
  assert.deepEqual(layers[0], {
    id: A,
    diffDigest: `sha256:${A}`,
    diffSize: 105984,
    incomplete: false,
  });
  assert.deepEqual(layers[1], {
    id: B,
    parent: A,
    diffDigest: "sha256:8133",
    diffSize: 9728,
    incomplete: false,
  });
  assert.equal(layers[2].incomplete, true);
  const images = parseImagesJson(enc.encode(IMAGES));
  assert.deepEqual(images[0].bigDataNames, ["sha256:" + "1".repeat(64), "manifest"]);
  assert.equal(images[0].layer, B);
  assert.deepEqual(parseImagesJson(enc.encode("null")), []);
});

Deno.test("store_model: malformed metadata → StoreMetadataError", () => {
  for (
    const bad of [
      "{",
      "{}",
      "[1]",
      '[{"id":"../x"}]',
      '[{"names":[]}]',
      '[{"id":"a","names":[1]}]',
      '[{"id":"a","layer":"x/y"}]',
    ]
  ) {
    assert.throws(() => parseImagesJson(enc.encode(bad)), StoreMetadataError, bad);
  }
  assert.throws(() => parseLayersJson(enc.encode('[{"id":"a","parent":5}]')), StoreMetadataError);
  assert.throws(() => parseLayersJson(new Uint8Array([0x5b, 0xff, 0x5d])), StoreMetadataError);
});

Deno.test("store_model: big-data file names (c/storage makeBigDataBaseName)", () => {
  assert.equal(bigDataFileName("manifest"), "manifest");
  // Recorded: the config of image b7fc84... is stored as this file.
  assert.equal(
    bigDataFileName("sha256:b7fc84bc700ee8caf231c641986feaf6e98a18407559cecd6ee1ca349926012d"),
    "=c2hhMjU2OmI3ZmM4NGJjNzAwZWU4Y2FmMjMxYzY0MTk4NmZlYWY2ZTk4YTE4NDA3NTU5Y2VjZDZlZTFjYTM0OTkyNjAxMmQ=",
  );
  assert.equal(bigDataFileName(".."), "=Li4=");
});

Deno.test("store_model: findImage by id, prefix, name, short name, digest", () => {
  const images = parseImagesJson(enc.encode(IMAGES));
  const find = (r: string) => findImage(images, parseCstorReference(r).image, r)?.id ?? null;
  assert.equal(find(`@${"1".repeat(64)}`), "1".repeat(64));
  assert.equal(find("@111"), "1".repeat(64));
  assert.equal(find("123"), "12" + "3".repeat(62)); // bare id prefix
  assert.equal(find("localhost/test:v2"), "1".repeat(64));
  assert.equal(find("busybox"), "12" + "3".repeat(62)); // docker.io/library/busybox:latest
  assert.equal(find("localhost/test@sha256:d7c1"), "1".repeat(64));
  assert.equal(find("localhost/test:v3"), null);
  assert.equal(find(`@${"9".repeat(64)}`), null);
  assert.throws(() => find("test:v2"), AmbiguousImageError); // localhost/test:v2 and quay.io/x/test:v2
  assert.throws(() => find("@1"), Error); // too short: rejected by the parser
  assert.throws(
    () =>
      findImage(
        [...images, { ...images[0], id: "1".repeat(63) + "2" }],
        parseCstorReference("@111").image,
        "@111",
      ),
    AmbiguousImageError,
  );
});

Deno.test("store_model: layer chain across stores, with typed errors", () => {
  const layers = parseLayersJson(enc.encode(LAYERS));
  const image: ImageRecord = { id: "i", digests: [], names: [], layer: B, bigDataNames: [] };
  const chain = layerChain(image, [layers.slice(1, 2), layers.slice(0, 1)]);
  assert.deepEqual(chain.map((c) => [c.layer.id, c.store]), [[A, 1], [B, 0]]);
  assert.throws(() => layerChain({ ...image, layer: C }, [layers]), /incomplete/);
  assert.throws(() => layerChain(image, [layers.slice(1, 2)]), LayerChainError);
  const loop = [{ id: "x", parent: "y", incomplete: false }, {
    id: "y",
    parent: "x",
    incomplete: false,
  }];
  assert.throws(() => layerChain({ ...image, layer: "x" }, [loop]), /own ancestor/);
  assert.deepEqual(layerChain({ ...image, layer: undefined }, [layers]), []);
});

Deno.test("store_model: arbitrary JSON never escapes as a non-typed error (fast-check)", () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 3 }), (v) => {
      const bytes = enc.encode(JSON.stringify(v) ?? "null");
      for (const f of [parseImagesJson, parseLayersJson]) {
        try {
          f(bytes);
        } catch (e) {
          if (!(e instanceof StoreMetadataError)) throw e;
        }
      }
    }),
    { seed: 9, numRuns: 1000 },
  );
});

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  checkMetadata,
  effectiveErofsFormats,
  IncompatibleFeaturesError,
  metadataEqual,
  MetadataInvalidError,
  newRepoMetadata,
  parseRepoMetadata,
  serializeRepoMetadata,
  UnsupportedVersionError,
} from "./meta.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

const V1_SHA256 = `{
  "version": 1,
  "algorithm": "fsverity-sha256-12",
  "features": {
    "compatible": [],
    "read-only-compatible": [
      "v1_erofs"
    ],
    "incompatible": []
  },
  "erofs_formats": {
    "default": 1
  }
}
`;

const V2_SHA512 = `{
  "version": 1,
  "algorithm": "fsverity-sha512-12",
  "features": {
    "compatible": [],
    "read-only-compatible": [],
    "incompatible": []
  },
  "erofs_formats": {
    "default": 2
  }
}
`;

const DUAL_SHA256 = `{
  "version": 1,
  "algorithm": "fsverity-sha256-12",
  "features": {
    "compatible": [],
    "read-only-compatible": [
      "v1_erofs"
    ],
    "incompatible": []
  },
  "erofs_formats": {
    "default": 1,
    "extra": [
      2
    ]
  }
}
`;

Deno.test("meta.json: exact bytes for V1, V2 and dual V1+V2 (spec §1.2)", () => {
  assert.equal(dec(serializeRepoMetadata(newRepoMetadata("sha256"))), V1_SHA256);
  assert.equal(dec(serializeRepoMetadata(newRepoMetadata("sha512", { default: 2 }))), V2_SHA512);
  assert.equal(
    dec(serializeRepoMetadata(newRepoMetadata("sha256", { default: 1, extra: [2, 2, 1] }))),
    DUAL_SHA256,
  );
});

Deno.test("meta.json: parse round-trips the shapes", () => {
  for (const text of [V1_SHA256, V2_SHA512, DUAL_SHA256]) {
    const m = parseRepoMetadata(enc(text));
    assert.equal(dec(serializeRepoMetadata(m)), text);
    assert.equal(checkMetadata(m), "read-write");
  }
  const dual = parseRepoMetadata(enc(DUAL_SHA256));
  assert.deepEqual(dual.erofsFormats, { default: 1, extra: [2] });
  assert.ok(metadataEqual(dual, newRepoMetadata("sha256", { default: 1, extra: [2] })));
  assert.ok(!metadataEqual(dual, newRepoMetadata("sha256")));
});

Deno.test("meta.json: defaults, unknown keys and the legacy erofs format rule", () => {
  const m = parseRepoMetadata(
    enc(`{"version":1,"algorithm":"fsverity-sha512-12","erofs_version":2}`),
  );
  assert.deepEqual(m.features, { compatible: [], readOnlyCompatible: [], incompatible: [] });
  assert.deepEqual(m.erofsFormats, { default: 2, extra: [] });
  assert.deepEqual(effectiveErofsFormats(m), { default: 2, extra: [] });
  const legacyV1 = parseRepoMetadata(
    enc(
      `{"version":1,"algorithm":"fsverity-sha256-12","features":{"read-only-compatible":["v1_erofs"]}}`,
    ),
  );
  assert.deepEqual(effectiveErofsFormats(legacyV1), { default: 1, extra: [] });
  assert.deepEqual(legacyV1.features.compatible, []);
});

Deno.test("meta.json: version 2 and unknown incompatible features are refused", () => {
  const v2 = parseRepoMetadata(enc(`{"version":2,"algorithm":"fsverity-sha256-12"}`));
  assert.throws(
    () => checkMetadata(v2),
    (e) => e instanceof UnsupportedVersionError && e.version === 2,
  );
  const inc = parseRepoMetadata(
    enc(
      `{"version":1,"algorithm":"fsverity-sha256-12","features":{"incompatible":["zstd-objects"]}}`,
    ),
  );
  assert.throws(
    () => checkMetadata(inc),
    (e) => e instanceof IncompatibleFeaturesError && e.features[0] === "zstd-objects",
  );
  const ro = parseRepoMetadata(
    enc(
      `{"version":1,"algorithm":"fsverity-sha256-12","features":{"read-only-compatible":["future"],"compatible":["x"]}}`,
    ),
  );
  assert.equal(checkMetadata(ro), "read-only");
});

Deno.test("meta.json: invalid documents are MetadataInvalidError", () => {
  for (
    const bad of [
      "",
      "[]",
      "null",
      `{"algorithm":"fsverity-sha256-12"}`,
      `{"version":-1,"algorithm":"fsverity-sha256-12"}`,
      `{"version":1.5,"algorithm":"fsverity-sha256-12"}`,
      `{"version":1,"algorithm":"fsverity-sha256-13"}`,
      `{"version":1,"algorithm":"sha256"}`,
      `{"version":1,"algorithm":"fsverity-md5-12"}`,
      `{"version":1,"algorithm":"fsverity-sha256-12","features":{"compatible":[1]}}`,
      `{"version":1,"algorithm":"fsverity-sha256-12","erofs_formats":{"default":3}}`,
      `{"version":1,"algorithm":"fsverity-sha256-12","erofs_formats":{"default":1,"extra":[7]}}`,
    ]
  ) {
    assert.throws(() => parseRepoMetadata(enc(bad)), MetadataInvalidError, bad);
  }
  assert.throws(() => parseRepoMetadata(new Uint8Array([0xff, 0xfe])), MetadataInvalidError);
});

Deno.test("meta.json: fuzzed input only ever throws MetadataInvalidError", () => {
  const jsonish = fc.oneof(
    fc.uint8Array({ maxLength: 200 }),
    fc.json().map((s) => enc(s)),
    fc.record({
      version: fc.oneof(fc.integer(), fc.string(), fc.constant(1)),
      algorithm: fc.oneof(fc.constantFrom("fsverity-sha256-12", "fsverity-sha512-12"), fc.string()),
      features: fc.anything(),
      erofs_formats: fc.anything(),
    }).map((o) => enc(JSON.stringify(o) ?? "")),
  );
  fc.assert(
    fc.property(jsonish, (bytes) => {
      try {
        const m = parseRepoMetadata(bytes);
        // Anything accepted must serialize and re-parse to the same metadata.
        assert.ok(metadataEqual(parseRepoMetadata(serializeRepoMetadata(m)), m));
      } catch (e) {
        if (!(e instanceof MetadataInvalidError)) throw e;
      }
    }),
    { seed: 42, numRuns: 2000 },
  );
});

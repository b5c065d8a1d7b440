import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import fc from "fast-check";
import { parseConfig, parseIndexOrManifest, parseManifest } from "./manifest.ts";
import { InvalidOciDocumentError } from "./errors.ts";
import { InvalidDigestError, parseDigest, sha256Digest } from "./digest.ts";
import { decodeTag, encodeTag, tagRefName, validateTag } from "./names.ts";
import { hostPlatform, parsePlatform, platformMatches } from "./platform.ts";
import { tarLayerCompression } from "./media_types.ts";

const enc = new TextEncoder();
const D = "sha256:" + "a".repeat(64);

Deno.test("digest: sha256 of 'hello world' and parse rules", () => {
  assertEquals(
    sha256Digest(enc.encode("hello world")),
    "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9",
  );
  assertEquals(parseDigest(D), { algorithm: "sha256", hex: "a".repeat(64) });
  for (const bad of ["", "sha256:", "sha256:" + "A".repeat(64), "md5:aa", D + "0", "sha256" + D]) {
    throws(() => parseDigest(bad), InvalidDigestError);
  }
});

Deno.test("names: tag encoding matches composefs-rs encode_tag/decode_tag", () => {
  assertEquals(
    encodeTag("docker.io/library/busybox:latest"),
    "docker.io%2Flibrary%2Fbusybox:latest",
  );
  assertEquals(encodeTag("a%b/c"), "a%25b%2Fc");
  assertEquals(decodeTag("a%25b%2Fc"), "a%b/c");
  assertEquals(decodeTag("%2F%41%25"), "/%41%");
  assertEquals(tagRefName("x/y:1"), "oci/x%2Fy:1");
  throws(() => validateTag("@sha256:abc"), /must not start with '@'/);
  throws(() => validateTag(""), /empty/);
  validateTag("a@b");
  fc.assert(fc.property(fc.string(), (s) => assertEquals(decodeTag(encodeTag(s)), s)), {
    seed: 7,
  });
});

Deno.test("manifest: OCI manifest without mediaType (umoci), Docker v2s2, index", () => {
  const m = enc.encode(JSON.stringify({
    schemaVersion: 2,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: D, size: 10 },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: D, size: 5 }],
  }));
  const pm = parseManifest(m, D);
  assertEquals(pm.mediaType, "application/vnd.oci.image.manifest.v1+json");
  assertEquals(pm.layers.length, 1);
  const docker = enc.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.docker.distribution.manifest.v2+json",
    config: { mediaType: "application/vnd.docker.container.image.v1+json", digest: D, size: 1 },
    layers: [{
      mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip",
      digest: D,
      size: 1,
    }],
  }));
  assertEquals(
    parseManifest(docker).mediaType,
    "application/vnd.docker.distribution.manifest.v2+json",
  );
  assertEquals(tarLayerCompression("application/vnd.docker.image.rootfs.diff.tar.gzip"), "gzip");
  assertEquals(tarLayerCompression("application/vnd.oci.image.layer.v1.tar+zstd"), "zstd");
  assertEquals(tarLayerCompression("application/octet-stream"), undefined);
  const idx = enc.encode(JSON.stringify({
    schemaVersion: 2,
    manifests: [{
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: D,
      size: 3,
      platform: { os: "linux", architecture: "arm64", variant: "v8" },
    }],
  }));
  const pi = parseIndexOrManifest(idx);
  assertEquals(pi.type, "index");
  if (pi.type === "index") assertEquals(pi.index.manifests[0].platform?.variant, "v8");
});

Deno.test("manifest: malformed documents are InvalidOciDocumentError", () => {
  const bad = [
    "not json",
    "[]",
    "{}",
    JSON.stringify({ schemaVersion: 1, config: {}, layers: [] }),
    JSON.stringify({
      schemaVersion: 2,
      config: { mediaType: "x", digest: "sha256:zz", size: 1 },
      layers: [],
    }),
    JSON.stringify({
      schemaVersion: 2,
      config: { mediaType: "x", digest: D, size: -1 },
      layers: [],
    }),
    JSON.stringify({ schemaVersion: 2, config: { mediaType: "x", digest: D, size: 1 } }),
  ];
  for (const b of bad) throws(() => parseManifest(enc.encode(b), D), InvalidOciDocumentError);
  throws(() => parseConfig(enc.encode("{}")), InvalidOciDocumentError);
  throws(
    () => parseConfig(enc.encode(JSON.stringify({ rootfs: { diff_ids: ["nope"] } }))),
    InvalidOciDocumentError,
  );
  const c = parseConfig(enc.encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    rootfs: { type: "layers", diff_ids: [D] },
  })));
  assertEquals(c.diffIds, [D]);
});

Deno.test("manifest: property — arbitrary bytes never throw anything but InvalidOciDocumentError", () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.json().map((j) => enc.encode(j))),
      (b) => {
        for (const f of [parseManifest, parseConfig, (x: Uint8Array) => parseIndexOrManifest(x)]) {
          try {
            f(b);
          } catch (e) {
            if (!(e instanceof InvalidOciDocumentError)) throw e;
          }
        }
      },
    ),
    { seed: 99, numRuns: 500 },
  );
});

Deno.test("platform: parse, match, host", () => {
  assertEquals(parsePlatform("linux/arm64/v8"), {
    os: "linux",
    architecture: "arm64",
    variant: "v8",
  });
  throws(() => parsePlatform("linux"));
  const host = hostPlatform();
  assertEquals(host.os, "linux");
  assertEquals(
    platformMatches({ os: "linux", architecture: "arm64" }, parsePlatform("linux/arm64/v8")),
    true,
  );
  assertEquals(
    platformMatches(parsePlatform("linux/arm64/v8"), { os: "linux", architecture: "arm64" }),
    false,
  );
});

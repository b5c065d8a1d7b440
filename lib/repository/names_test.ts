import assert from "node:assert/strict";
import fc from "fast-check";
import {
  refComponents,
  relativeSymlinkTarget,
  resolveLinkTarget,
  validateEntryName,
} from "./names.ts";
import { InvalidNameError } from "./errors.ts";
import {
  fromHex,
  InvalidObjectIdError,
  objectPathOf,
  parseObjectEntry,
  parseObjectLinkTarget,
  toHex,
  toIdString,
} from "./object_id.ts";
import { ImageInvalidError, imageObjectRefs } from "./image_refs.ts";
import { composefsImage } from "../../tests/repository_image_fixture.ts";

const HEX64 = "1e2eaa4202d750a41174ee454970b92c1bc2f925b1e35076d8c7d5f56362ba64";

Deno.test("symlink targets are exactly those of spec §1.4", () => {
  const obj = "objects/1e/2eaa";
  assert.equal(relativeSymlinkTarget("streams/cid", obj), "../objects/1e/2eaa");
  assert.equal(relativeSymlinkTarget("images/abcd", obj), "../objects/1e/2eaa");
  assert.equal(relativeSymlinkTarget("streams/refs/n", "streams/cid"), "../cid");
  assert.equal(relativeSymlinkTarget("streams/refs/a/b/n", "streams/cid"), "../../../cid");
  assert.equal(
    relativeSymlinkTarget("streams/refs/oci/latest", "streams/oci-manifest-sha256:aa"),
    "../../oci-manifest-sha256:aa",
  );
  assert.equal(
    relativeSymlinkTarget("streams/refs/oci-referrers/s/a", "streams/oci-manifest-sha256:bb"),
    "../../../oci-manifest-sha256:bb",
  );
  assert.equal(relativeSymlinkTarget("images/refs/n", "images/abcd"), "../abcd");
});

Deno.test("resolveLinkTarget inverts relativeSymlinkTarget and refuses escapes", () => {
  const comp = fc.stringMatching(/^[a-z0-9:._-]{1,8}$/).filter((s) => s !== "." && s !== "..");
  fc.assert(
    fc.property(
      fc.constantFrom("streams", "images"),
      fc.array(comp, { minLength: 1, maxLength: 4 }),
      comp,
      (cat, refParts, entry) => {
        const link = [cat, "refs", ...refParts].join("/");
        const target = relativeSymlinkTarget(link, `${cat}/${entry}`);
        assert.equal(resolveLinkTarget(link, target), `${cat}/${entry}`);
      },
    ),
    { seed: 7, numRuns: 500 },
  );
  assert.equal(resolveLinkTarget("streams/refs/x", "/etc/passwd"), null);
  assert.equal(resolveLinkTarget("streams/x", "../../../etc"), null);
  assert.equal(resolveLinkTarget("streams/x", "../objects/ab/cd"), "objects/ab/cd");
});

Deno.test("names: entries and refs that could escape are refused", () => {
  for (const bad of ["", ".", "..", "a/b", "refs", "x\0y", "a".repeat(256)]) {
    assert.throws(() => validateEntryName(bad), InvalidNameError, JSON.stringify(bad));
  }
  validateEntryName("oci-manifest-sha256:abc");
  for (const bad of ["", "/abs", "a//b", "a/../b", "./a", "a/", ".."]) {
    assert.throws(() => refComponents(bad), InvalidNameError, bad);
  }
  assert.deepEqual(refComponents("oci/my%2Ftag"), ["oci", "my%2Ftag"]);
  fc.assert(
    fc.property(fc.string({ maxLength: 40 }), (s) => {
      try {
        const parts = refComponents(s);
        assert.ok(parts.every((p) => p !== ".." && p !== "." && p !== "" && !p.includes("/")));
      } catch (e) {
        if (!(e instanceof InvalidNameError)) throw e;
      }
    }),
    { seed: 11, numRuns: 2000 },
  );
});

Deno.test("object ids: hex, paths, entries and symlink targets (hashvalue.rs rules)", () => {
  const id = fromHex(HEX64, 32);
  assert.equal(toHex(id), HEX64);
  assert.equal(objectPathOf(id), `1e/${HEX64.slice(2)}`);
  assert.equal(toIdString(id, "sha256"), `sha256:${HEX64}`);
  assert.deepEqual(parseObjectEntry("1e", HEX64.slice(2), "sha256"), id);
  assert.deepEqual(parseObjectEntry("1e", HEX64.slice(2).toUpperCase(), "sha256"), id);
  assert.throws(() => parseObjectEntry("1e", HEX64.slice(3), "sha256"), InvalidObjectIdError);
  assert.throws(() => parseObjectEntry("1e", HEX64.slice(2), "sha512"), InvalidObjectIdError);
  assert.throws(() => parseObjectEntry("zz", HEX64.slice(2), "sha256"), InvalidObjectIdError);
  // Any prefix before the last 2N+1 characters is ignored.
  assert.deepEqual(parseObjectLinkTarget(`../objects/1e/${HEX64.slice(2)}`, "sha256"), id);
  assert.deepEqual(parseObjectLinkTarget(`whatever1e/${HEX64.slice(2)}`, "sha256"), id);
  assert.throws(
    () => parseObjectLinkTarget(`1e${HEX64.slice(2)}x`, "sha256"),
    InvalidObjectIdError,
  );
  assert.throws(() => parseObjectLinkTarget("short", "sha256"), InvalidObjectIdError);
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), fc.constantFrom("sha256", "sha512"), (s, alg) => {
      for (const f of [() => parseObjectLinkTarget(s, alg), () => fromHex(s)]) {
        try {
          f();
        } catch (e) {
          if (!(e instanceof InvalidObjectIdError)) throw e;
        }
      }
    }),
    { seed: 3, numRuns: 3000 },
  );
});

Deno.test("image object refs: every external file once, sorted walk; bad images are typed", () => {
  const a = fromHex(HEX64, 32);
  const b = new Uint8Array(32).fill(0xab);
  const image = composefsImage([b, a, b], { small: "inline data" });
  // f0=b, f1=a, f2=b: sorted walk order, deduplicated.
  assert.deepEqual(imageObjectRefs(image, "sha256"), [b, a]);
  assert.throws(() => imageObjectRefs(image, "sha512"), ImageInvalidError);
  assert.deepEqual(imageObjectRefs(composefsImage([]), "sha256"), []);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 20000 }), fc.nat(), (noise, at) => {
      // Random bytes and corrupted images: a typed error or a result, never a crash.
      const corrupt = image.slice();
      for (let i = 0; i < noise.length && i < 64; i++) {
        corrupt[(at + i * 131) % corrupt.length] ^= noise[i] | 1;
      }
      for (const bytes of [noise, corrupt]) {
        try {
          for (const id of imageObjectRefs(bytes, "sha256")) assert.equal(id.length, 32);
        } catch (e) {
          if (!(e instanceof ImageInvalidError)) throw e;
        }
      }
    }),
    { seed: 5, numRuns: 300 },
  );
});

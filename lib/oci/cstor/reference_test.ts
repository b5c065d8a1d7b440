import assert from "node:assert/strict";
import fc from "fast-check";
import {
  applyStoreSpec,
  CstorReferenceError,
  normalizeName,
  parseCstorReference,
} from "./reference.ts";
import type { StoreOptions } from "./storage_conf.ts";

const ID = "a".repeat(63) + "b";

Deno.test("reference: store specifiers", () => {
  assert.deepEqual(
    parseCstorReference("containers-storage:[vfs@/g+/r:vfs.imagestore=/x,a=b]x").store,
    {
      driver: "vfs",
      graphRoot: "/g",
      runRoot: "/r",
      options: ["vfs.imagestore=/x", "a=b"],
    },
  );
  assert.deepEqual(parseCstorReference("[/g]x").store, { graphRoot: "/g" });
  assert.deepEqual(parseCstorReference("[/g+/r]x").store, { graphRoot: "/g", runRoot: "/r" });
  for (const bad of ["[]x", "[@/g]x", "[overlay@]x", "[rel]x", "[/g+rel]x", "[/g", "[/g]"]) {
    assert.throws(() => parseCstorReference(bad), CstorReferenceError, bad);
  }
});

Deno.test("reference: ids and id prefixes", () => {
  assert.deepEqual(parseCstorReference(`@${ID}`).image, { kind: "id", id: ID });
  assert.deepEqual(parseCstorReference(`containers-storage:${ID}`).image, { kind: "id", id: ID });
  assert.deepEqual(parseCstorReference(`sha256:${ID}`).image, { kind: "id", id: ID });
  assert.deepEqual(parseCstorReference("@abc").image, { kind: "idPrefix", prefix: "abc" });
  const r = parseCstorReference("localhost/x:1@abcd");
  assert.equal(r.image.kind, "idPrefix");
  assert.deepEqual(r.image.kind === "idPrefix" && r.image.name?.repository, "localhost/x");
  assert.deepEqual(parseCstorReference("abc").image, {
    kind: "idPrefixOrName",
    prefix: "abc",
    name: { raw: "abc", repository: "docker.io/library/abc", tag: "latest" },
  });
  for (const bad of ["@ab", "@", "x@XYZ", "@sha256:" + ID]) {
    assert.throws(() => parseCstorReference(bad), CstorReferenceError, bad);
  }
});

Deno.test("reference: names are docker-normalised", () => {
  const n = (s: string) => normalizeName(s, s);
  assert.deepEqual(n("busybox"), {
    raw: "busybox",
    repository: "docker.io/library/busybox",
    tag: "latest",
  });
  assert.deepEqual(n("a/b:v1"), { raw: "a/b", repository: "docker.io/a/b", tag: "v1" });
  assert.deepEqual(n("localhost/test:v2"), {
    raw: "localhost/test",
    repository: "localhost/test",
    tag: "v2",
  });
  assert.deepEqual(n("quay.io:443/x/y"), {
    raw: "quay.io:443/x/y",
    repository: "quay.io:443/x/y",
    tag: "latest",
  });
  assert.deepEqual(n(`q.io/x@sha256:${ID}`), {
    raw: "q.io/x",
    repository: "q.io/x",
    digest: `sha256:${ID}`,
  });
  for (const bad of ["UPPER", "a//b", "x:", "x:-bad", "-x"]) {
    assert.throws(() => n(bad), CstorReferenceError, bad);
  }
});

Deno.test("reference: applyStoreSpec replaces the configured store", () => {
  const base: StoreOptions = {
    driver: "overlay",
    graphRoot: "/var/lib/containers/storage",
    runRoot: "/run/containers/storage",
    imageStores: ["/ro"],
    configFile: null,
    rootless: false,
  };
  assert.equal(applyStoreSpec(base, undefined), base);
  assert.deepEqual(applyStoreSpec(base, { driver: "vfs", graphRoot: "/g" }), {
    ...base,
    driver: "vfs",
    graphRoot: "/g",
    imageStores: [],
  });
  assert.equal(applyStoreSpec(base, { graphRoot: "/g" }).driver, null); // detected from /g
  assert.deepEqual(
    applyStoreSpec(base, { runRoot: "/r", options: ["imagestore=/i"] }).imageStores,
    ["/i"],
  );
});

Deno.test("reference: arbitrary input parses or throws CstorReferenceError (fast-check)", () => {
  const piece = fc.constantFrom(
    "[",
    "]",
    "@",
    "+",
    ":",
    "/",
    ",",
    "=",
    "a",
    "0",
    "f",
    "sha256",
    ID,
    "x.y",
    "-",
    "_",
    "overlay",
    "localhost",
  );
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 12 }).map((a) => a.join("")), (s) => {
      try {
        const r = parseCstorReference(s);
        assert.ok(r.image.kind.length > 0);
      } catch (e) {
        if (!(e instanceof CstorReferenceError)) throw e;
      }
    }),
    { seed: 3, numRuns: 3000 },
  );
});

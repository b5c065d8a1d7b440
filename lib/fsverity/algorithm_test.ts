import assert from "node:assert/strict";
import {
  algorithmFromKernelId,
  digestSize,
  formatAlgorithmName,
  InvalidAlgorithmError,
  kernelHashId,
  parseAlgorithmName,
} from "./algorithm.ts";

Deno.test("algorithm: sizes and kernel ids", () => {
  assert.equal(digestSize("sha256"), 32);
  assert.equal(digestSize("sha512"), 64);
  assert.equal(kernelHashId("sha256"), 1);
  assert.equal(kernelHashId("sha512"), 2);
  assert.equal(algorithmFromKernelId(1), "sha256");
  assert.equal(algorithmFromKernelId(2), "sha512");
  assert.equal(algorithmFromKernelId(0), undefined);
  assert.equal(algorithmFromKernelId(3), undefined);
});

Deno.test("algorithm: meta.json names round-trip", () => {
  for (const alg of ["sha256", "sha512"] as const) {
    assert.equal(parseAlgorithmName(formatAlgorithmName(alg)), alg);
  }
  assert.equal(formatAlgorithmName("sha512"), "fsverity-sha512-12");
  assert.equal(parseAlgorithmName("fsverity-sha256-12"), "sha256");
  assert.equal(parseAlgorithmName("fsverity-sha256-012"), "sha256"); // u8 parse accepts it
});

Deno.test("algorithm: rejects malformed names", () => {
  for (
    const bad of [
      "",
      "sha256-12",
      "fsverity-sha256",
      "fsverity-sha256-13",
      "fsverity-sha256-256",
      "fsverity-sha256-",
      "fsverity-sha256-x",
      "fsverity-sha1-12",
      "fsverity--12",
      "fsverity-sha256-12 ",
      "FSVERITY-sha256-12",
    ]
  ) {
    assert.throws(() => parseAlgorithmName(bad), InvalidAlgorithmError, bad);
  }
});

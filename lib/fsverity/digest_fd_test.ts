import assert from "node:assert/strict";
import { openPath } from "../../ffi/fs.ts";
import { fsverityDigestFd } from "./digest_fd.ts";
import { fsverityDigest } from "./hasher.ts";

const hex = (b: Uint8Array) => b.toHex();

/** Deterministic, incompressible-looking bytes (xorshift32). */
function noise(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  const words = new Uint32Array(out.buffer, 0, n >>> 2);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  for (let i = words.length * 4; i < n; i++) out[i] = i * 7;
  return out;
}

/** Run the fsverity-utils oracle over all files at once; map path → hex digest. */
async function oracle(alg: string, files: string[]): Promise<Map<string, string>> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("fsverity", {
      args: ["digest", `--hash-alg=${alg}`, "--block-size=4096", ...files],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    throw new Error("fsverity (Debian package fsverity) is required for this test", { cause: e });
  }
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const map = new Map<string, string>();
  for (const line of new TextDecoder().decode(out.stdout).trim().split("\n")) {
    const m = /^(sha256|sha512):([0-9a-f]+) (.+)$/.exec(line);
    assert.ok(m, `Unexpected fsverity output line "${line}"`);
    assert.equal(m[1], alg);
    map.set(m[3], m[2]);
  }
  return map;
}

const MiB = 1 << 20;
const SIZES = [
  0,
  1,
  4095,
  4096,
  4097,
  4096 * 128 - 1,
  4096 * 128,
  4096 * 128 + 1,
  4096 * 128 * 128 - 1,
  4096 * 128 * 128 + 1,
  160 * MiB + 12345, // "large": a 3-level sha256 tree, 4-level sha512 tree
];

Deno.test("fsverityDigestFd: matches `fsverity digest` for both algorithms", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cfs-fsverity-" });
  try {
    const big = noise(SIZES[SIZES.length - 1], 42);
    const files = SIZES.map((n) => `${dir}/f${n}`);
    for (let i = 0; i < SIZES.length; i++) {
      await Deno.writeFile(files[i], big.subarray(0, SIZES[i]));
    }
    for (const alg of ["sha256", "sha512"] as const) {
      const want = await oracle(alg, files);
      for (let i = 0; i < SIZES.length; i++) {
        using fd = openPath(files[i]);
        const got = hex(fsverityDigestFd(fd, alg));
        assert.equal(got, want.get(files[i]), `${alg} size ${SIZES[i]}`);
        if (SIZES[i] <= 4096 * 128 + 1) {
          assert.equal(hex(fsverityDigest(big.subarray(0, SIZES[i]), alg)), got);
        }
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

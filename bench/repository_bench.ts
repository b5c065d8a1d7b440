/**
 * Storing objects: `Repository.storeObjectFromFile` (copy path: read, hash, write an O_TMPFILE,
 * linkat) and many small `storeObject` calls, against what a script would do with the peer
 * tools: `cp` into a fresh file and `fsverity digest` it. Every iteration stores new content,
 * so nothing is "already present". Run: `deno bench -A bench/repository_bench.ts`
 *
 * @module
 */

import { openPath } from "../ffi/fs.ts";
import * as C from "../ffi/constants.ts";
import { Repository } from "../lib/repository/mod.ts";

/** 16 MiB: big enough that per-call overhead does not dominate, small enough for ~20 runs. */
const BIG = 16 * 1024 * 1024;
/** Small objects per iteration (think: a layer's many small files). */
const SMALL_COUNT = 500;
const SMALL_SIZE = 4000;
const RUNS = { n: 10, warmup: 2 };

const dir = await Deno.makeTempDir({ prefix: "cfs-repo-bench-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
const repo = await Repository.init(`${dir}/repo`, { algorithm: "sha256", insecure: true });
const big = new Uint8Array(BIG);
crypto.getRandomValues(big.subarray(0, 65536));
for (let off = 65536; off < BIG; off += 65536) big.copyWithin(off, 0, 65536);
let counter = 0;

function freshSource(): string {
  // A different first 8 bytes per iteration: a new object every time.
  new DataView(big.buffer).setFloat64(0, ++counter);
  const p = `${dir}/src-${counter}`;
  Deno.writeFileSync(p, big);
  return p;
}

Deno.bench("repository: storeObjectFromFile 16 MiB (copy + hash + link)", {
  group: "big",
  baseline: true,
  ...RUNS,
}, (b) => {
  const p = freshSource();
  b.start();
  using src = openPath(p, C.O_RDONLY);
  repo.storeObjectFromFile(src, { allowReflink: false });
  b.end();
  Deno.removeSync(p);
});

Deno.bench("peer: cp + fsverity digest 16 MiB", { group: "big", ...RUNS }, async (b) => {
  const p = freshSource();
  b.start();
  const cp = await new Deno.Command("cp", { args: [p, `${p}.copy`] }).output();
  const fv = await new Deno.Command("fsverity", {
    args: ["digest", "--hash-alg=sha256", "--block-size=4096", `${p}.copy`],
    stdout: "null",
  }).output();
  b.end();
  if (!cp.success || !fv.success) throw new Error("cp or fsverity failed");
  Deno.removeSync(p);
  Deno.removeSync(`${p}.copy`);
});

Deno.bench(`repository: storeObject x${SMALL_COUNT} (${SMALL_SIZE} B each)`, {
  group: "small",
  baseline: true,
  ...RUNS,
}, () => {
  const data = new Uint8Array(SMALL_SIZE);
  const dv = new DataView(data.buffer);
  dv.setFloat64(8, ++counter);
  for (let i = 0; i < SMALL_COUNT; i++) {
    dv.setUint32(0, i);
    repo.storeObject(data);
  }
});

Deno.bench(`peer: write + fsverity digest x${SMALL_COUNT} files (one fsverity call)`, {
  group: "small",
  ...RUNS,
}, async () => {
  const data = new Uint8Array(SMALL_SIZE);
  const dv = new DataView(data.buffer);
  dv.setFloat64(8, ++counter);
  const sub = `${dir}/small-${counter}`;
  Deno.mkdirSync(sub);
  const files: string[] = [];
  for (let i = 0; i < SMALL_COUNT; i++) {
    dv.setUint32(0, i);
    const p = `${sub}/${i}`;
    Deno.writeFileSync(p, data);
    files.push(p);
  }
  const fv = await new Deno.Command("fsverity", {
    args: ["digest", "--hash-alg=sha256", "--block-size=4096", ...files],
    stdout: "null",
  }).output();
  if (!fv.success) throw new Error("fsverity failed");
  Deno.removeSync(sub, { recursive: true });
});

/**
 * Child process for tests/repository_*_test.ts: opens or initializes a repository, or runs a
 * long import loop (objects, streams, refs, images) until done or killed.
 *
 * Usage: deno run … repository_writer_child.ts init|open-write|import PATH [SEED ITERATIONS]
 *
 * @module
 */

import { Repository } from "../lib/repository/repository.ts";
import { SplitstreamWriter } from "../lib/repository/splitstream.ts";
import { composefsImage } from "./repository_image_fixture.ts";

const [mode, path, seedArg, itersArg] = Deno.args;

/** Deterministic xorshift32 so a re-run with the same seed writes the same content. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function blob(next: () => number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i += 4) {
    const v = next();
    out[i] = v;
    out[i + 1] = v >>> 8;
    out[i + 2] = v >>> 16;
    out[i + 3] = v >>> 24;
  }
  return out;
}

try {
  if (mode === "init") {
    (await Repository.init(path, { algorithm: "sha256", insecure: true })).close();
  } else if (mode === "open-write") {
    (await Repository.open(path, { write: true })).close();
  } else if (mode === "import") {
    const seed = Number(seedArg);
    const iterations = Number(itersArg);
    const next = rng(seed);
    using repo = await Repository.open(path, { write: true });
    // Tell a killing parent that start-up is over: its random delay starts now.
    console.log("READY");
    for (let i = 0; i < iterations; i++) {
      const w = new SplitstreamWriter("sha256");
      const parts = 2 + (next() % 4);
      const ids: Uint8Array[] = [];
      for (let p = 0; p < parts; p++) {
        w.writeInline(blob(next, 64 + (next() % 512)));
        const size = 1000 + (next() % 60_000);
        const data = blob(next, size);
        let id: Uint8Array;
        if (p % 2 === 0) {
          using ow = repo.createObjectWriter();
          for (let off = 0; off < data.length; off += 65536) {
            ow.write(data.subarray(off, off + 65536));
          }
          id = ow.finish().id;
        } else id = repo.storeObject(data);
        w.writeExternal(id, size);
        ids.push(id);
      }
      const sid = repo.writeStream(`cid-${seed}-${i}`, w.finish(), `run/${seed}/${i}`);
      if (i % 3 === 0) {
        // An image that references this iteration's objects and the stream object itself.
        repo.writeImage(composefsImage([...ids, sid]), `img-${seed}-${i}`);
      }
    }
  } else {
    throw new Error(`Unknown mode "${mode}"`);
  }
  console.log("DONE");
} catch (e) {
  const err = e as Error & { flag?: string };
  console.log(JSON.stringify({ name: err.name, message: err.message, flag: err.flag }));
  Deno.exit(3);
}

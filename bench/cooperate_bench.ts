/**
 * What fairness costs a pull: the same in-process `pullImage` of a ~48 MB uncompressed image
 * (writeDemoImage, 2000 files up to 48 KiB) with `cooperate()` never yielding (the baseline),
 * with the default slice (10 ms: a ~70 µs turn through a no-op nonblocking FFI call every 10 ms
 * of import) and with a 1 ms slice. Each iteration pulls into a fresh repository; the setup is
 * not timed.
 *
 * Run: `deno bench -A bench/cooperate_bench.ts`.
 */

import { join } from "node:path";
import { Repository } from "../lib/repository/repository.ts";
import { pullImage } from "../lib/oci/pull.ts";
import { writeDemoImage } from "../lib/demo/demo_image.ts";
import { COOPERATIVE_SLICE_MS, cooperativeTurns, setCooperativeSlice } from "../ffi/event_loop.ts";

/** Big enough that the import spans many slices, small enough for a short benchmark. */
const IMAGE = { files: 2000, maxFileSize: 48 * 1024, gzip: false };
/** Iterations per case. */
const ITERATIONS = 8;

const tmp = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "cfs-cooperate-bench-" });
const layout = join(tmp, "layout");
await writeDemoImage(layout, "demo", IMAGE);
addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));

let serial = 0;
const reported = new Set<number>();

function pullCase(name: string, sliceMs: number, baseline: boolean): void {
  Deno.bench({
    group: "pull a 48 MB image in process",
    name,
    baseline,
    n: ITERATIONS,
    warmup: 1,
    async fn(b) {
      const dir = join(tmp, `repo-${serial++}`);
      using repo = await Repository.init(dir, { algorithm: "sha256", insecure: true });
      const previous = setCooperativeSlice(sliceMs);
      const turns = cooperativeTurns();
      try {
        b.start();
        await pullImage(repo, `oci:${layout}:demo`);
        b.end();
      } finally {
        setCooperativeSlice(previous);
      }
      if (!reported.has(sliceMs)) {
        reported.add(sliceMs);
        console.log(`${name}: ${cooperativeTurns() - turns} event-loop turns in one pull`);
      }
      await Deno.remove(dir, { recursive: true });
    },
  });
}

pullCase("never yield", Infinity, true);
pullCase(`yield every ${COOPERATIVE_SLICE_MS} ms (default)`, COOPERATIVE_SLICE_MS, false);
pullCase("yield every 1 ms", 1, false);

/**
 * Layer transfer through varlink (issue 8): GetLayer on one `cfs varlink` server process →
 * PutLayer on another, relayed by this process (`VarlinkRepositoryEndpoint` at both ends of
 * `copyImage`: only the pipe and the dirfds pass through us, the destination server reads the
 * source's objects directly), against the same `copyImage` in this process between two
 * `LocalRepositoryEndpoint`s. One image of ~120 MB (5000 files up to 48 KiB, uncompressed),
 * copied sha256 → sha512 and sha256 → sha256 into a fresh repository each iteration.
 *
 * The in-process sha256 → sha256 copy links each layer's closure and the composefs image
 * under their names (hardlinks here, nothing read); PutLayer does neither (the server copies
 * and hashes what a client sends, and FinalizeImage builds the EROFS), so that group has a
 * third case, the in-process copy with `verify` (stream, re-hash, rebuild) and hardlinks
 * refused, to compare copying with copying.
 * The first iteration of each case prints its object counters.
 *
 * Run: `deno bench -A bench/varlink_layer_bench.ts`.
 */

import { join } from "node:path";
import { Repository } from "../lib/repository/repository.ts";
import { pullImage } from "../lib/oci/pull.ts";
import { copyImage, type CopySummary } from "../lib/oci/copy.ts";
import {
  type LayerTransfer,
  LocalRepositoryEndpoint,
  type PutLayerOptions,
} from "../lib/oci/copy_endpoint.ts";
import { writeDemoImage } from "../lib/demo/demo_image.ts";
import { VarlinkRepositoryEndpoint } from "../lib/varlink/composefs_client.ts";
import type { HashAlgorithm } from "../lib/fsverity/algorithm.ts";

/** The image of issue 8: ~120 MB of file content in the base layer. */
const IMAGE = { files: 5000, maxFileSize: 48 * 1024, gzip: false };
/** Iterations per case: each copies ~120 MB, so a few are enough for a stable mean. */
const ITERATIONS = 4;

// /var/tmp: a real disk (a tmpfs /tmp would hold 120 MB per repository in memory).
const tmp = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "cfs-varlink-layer-bench-" });
const layout = join(tmp, "layout");
await writeDemoImage(layout, "demo", IMAGE);
const srcPath = join(tmp, "src");
{
  using repo = await Repository.init(srcPath, { algorithm: "sha256", insecure: true });
  await pullImage(repo, `oci:${layout}:demo`, { tag: "demo" });
}
const src = await Repository.open(srcPath);

// Two server processes: one serves the source, the other the destinations.
const cli = new URL("../cli.ts", import.meta.url).pathname;
const sockA = join(tmp, "a.sock");
const sockB = join(tmp, "b.sock");
const children = [sockA, sockB].map((sock) =>
  new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cli, "varlink", "--address", sock],
    stdout: "null",
    stderr: "inherit",
  }).spawn()
);
async function waitFor(path: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    try {
      await Deno.stat(path);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  throw new Error(`Child server did not create "${path}"`);
}
await waitFor(sockA);
await waitFor(sockB);
const remoteSrc = await VarlinkRepositoryEndpoint.open(sockA, srcPath);

addEventListener("unload", () => {
  remoteSrc.close();
  src.close();
  for (const c of children) c.kill("SIGTERM");
  Deno.removeSync(tmp, { recursive: true });
});

/** The in-process sink with hardlinks refused: stores objects the way PutLayer does. */
class CopyingEndpoint extends LocalRepositoryEndpoint {
  override putLayer(diffId: string, layer: LayerTransfer, opts: PutLayerOptions) {
    return super.putLayer(diffId, layer, { ...opts, allowHardlink: false });
  }
}

let serial = 0;
const reported = new Set<string>();

/** One timed copy into a fresh destination of `algorithm`; setup and cleanup are not timed. */
function copyCase(
  name: string,
  algorithm: HashAlgorithm,
  how: "remote" | "local" | "local-copying",
  baseline: boolean,
) {
  Deno.bench({
    group: `copy a 120 MB image sha256 → ${algorithm}`,
    name,
    baseline,
    n: ITERATIONS,
    warmup: 1,
    async fn(b) {
      const dstPath = join(tmp, `dst-${serial++}`);
      (await Repository.init(dstPath, { algorithm, insecure: true })).close();
      let summary: CopySummary;
      if (how === "remote") {
        using dst = await VarlinkRepositoryEndpoint.open(sockB, dstPath);
        b.start();
        summary = await copyImage(remoteSrc, dst, "demo");
        b.end();
      } else {
        using dst = await Repository.open(dstPath, { write: true });
        b.start();
        summary = await copyImage(
          new LocalRepositoryEndpoint(src),
          how === "local" ? new LocalRepositoryEndpoint(dst) : new CopyingEndpoint(dst),
          "demo",
          { verify: how === "local-copying" },
        );
        b.end();
      }
      if (summary.layersCopied !== 3) throw new Error(`Copied ${summary.layersCopied} layers`);
      if (!reported.has(`${name} ${algorithm}`)) {
        reported.add(`${name} ${algorithm}`);
        console.log(
          `${name} → ${algorithm}: ${summary.layersCopied} layers, ` +
            `${summary.objectsCopied} copied, ${summary.objectsHardlinked} hardlinked, ` +
            `${summary.objectsReflinked} reflinked`,
        );
      }
      await Deno.remove(dstPath, { recursive: true });
    },
  });
}

const LOCAL = "in-process copyImage (LocalRepositoryEndpoint)";
const REMOTE = "varlink GetLayer → PutLayer, two server processes";
copyCase(LOCAL, "sha512", "local", true);
copyCase(REMOTE, "sha512", "remote", false);
copyCase(LOCAL, "sha256", "local", true);
copyCase(`${LOCAL}, --verify, hardlinks refused`, "sha256", "local-copying", false);
copyCase(REMOTE, "sha256", "remote", false);

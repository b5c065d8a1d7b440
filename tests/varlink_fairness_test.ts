/**
 * Fairness of long imports: a pull (synchronous FFI work chained through microtasks) must give
 * the event loop a turn now and then (`cooperate()` in `ffi/event_loop.ts`), so timers fire and
 * a `cfs varlink` server keeps answering other connections while one of them pulls.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { Repository } from "../lib/repository/repository.ts";
import { pullImage } from "../lib/oci/pull.ts";
import { copyImage } from "../lib/oci/copy.ts";
import { LocalRepositoryEndpoint } from "../lib/oci/copy_endpoint.ts";
import { writeDemoImage } from "../lib/demo/demo_image.ts";
import { COOPERATIVE_SLICE_MS, cooperativeTurns } from "../ffi/event_loop.ts";
import { ComposefsClient, type PullFrame } from "../lib/varlink/composefs_client.ts";
import { tempDir } from "./_helpers.ts";

/** A multi-MB image (~48 MB of tar, mostly in the base layer): its import takes many slices. */
const BIG = { files: 2000, maxFileSize: 48 * 1024, gzip: false };

/**
 * Largest gap between two turns of the event loop tolerated during a layer import: the slice
 * plus headroom for one unit of work that cannot be split — a 1 MiB chunk, or the syncfs
 * before a layer is named, which takes ~100 ms on a loaded CI disk.
 */
const MAX_GAP_MS = COOPERATIVE_SLICE_MS + 250;

/** Timer ticks (every 5 ms) between the first "layer-start" and the last "layer-done" of `run`. */
async function ticksDuringImport(
  run: (onEvent: (e: { type: string }) => void) => Promise<unknown>,
): Promise<void> {
  let windowStart = -1;
  let windowEnd = -1;
  const ticks: number[] = [];
  const timer = setInterval(() => {
    if (windowStart >= 0 && windowEnd < 0) ticks.push(performance.now());
  }, 5);
  const turnsBefore = cooperativeTurns();
  try {
    await run((e) => {
      if (e.type === "layer-start" && windowStart < 0) windowStart = performance.now();
      if (e.type === "layer-done") windowEnd = performance.now();
    });
  } finally {
    clearInterval(timer);
  }
  const importMs = windowEnd - windowStart;
  assert.ok(
    importMs > 2 * COOPERATIVE_SLICE_MS,
    `the import took ${importMs.toFixed(0)} ms: too short to show anything`,
  );
  assert.ok(cooperativeTurns() > turnsBefore, "the import never yielded");
  assert.ok(ticks.length >= 2, `${ticks.length} timer ticks in a ${importMs.toFixed(0)} ms import`);
  const points = [windowStart, ...ticks, windowEnd];
  let maxGap = 0;
  for (let i = 1; i < points.length; i++) maxGap = Math.max(maxGap, points[i] - points[i - 1]);
  assert.ok(
    maxGap <= MAX_GAP_MS,
    `timers starved for ${maxGap.toFixed(0)} ms of a ${importMs.toFixed(0)} ms import`,
  );
}

Deno.test("pull and layer drain (copy, PutLayer's path): timers fire during the import", async () => {
  await using tmp = await tempDir();
  const layout = join(tmp.path, "layout");
  await writeDemoImage(layout, "big", BIG);
  using repo = await Repository.init(join(tmp.path, "repo"), {
    algorithm: "sha256",
    insecure: true,
  });
  await ticksDuringImport((onEvent) =>
    pullImage(repo, `oci:${layout}:big`, { tag: "big", onEvent })
  );
  // drainChunks (PutLayer, oci copy, containers-storage) fed by produceLayer (GetLayer).
  using dst = await Repository.init(join(tmp.path, "dst"), {
    algorithm: "sha512",
    insecure: true,
  });
  await ticksDuringImport((onEvent) =>
    copyImage(new LocalRepositoryEndpoint(repo), new LocalRepositoryEndpoint(dst), "big", {
      onEvent,
    })
  );
});

Deno.test("cfs varlink: GetInfo on a second connection answers while a Pull runs", async () => {
  await using tmp = await tempDir();
  const layout = join(tmp.path, "layout");
  await writeDemoImage(layout, "big", BIG);
  const repoPath = join(tmp.path, "repo");
  (await Repository.init(repoPath, { algorithm: "sha256", insecure: true })).close();
  const cli = new URL("../cli.ts", import.meta.url).pathname;
  const sock = join(tmp.path, "s.sock");
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cli, "varlink", "--address", sock],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let out: Deno.CommandOutput;
  try {
    for (let i = 0; i < 200; i++) {
      try {
        await Deno.stat(sock);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    using a = await ComposefsClient.connect(sock);
    const { handle } = await a.openRepository({ path: repoPath });
    // Frames as they arrive, with the arrival time.
    const frames: { at: number; frame: PullFrame }[] = [];
    let info: { at: number; features: string[] } | undefined;
    let infoCall: Promise<void> | undefined;
    for await (const frame of a.pull(handle, { image: `oci:${layout}:big`, name: "big" })) {
      frames.push({ at: performance.now(), frame });
      // The first progress frame: the base layer (most of the bytes) is being imported. Only
      // now connect and call GetInfo, so accepting, reading and answering all happen mid-pull.
      if (frame.progress && infoCall === undefined) {
        infoCall = (async () => {
          using b = await ComposefsClient.connect(sock);
          const features = await b.ociFeatures();
          info = { at: performance.now(), features };
        })();
      }
    }
    assert.ok(infoCall, "the Pull sent no progress frame");
    await infoCall;
    assert.ok(info);
    assert.deepEqual(info.features, ["splitdirfdstream-v0"]);
    const last = frames[frames.length - 1];
    assert.ok(last.frame.completed, "the last frame is the completed one");
    const after = frames.filter((f) => f.at > info!.at && !f.frame.completed);
    assert.ok(
      after.length > 0,
      `GetInfo answered ${(info.at - last.at).toFixed(0)} ms after the Pull's last frame, ` +
        `not while it ran (frames: ${frames.map((f) => Object.keys(f.frame)[0]).join(",")})`,
    );
    // The pull went on after the reply: its layer-done frames are still to come.
    assert.ok(after.some((f) => f.frame.done), "no layer finished after the GetInfo reply");
  } finally {
    child.kill("SIGTERM");
    out = await child.output();
  }
  // SIGTERM is how we stop it; any other end is a server failure worth its stderr.
  if (!out.success && out.signal !== "SIGTERM") {
    throw new Error(`cfs varlink failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`);
  }
});

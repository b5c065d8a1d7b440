/**
 * `demo [--dir DIR] [--json]`: the main job on embedded data (see lib/demo/run_demo.ts).
 *
 * @module
 */

import { runDemo } from "../demo/run_demo.ts";
import type { CommandContext } from "./command.ts";
import { formatBytes } from "./output.ts";

/** `demo`. */
export async function runDemoCommand(ctx: CommandContext): Promise<number | void> {
  const out = ctx.out;
  const report = await runDemo({
    dir: ctx.values.dir as string | undefined,
    onStep(s) {
      switch (s.type) {
        case "built":
          out.line(`built    ${s.layers}-layer OCI image ${s.manifestDigest} in ${s.layout}`);
          break;
        case "pulled":
          out.line(`pulled   into ${s.algorithm} repository (${s.seconds.toFixed(2)} s)`);
          break;
        case "copied": {
          const m = s.summary;
          out.line(
            `copied   ${m.algorithms.source} -> ${m.algorithms.destination}: ` +
              `${m.layersCopied} layers, ${formatBytes(m.bytes)}, objects ` +
              `${m.objectsReflinked} reflinked / ${m.objectsHardlinked} hardlinked / ` +
              `${m.objectsCopied} copied (${m.seconds.toFixed(2)} s)`,
          );
          break;
        }
        case "zerocopy-unavailable":
          out.line(`note     ${s.reason}; copied instead`);
          break;
        case "verified":
          out.line(`verified ${s.layers} layer diff_ids, fsck clean (${s.objects} objects)`);
          break;
      }
    },
  });
  out.line(
    `round trip sha256 -> sha512 -> sha256 reproduced identical streams: ${
      report.roundTripIdentical ? "yes" : "NO"
    }`,
  );
  out.result(report);
  return report.roundTripIdentical ? 0 : 1;
}

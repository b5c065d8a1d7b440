/**
 * `demo [--dir DIR] [--json]`: the main job on embedded data (see lib/demo/run_demo.ts).
 *
 * @module
 */

import { runDemo } from "../demo/run_demo.ts";
import type { CommandSpec } from "./command.ts";
import { formatBytes } from "./output.ts";

/** `demo`. */
export const demoCommand: CommandSpec = {
  words: ["demo"],
  summary: "Build a small OCI image, pull it, copy it sha256 -> sha512 -> sha256 and --zerocopy",
  help: "Runs on generated data; needs nothing but Deno. Every layer's diff_id is verified " +
    "and fsck runs after each step. With --dir the repositories are kept for inspection.",
  positionals: { min: 0, max: 0 },
  options: {
    dir: { type: "string", valueName: "DIR", description: "Work directory to keep" },
    json: { type: "boolean", description: "Print the report as JSON" },
  },
  async run(ctx) {
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
  },
};

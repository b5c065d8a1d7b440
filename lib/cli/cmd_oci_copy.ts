/**
 * `oci copy IMAGE --from SRC [--name NAME] [--zerocopy] [--json]`: the global repository
 * (`--repo`/`--user`/`--system`) is the destination, as composefs-rs decided.
 *
 * @module
 */

import { Repository } from "../repository/repository.ts";
import { type CopyEvent, copyImage, type CopySummary } from "../oci/copy.ts";
import type { FormatVersion } from "../erofs/format.ts";
import { type LayerSink, type LayerSource, LocalRepositoryEndpoint } from "../oci/copy_endpoint.ts";
import { VarlinkRepositoryEndpoint } from "../varlink/composefs_client.ts";
import type { CommandContext } from "./command.ts";
import { formatBytes, type Output } from "./output.ts";
import { resolveRepoPath } from "./repo_path.ts";
import { UsageError } from "./errors.ts";

function reporter(out: Output): (e: CopyEvent) => void {
  let total = 0;
  const short = (d: string) => d.slice(7, 19);
  return (e) => {
    switch (e.type) {
      case "start":
        total = e.layers;
        out.progress(`Copying ${e.image}: ${e.layers} layers`, true);
        break;
      case "layer-skipped":
        out.progress(`layer ${e.index + 1}/${total} ${short(e.diffId)}: already present`, true);
        break;
      case "layer-start":
        out.progress(`layer ${e.index + 1}/${total} ${short(e.diffId)}: 0 B`, true);
        break;
      case "layer-progress":
        out.progress(`layer ${e.index + 1}/${total} ${short(e.diffId)}: ${formatBytes(e.bytes)}`);
        break;
      case "layer-done":
        out.progress(
          `layer ${e.index + 1}/${total} ${short(e.diffId)}: ${formatBytes(e.bytes)} done`,
          true,
        );
        break;
      case "finalized":
        out.progressDone();
        break;
    }
  };
}

/** The text summary (cfsctl's lines, then our counters). */
export function copySummaryLines(s: CopySummary, from: string): string[] {
  return [
    `Copied image ${s.image} from ${from} to destination repo${
      s.tag ? `, tagged as ${s.tag}` : ""
    }`,
    `Manifest digest: ${s.manifestDigest}`,
    `Manifest verity: ${s.manifestVerity}`,
    `Config digest:   ${s.configDigest}`,
    `Config verity:   ${s.configVerity}`,
    `Layers: ${s.layersCopied} copied, ${s.layersSkipped} already present (${s.algorithms.source} -> ${s.algorithms.destination})`,
    `Objects: ${s.objectsReflinked} reflinked, ${s.objectsHardlinked} hardlinked, ${s.objectsCopied} copied, ${s.objectsAlreadyPresent} already present`,
    `Transferred ${formatBytes(s.bytes)} in ${s.seconds.toFixed(2)} s`,
  ];
}

/** `oci copy`. */
export async function runOciCopy(ctx: CommandContext): Promise<number | void> {
  const from = ctx.values.from as string | undefined;
  if (from === undefined) throw new UsageError("Missing --from SRC_REPO", "oci copy");
  if (ctx.global.hash !== undefined) {
    throw new UsageError(
      "--hash does not apply to oci copy: each side's algorithm comes from its meta.json",
      "oci copy",
    );
  }
  await using stack = new AsyncDisposableStack();
  // Either end may be a repository behind a varlink server (cfs varlink or cfsctl varlink).
  const fromVarlink = ctx.values["from-varlink"] as string | undefined;
  const toVarlink = ctx.values.varlink as string | undefined;
  let source: LayerSource;
  if (fromVarlink !== undefined) {
    source = stack.use(await VarlinkRepositoryEndpoint.open(fromVarlink, from));
  } else {
    source = new LocalRepositoryEndpoint(
      stack.use(await Repository.open(from, { write: false })),
    );
  }
  let sink: LayerSink;
  if (toVarlink !== undefined) {
    sink = stack.use(
      await VarlinkRepositoryEndpoint.open(toVarlink, resolveRepoPath(ctx.global)),
    );
  } else {
    sink = new LocalRepositoryEndpoint(
      stack.use(
        await Repository.open(resolveRepoPath(ctx.global), {
          write: true,
          insecure: ctx.global.insecure,
          requireVerity: ctx.global.requireVerity,
          noUpgrade: ctx.global.noUpgrade,
        }),
      ),
      // The composefs image written at finalize follows the global --erofs-version.
      { erofsVersion: ctx.global.erofsVersion as FormatVersion | undefined },
    );
  }
  const summary = await copyImage(
    source,
    sink,
    ctx.args[0],
    {
      name: ctx.values.name as string | undefined,
      zerocopy: ctx.values.zerocopy === true,
      verify: ctx.values.verify === true,
      onEvent: reporter(ctx.out),
    },
  );
  ctx.out.progressDone();
  for (const l of copySummaryLines(summary, from)) ctx.out.line(l);
  ctx.out.result(summary);
}

/**
 * `oci pull|images|inspect|tag|untag|layer|fsck` with cfsctl's names and output shapes
 * (cli-oci-cstor §2.3).
 *
 * @module
 */

import type { Repository } from "../repository/repository.ts";
import type { FormatVersion } from "../erofs/format.ts";
import { toHex } from "../repository/object_id.ts";
import type { CommandContext } from "./command.ts";
import { openRepoFromGlobal } from "./repo_path.ts";
import { UsageError } from "./errors.ts";
import { formatBytes, type Output } from "./output.ts";
import { type PullEvent, pullImage } from "../oci/pull.ts";
import {
  inspectImage,
  listImages,
  resolveImage,
  tagImage,
  untagImage,
} from "../oci/image_store.ts";
import { exportLayer, layerInfo } from "../oci/layer_export.ts";
import { ociFsck, ociFsckJson } from "../oci/oci_fsck.ts";
import { parsePlatform } from "../oci/platform.ts";
import { errorLine } from "./errors.ts";
import { isCstorSource, runCstorPull } from "./cmd_oci_pull_cstor.ts";

function openRepo(ctx: CommandContext, write: boolean): Promise<Repository> {
  return openRepoFromGlobal(ctx.global, { write });
}

function progressReporter(out: Output): (e: PullEvent) => void {
  let total = 0;
  return (e) => {
    switch (e.type) {
      case "manifest":
        total = e.layers;
        out.progress(`Importing ${e.layers} layers from ${e.manifestDigest}`, true);
        break;
      case "layer-start":
        out.progress(`layer ${e.index + 1}/${total} ${e.digest.slice(7, 19)}: 0 B`, true);
        break;
      case "layer-progress":
        out.progress(
          `layer ${e.index + 1}/${total} ${e.digest.slice(7, 19)}: ${formatBytes(e.read)} / ${
            formatBytes(e.size)
          }`,
        );
        break;
      case "layer-done":
        out.progress(`layer ${e.index + 1}/${total} ${e.digest.slice(7, 19)}: done`, true);
        break;
      case "layer-skipped":
        out.progress(
          `layer ${e.index + 1}/${total} ${e.digest.slice(7, 19)}: already present`,
          true,
        );
        break;
    }
  };
}

/** `oci pull SOURCE [NAME]`. */
export async function runOciPull(ctx: CommandContext): Promise<number | void> {
  const [source, name] = ctx.args;
  if (isCstorSource(source)) {
    return await runCstorPull(
      ctx,
      source,
      name,
      () => openRepo(ctx, true),
      progressReporter(ctx.out),
    );
  }
  const platform = typeof ctx.values.platform === "string"
    ? parsePlatform(ctx.values.platform)
    : undefined;
  using repo = await openRepo(ctx, true);
  const r = await pullImage(repo, source, {
    tag: name ?? source,
    platform,
    onEvent: progressReporter(ctx.out),
    ...(ctx.global.erofsVersion !== undefined
      ? { erofsVersion: ctx.global.erofsVersion as FormatVersion }
      : {}),
  });
  ctx.out.progressDone();
  const s = r.stats;
  const stored = s.objectsCopied + s.objectsReflinked + s.objectsHardlinked;
  ctx.out.line(`manifest ${r.manifestDigest}`);
  ctx.out.line(`config   ${r.configDigest}`);
  ctx.out.line(`verity   ${toHex(r.manifestVerity)}`);
  ctx.out.line(`tagged   ${r.tag}`);
  for (const i of r.images) ctx.out.line(`erofs    v${i.version} ${toHex(i.id)}`);
  if (r.skipped !== undefined) ctx.out.warn(`No composefs image generated: ${r.skipped}`);
  ctx.out.line(
    `objects  ${stored} stored, ${s.objectsAlreadyPresent} already present, ` +
      `${r.layers.filter((l) => l.skipped).length} layers skipped ` +
      `(${formatBytes(s.externalBytes)} external, ${formatBytes(s.inlineBytes)} inline)`,
  );
  ctx.out.result({
    manifest_digest: r.manifestDigest,
    config_digest: r.configDigest,
    manifest_verity: toHex(r.manifestVerity),
    config_verity: toHex(r.configVerity),
    tag: r.tag ?? null,
    layers: r.layers.map((l) => ({
      diff_id: l.diffId,
      verity: toHex(l.verity),
      skipped: l.skipped,
    })),
    stats: r.stats,
    composefs_images: r.images.map((i) => ({ version: i.version, id: toHex(i.id) })),
  });
}

/** `oci images`. */
export async function runOciImages(ctx: CommandContext): Promise<number | void> {
  using repo = await openRepo(ctx, false);
  const list = listImages(repo, (tag, e) => ctx.out.warn(`Skipping "${tag}": ${errorLine(e)}`));
  ctx.out.result({ images: list });
  if (list.length === 0) {
    ctx.out.line("No images found");
    return;
  }
  const rows = [["NAME", "DIGEST", "ARCH", "LAYERS", "REFS"]];
  for (const i of list) {
    rows.push([
      i.name,
      i.manifest_digest.replace(/^sha256:/, "").slice(0, 12),
      i.architecture || "artifact",
      String(i.layer_count),
      String(i.referrer_count),
    ]);
  }
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) ctx.out.line(r.map((v, c) => v.padEnd(w[c])).join("  ").trimEnd());
}

/** `oci inspect IMAGE`. */
export async function runOciInspect(ctx: CommandContext): Promise<number | void> {
  if (ctx.values.manifest && ctx.values.config) {
    throw new UsageError("--manifest and --config are mutually exclusive", "oci inspect");
  }
  using repo = await openRepo(ctx, false);
  if (ctx.values.manifest || ctx.values.config) {
    const img = resolveImage(repo, ctx.args[0]);
    const bytes = ctx.values.manifest ? img.manifestBytes : img.configBytes;
    ctx.out.raw(new TextDecoder().decode(bytes) + "\n");
    return;
  }
  ctx.out.raw(JSON.stringify(inspectImage(repo, ctx.args[0]), null, 2) + "\n");
}

/** `oci tag MANIFEST_DIGEST NAME`. */
export async function runOciTag(ctx: CommandContext): Promise<number | void> {
  const [digest, name] = ctx.args;
  using repo = await openRepo(ctx, true);
  tagImage(repo, digest.replace(/^@/, ""), name);
  ctx.out.line(`Tagged ${digest} as ${name}`);
}

/** `oci untag NAME`. */
export async function runOciUntag(ctx: CommandContext): Promise<number | void> {
  using repo = await openRepo(ctx, true);
  untagImage(repo, ctx.args[0]);
  ctx.out.line(`Removed tag ${ctx.args[0]}`);
}

/** `oci layer DIFF_ID`. */
export async function runOciLayer(ctx: CommandContext): Promise<number | void> {
  using repo = await openRepo(ctx, false);
  if (ctx.values.json) {
    ctx.out.result(await layerInfo(repo, ctx.args[0]));
    return;
  }
  if (ctx.out.stdout.isTerminal()) {
    throw new UsageError("Refusing to write a tar archive to a terminal", "oci layer");
  }
  const tar = exportLayer(repo, ctx.args[0]);
  await ctx.out.writeStream(tar);
}

/** `oci fsck [IMAGE]`. */
export async function runOciFsck(ctx: CommandContext): Promise<number | void> {
  using repo = await openRepo(ctx, false);
  const r = ociFsck(repo, ctx.args[0]);
  if (ctx.out.json) {
    ctx.out.result(ociFsckJson(r));
    return 0;
  }
  ctx.out.line(`Checked ${r.imagesChecked} images, ${r.imagesCorrupted} corrupted`);
  ctx.out.line(
    `Repository: ${r.repo.objectsChecked} objects, ${r.repo.streamsChecked} streams, ` +
      `${r.repo.errors.length} errors`,
  );
  for (const e of r.errors) ctx.out.line(e);
  for (const e of r.repo.errors) ctx.out.line(JSON.stringify(e));
  ctx.out.line(r.ok ? "OK" : "Errors found");
  return r.ok ? 0 : 1;
}

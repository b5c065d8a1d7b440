/**
 * `fsck [--json] [--metadata-only]` (cli-oci-cstor §2.2).
 *
 * @module
 */

import { formatFsckError, type FsckReport, fsckReportJson } from "../repository/fsck.ts";
import type { CommandContext } from "./command.ts";
import { openRepoFromGlobal } from "./repo_path.ts";

/** composefs-rs's `Display` for `FsckResult`, one line per entry. */
export function formatFsckReport(r: FsckReport): string[] {
  const lines: string[] = [];
  const metaError = r.errors.some((e) =>
    e.type === "metadata-parse-failed" || e.type === "metadata-algorithm-mismatch"
  );
  lines.push(`meta.json: ${metaError ? "error" : r.hasMetadata ? "ok" : "absent"}`);
  lines.push(`objects: ${r.objectsChecked - r.objectsCorrupted}/${r.objectsChecked} ok`);
  lines.push(`streams: ${r.streamsChecked - r.streamsCorrupted}/${r.streamsChecked} ok`);
  lines.push(`images: ${r.imagesChecked - r.imagesCorrupted}/${r.imagesChecked} ok`);
  if (r.brokenLinks > 0) lines.push(`broken symlinks: ${r.brokenLinks}`);
  if (r.missingObjects > 0) lines.push(`missing objects: ${r.missingObjects}`);
  if (r.errors.length === 0) lines.push("status: ok");
  else {
    lines.push(`status: ${r.errors.length} error(s)`);
    for (const e of r.errors) lines.push(`  - ${formatFsckError(e)}`);
  }
  return lines;
}

/** A failed integrity check (text mode exits 1). */
export class FsckFailedError extends Error {
  override name = "FsckFailedError";
  /** Number of findings. */
  readonly errors: number;
  constructor(errors: number) {
    super(`Repository integrity check failed (${errors} error(s))`);
    this.errors = errors;
  }
}

/** `fsck`. */
export async function runFsck(ctx: CommandContext): Promise<number | void> {
  using repo = await openRepoFromGlobal(ctx.global, { write: false });
  const report = repo.fsck({ metadataOnly: ctx.values["metadata-only"] === true });
  if (ctx.out.json) {
    ctx.out.result(fsckReportJson(report));
    return 0;
  }
  for (const l of formatFsckReport(report)) ctx.out.line(l);
  if (!report.ok) throw new FsckFailedError(report.errors.length);
  return 0;
}

/**
 * `gc [-n|--dry-run] [-r|--root NAME]… [--json]` (cli-oci-cstor §2.2).
 *
 * @module
 */

import type { CommandContext } from "./command.ts";
import { openRepoFromGlobal } from "./repo_path.ts";

/** `gc`. */
export async function runGc(ctx: CommandContext): Promise<number | void> {
  const dryRun = ctx.values["dry-run"] === true;
  const roots = (ctx.values.root as string[] | undefined) ?? [];
  using repo = await openRepoFromGlobal(ctx.global, { write: !dryRun });
  const r = repo.gc({ dryRun, roots });
  // Same shape as composefs-rs's varlink GcReply.
  ctx.out.result({
    result: {
      objects_removed: r.objectsRemoved,
      objects_bytes: r.objectsBytes,
      images_pruned: r.imagesPruned,
      streams_pruned: r.streamsPruned,
    },
    dry_run: dryRun,
  });
  if (dryRun) ctx.out.line("Dry run (no files deleted):");
  ctx.out.line(`Objects: ${r.objectsRemoved} removed (${r.objectsBytes} bytes)`);
  if (r.imagesPruned > 0 || r.streamsPruned > 0) {
    ctx.out.line(`Pruned symlinks: ${r.imagesPruned} images, ${r.streamsPruned} streams`);
  }
  return 0;
}

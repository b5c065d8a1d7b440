/**
 * Read-only repository commands: `cat NAME`, `images [--json] [--no-trunc]`,
 * `image-objects NAME` (cli-oci-cstor §2.2).
 *
 * @module
 */

import { toHex, toIdString } from "../repository/object_id.ts";
import type { CommandContext } from "./command.ts";
import { openRepoFromGlobal } from "./repo_path.ts";

/** Digest characters shown in the `images` table unless `--no-trunc`. */
const DIGEST_DISPLAY_LEN = 12;

/** `cat NAME`: the reassembled stream on stdout. */
export async function runCat(ctx: CommandContext): Promise<number | void> {
  using repo = await openRepoFromGlobal(ctx.global, { write: false });
  await ctx.out.writeStream(repo.catStream(ctx.args[0]));
  return 0;
}

/** `images`: named EROFS images. */
export async function runImages(ctx: CommandContext): Promise<number | void> {
  using repo = await openRepoFromGlobal(ctx.global, { write: false });
  const images = repo.listImages().map((i) => ({ name: i.name, digest: toHex(i.id) }));
  ctx.out.result({ images });
  if (images.length === 0) {
    ctx.out.line("No images found");
    return 0;
  }
  const rows = images.map((i) => [
    i.name,
    ctx.values["no-trunc"] ? i.digest : i.digest.slice(0, DIGEST_DISPLAY_LEN),
  ]);
  const w = Math.max(4, ...rows.map((r) => r[0].length));
  ctx.out.line(`${"NAME".padEnd(w)}  DIGEST`);
  for (const [n, d] of rows) ctx.out.line(`${n.padEnd(w)}  ${d}`);
  return 0;
}

/** `image-objects NAME`: the objects an image references, one `<alg>:<hex>` per line. */
export async function runImageObjects(ctx: CommandContext): Promise<number | void> {
  using repo = await openRepoFromGlobal(ctx.global, { write: false });
  for (const id of repo.imageObjects(ctx.args[0])) ctx.out.line(toIdString(id, repo.algorithm));
  return 0;
}

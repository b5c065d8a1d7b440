/**
 * Composefs image commands: `mount NAME MOUNTPOINT`, `oci mount IMAGE MOUNTPOINT`,
 * `oci compute-id IMAGE` and `oci dump IMAGE` (cli-oci-cstor §2.2–2.3).
 *
 * @module
 */

import type { FormatVersion } from "../erofs/format.ts";
import { writeDumpfile } from "../erofs/dumpfile.ts";
import { mountImage, requireMountPrivileges } from "../mount/composefs_mount.ts";
import { computeImageId, imageTree, linkedImageId } from "../oci/composefs_image.ts";
import { parseXattrFiltering, type XattrFiltering } from "../oci/merged_tree.ts";
import { toHex } from "../repository/object_id.ts";
import type { CommandContext } from "./command.ts";
import { UsageError } from "./errors.ts";
import { openRepoFromGlobal } from "./repo_path.ts";

function mountOpts(ctx: CommandContext, cmd: string) {
  const upperdir = ctx.values.upperdir as string | undefined;
  const workdir = ctx.values.workdir as string | undefined;
  if ((upperdir === undefined) !== (workdir === undefined)) {
    throw new UsageError("--upperdir and --workdir must be given together", cmd);
  }
  if (ctx.values["read-write"] === true && upperdir === undefined) {
    throw new UsageError("--read-write requires --upperdir", cmd);
  }
  const fuse = ctx.values.fuse as string | undefined;
  if (fuse !== undefined && fuse !== "auto" && fuse !== "no") {
    throw new UsageError(`--fuse ${fuse} is not supported (kernel mounts only)`, cmd);
  }
  return {
    ...(upperdir === undefined ? {} : { upperdir, workdir, readWrite: true }),
  };
}

function xattrsOf(ctx: CommandContext, cmd: string): XattrFiltering | undefined {
  const v = ctx.values.xattrs;
  if (typeof v !== "string") return undefined;
  try {
    return parseXattrFiltering(v);
  } catch (e) {
    throw new UsageError((e as Error).message, cmd, { cause: e });
  }
}

/** cfsctl names a manifest digest `sha256:HEX` in `oci mount`; our resolver wants `@`. */
function imageRef(ref: string): string {
  return ref.startsWith("sha256:") ? `@${ref}` : ref;
}

/** `mount NAME MOUNTPOINT`: a repository image (hex id or ref name). */
export async function runMount(ctx: CommandContext): Promise<number | void> {
  const opts = mountOpts(ctx, "mount");
  requireMountPrivileges();
  using repo = await openRepoFromGlobal(ctx.global, { write: false });
  mountImage(repo, ctx.args[0], ctx.args[1], opts);
  return 0;
}

/** `oci mount IMAGE MOUNTPOINT`: the composefs image linked from an OCI image's config. */
export async function runOciMount(ctx: CommandContext): Promise<number | void> {
  const opts = mountOpts(ctx, "oci mount");
  requireMountPrivileges();
  using repo = await openRepoFromGlobal(ctx.global, { write: false });
  const id = linkedImageId(repo, imageRef(ctx.args[0]), {
    erofsVersion: ctx.global.erofsVersion as FormatVersion | undefined,
  });
  mountImage(repo, toHex(id), ctx.args[1], opts);
  return 0;
}

/** `oci compute-id IMAGE`: the EROFS id, nothing stored. */
export async function runOciComputeId(ctx: CommandContext): Promise<number | void> {
  const xattrs = xattrsOf(ctx, "oci compute-id");
  using repo = await openRepoFromGlobal(ctx.global, { write: false });
  const id = computeImageId(repo, ctx.args[0], {
    xattrs,
    erofsVersion: ctx.global.erofsVersion as FormatVersion | undefined,
  });
  ctx.out.line(toHex(id));
  return 0;
}

/** `oci dump IMAGE`: the merged filesystem as a composefs dumpfile. */
export async function runOciDump(ctx: CommandContext): Promise<number | void> {
  const xattrs = xattrsOf(ctx, "oci dump");
  using repo = await openRepoFromGlobal(ctx.global, { write: false });
  ctx.out.raw(writeDumpfile(imageTree(repo, ctx.args[0], { xattrs })));
  return 0;
}

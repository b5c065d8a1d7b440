/**
 * Directory-tree → composefs commands (cli-oci-cstor §2.2): `compute-id PATH`,
 * `create-dumpfile PATH` and `create-image PATH [IMAGE_NAME]`.
 *
 * Like cfsctl, the tree is read with hardlinks tracked, then (unless
 * `--no-propagate-usr-to-root`) `transform_for_oci` runs: the root takes `/usr`'s metadata, `/run`
 * is emptied and xattrs are filtered by `--xattrs`.
 *
 * @module
 */

import {
  type HashAlgorithm,
  InvalidAlgorithmError,
  parseAlgorithmName,
} from "../fsverity/algorithm.ts";
import { writeDumpfile } from "../erofs/dumpfile.ts";
import type { FormatVersion } from "../erofs/format.ts";
import { imageId } from "../erofs/image_id.ts";
import { scanDirectory } from "../erofs/scan.ts";
import { transformForOci, type XattrFiltering } from "../erofs/oci_transform.ts";
import type { Directory } from "../erofs/tree.ts";
import { writeErofs } from "../erofs/writer.ts";
import { toHex, toIdString } from "../repository/object_id.ts";
import type { CommandContext } from "./command.ts";
import { UsageError } from "./errors.ts";
import { openRepoFromGlobal } from "./repo_path.ts";

/** Without a repository cfsctl uses `--hash`, defaulting to sha512. */
const DEFAULT_ALGORITHM: HashAlgorithm = "sha512";
/** The EROFS format when neither `--erofs-version` nor a repository says otherwise. */
const DEFAULT_VERSION: FormatVersion = 1;

function algorithmOf(ctx: CommandContext, words: string): HashAlgorithm {
  const h = ctx.global.hash;
  if (h === undefined) return DEFAULT_ALGORITHM;
  try {
    return parseAlgorithmName(h.startsWith("fsverity-") ? h : `fsverity-${h}-12`);
  } catch (e) {
    if (e instanceof InvalidAlgorithmError) throw new UsageError(e.message, words, { cause: e });
    throw e;
  }
}

function versionOf(ctx: CommandContext, words: string, fallback: number): FormatVersion {
  const v = ctx.global.erofsVersion ?? fallback;
  if (v !== 0 && v !== 1 && v !== 2) {
    throw new UsageError(`--erofs-version must be 0, 1 or 2, not "${v}"`, words);
  }
  return v;
}

function loadTree(
  ctx: CommandContext,
  words: string,
  algorithm: HashAlgorithm,
  storeFile?: Parameters<typeof scanDirectory>[1]["storeFile"],
): Directory {
  if (ctx.values.bootable) {
    throw new UsageError("--bootable is not supported yet (needs the SELinux relabel)", words);
  }
  const mode = (ctx.values.xattrs as string | undefined) ?? "allowlist-only";
  if (mode !== "allowlist-only" && mode !== "keep-user-xattrs") {
    throw new UsageError(
      `--xattrs must be allowlist-only or keep-user-xattrs, not "${mode}"`,
      words,
    );
  }
  const root = scanDirectory(ctx.args[0], { algorithm, storeFile });
  if (!ctx.values["no-propagate-usr-to-root"]) transformForOci(root, mode as XattrFiltering);
  return root;
}

/** `compute-id PATH`: the EROFS image id of a directory tree, nothing stored. */
export function runComputeId(ctx: CommandContext): Promise<number | void> {
  const alg = algorithmOf(ctx, "compute-id");
  const version = versionOf(ctx, "compute-id", DEFAULT_VERSION);
  const root = loadTree(ctx, "compute-id", alg);
  ctx.out.line(toHex(imageId(writeErofs(root, { version }), alg)));
  return Promise.resolve(0);
}

/** `create-dumpfile PATH`: the composefs dumpfile of a directory tree on stdout. */
export function runCreateDumpfile(ctx: CommandContext): Promise<number | void> {
  const root = loadTree(ctx, "create-dumpfile", algorithmOf(ctx, "create-dumpfile"));
  ctx.out.raw(writeDumpfile(root));
  return Promise.resolve(0);
}

/** `create-image PATH [IMAGE_NAME]`: store the tree's objects and its EROFS image. */
export async function runCreateImage(ctx: CommandContext): Promise<number | void> {
  using repo = await openRepoFromGlobal(ctx.global, { write: true });
  const version = versionOf(ctx, "create-image", repo.meta.erofsFormats.default);
  const root = loadTree(
    ctx,
    "create-image",
    repo.algorithm,
    (fd) => repo.storeObjectFromFile(fd).id,
  );
  const id = repo.writeImage(writeErofs(root, { version }), ctx.args[1]);
  ctx.out.line(toIdString(id, repo.algorithm));
  return 0;
}

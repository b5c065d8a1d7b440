/**
 * `init [PATH]`: create a repository (cli-oci-cstor §2.2).
 *
 * @module
 */

import {
  formatAlgorithmName,
  InvalidAlgorithmError,
  parseAlgorithmName,
} from "../fsverity/algorithm.ts";
import type { ErofsFormatVersion } from "../repository/meta.ts";
import { Repository } from "../repository/repository.ts";
import { MetadataMissingError } from "../repository/errors.ts";
import { isErrno } from "../../ffi/errno.ts";
import type { CommandContext } from "./command.ts";
import { UsageError } from "./errors.ts";
import { resolveRepoPath } from "./repo_path.ts";

/** cfsctl's default algorithm for `init` (composefs-rs's library default is sha256). */
const DEFAULT_ALGORITHM = "fsverity-sha512-12";
/** EROFS format written into meta.json when `--erofs-version` is not given. */
const DEFAULT_EROFS_VERSION: ErofsFormatVersion = 1;

/** `init [PATH]`. */
export async function runInit(ctx: CommandContext): Promise<number> {
  const path = ctx.args[0] ?? resolveRepoPath(ctx.global);
  const algName = (ctx.values.algorithm as string | undefined) ?? DEFAULT_ALGORITHM;
  let algorithm;
  try {
    algorithm = parseAlgorithmName(algName);
  } catch (e) {
    if (e instanceof InvalidAlgorithmError) throw new UsageError(e.message, "init", { cause: e });
    throw e;
  }
  const insecure = ctx.values.insecure === true;
  const erofsVersion = (ctx.global.erofsVersion ?? DEFAULT_EROFS_VERSION) as ErofsFormatVersion;
  if (ctx.values["reset-metadata"]) await Repository.resetMetadata(path);
  if (ctx.values.ensure) {
    try {
      const { repository, upgraded } = await Repository.openDetailed(path, {
        write: true,
        insecure,
      });
      repository.close();
      ctx.out.line(
        upgraded
          ? `Upgraded legacy repository at ${path}`
          : `Repository already initialized at ${path} (existing configuration preserved)`,
      );
      return 0;
    } catch (e) {
      const absent = e instanceof MetadataMissingError ||
        isErrno(e, "ENOENT");
      if (!absent) throw e;
    }
  }
  const { repository, created } = await Repository.initDetailed(path, {
    algorithm,
    insecure,
    erofsFormats: { default: erofsVersion },
  });
  repository.close();
  if (created) {
    ctx.out.line(`Initialized composefs repository at ${path}`);
    ctx.out.line(`  algorithm: ${formatAlgorithmName(algorithm)}`);
    ctx.out.line(`  verity:    ${insecure ? "not required (insecure)" : "required"}`);
  } else {
    ctx.out.line(`Repository already initialized at ${path}`);
  }
  return 0;
}

/**
 * Which repository a command works on, from the global flags, as cfsctl decides it
 * (cli-oci-cstor §1): `--repo PATH`, else `--system` → `/sysroot/composefs`, else `--user` →
 * `$HOME/.var/lib/composefs`; with none of them root gets the system path, others the user path.
 *
 * @module
 */

import { Repository } from "../repository/repository.ts";
import { AlgorithmMismatchError } from "../repository/errors.ts";
import { formatAlgorithmName } from "../fsverity/algorithm.ts";
import type { GlobalOptions } from "./command.ts";
import { UsageError } from "./errors.ts";

/** The system repository (`--system`, and the default for root). */
export const SYSTEM_REPO_PATH = "/sysroot/composefs";
/** The user repository below `$HOME` (`--user`, and the default for non-root). */
export const USER_REPO_SUBPATH = ".var/lib/composefs";

/** What {@link resolveRepoPath} reads from the process (injectable for tests). */
export interface RepoPathEnv {
  /** `$HOME`. */
  home?: string;
  /** Effective uid (`null` where unknown). */
  uid: number | null;
}

function processEnv(): RepoPathEnv {
  return { home: Deno.env.get("HOME"), uid: Deno.uid() };
}

/** The repository path selected by the global flags. */
export function resolveRepoPath(g: GlobalOptions, env: RepoPathEnv = processEnv()): string {
  if (g.repo !== undefined) return g.repo;
  const user = () => {
    if (!env.home) throw new UsageError("$HOME is not set: use --repo PATH or --system");
    return `${env.home.replace(/\/+$/, "")}/${USER_REPO_SUBPATH}`;
  };
  if (g.system) return SYSTEM_REPO_PATH;
  if (g.user) return user();
  return env.uid === 0 ? SYSTEM_REPO_PATH : user();
}

/**
 * Open the repository the global flags select, honouring `--insecure`, `--require-verity`,
 * `--no-upgrade` and checking `--hash` against `meta.json`.
 */
export async function openRepoFromGlobal(
  g: GlobalOptions,
  opts: { write: boolean },
): Promise<Repository> {
  const repo = await Repository.open(resolveRepoPath(g), {
    write: opts.write,
    insecure: g.insecure,
    requireVerity: g.requireVerity,
    noUpgrade: g.noUpgrade,
  });
  if (g.hash !== undefined && g.hash !== repo.algorithm) {
    const configured = formatAlgorithmName(repo.algorithm);
    repo.close();
    throw new AlgorithmMismatchError(configured, `--hash ${g.hash}`);
  }
  return repo;
}

/**
 * The shape of a CLI command and the context it runs in.
 *
 * @module
 */

import type { Output } from "./output.ts";

/** One option of a command, in `node:util` parseArgs terms plus help text. */
export interface OptionSpec {
  /** `string` takes a value; `boolean` is a switch. */
  type: "string" | "boolean";
  /** One-letter alias. */
  short?: string;
  /** May be repeated (values collected into an array). */
  multiple?: boolean;
  /** Placeholder shown in help, e.g. `PATH`. */
  valueName?: string;
  /** Help text. */
  description: string;
}

/** Global options (before or after the command words), as cfsctl spells them. */
export interface GlobalOptions {
  /** `--repo PATH`. */
  repo?: string;
  /** `--user`: `$HOME/.var/lib/composefs`. */
  user?: boolean;
  /** `--system`: `/sysroot/composefs`. */
  system?: boolean;
  /** `--hash sha256|sha512`: only confirms the repository's algorithm. */
  hash?: string;
  /** `--insecure`: do not require fs-verity. */
  insecure?: boolean;
  /** `--require-verity`. */
  requireVerity?: boolean;
  /** `--no-upgrade`. */
  noUpgrade?: boolean;
  /** `--erofs-version 0|1|2`. */
  erofsVersion?: number;
}

/** What a command's `run` receives. */
export interface CommandContext {
  /** Positional arguments after the command words. */
  args: string[];
  /** Parsed command options by long name. */
  values: Record<string, string | boolean | string[] | undefined>;
  /** Parsed global options. */
  global: GlobalOptions;
  /** Where results and progress go. */
  out: Output;
}

/** A leaf command: `words` is its path in the tree, e.g. `["oci", "pull"]`. */
export interface CommandSpec {
  /** Path in the command tree. */
  words: string[];
  /** One-line summary for the command list. */
  summary: string;
  /** Positional synopsis, e.g. `SOURCE [NAME]`. */
  synopsis?: string;
  /** Longer help text. */
  help?: string;
  /** Minimum and maximum number of positionals. */
  positionals: { min: number; max: number };
  /** Command options. `--json` is declared by commands that support it. */
  options?: Record<string, OptionSpec>;
  /** Run; resolves to the exit code (default 0). Throw UsageError for usage problems. */
  run(ctx: CommandContext): Promise<number | void>;
}

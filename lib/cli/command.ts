/**
 * The shape of a CLI command and the context it runs in.
 *
 * A command is split in two: its {@link CommandSpec} (words, help, options: what `--help` and
 * argument parsing need, a few hundred bytes of data) and its implementation, which the spec
 * {@link CommandSpec.load | loads} with a dynamic `import()` only when the command runs. So
 * `cfs --help` and every command load only what they use, not the whole library.
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

/** What a command's implementation receives. */
export interface CommandContext {
  /** The command words joined by spaces, e.g. `oci pull` (for usage errors). */
  command: string;
  /** Positional arguments after the command words. */
  args: string[];
  /** Parsed command options by long name. */
  values: Record<string, string | boolean | string[] | undefined>;
  /** Parsed global options. */
  global: GlobalOptions;
  /** Where results and progress go. */
  out: Output;
}

/** A command's implementation: resolves to the exit code (default 0). */
export type CommandRun = (ctx: CommandContext) => Promise<number | void>;

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
  /**
   * Import the implementation (a dynamic `import()`: nothing of it loads before the command
   * runs). It throws UsageError for usage problems.
   */
  load(): Promise<CommandRun>;
}

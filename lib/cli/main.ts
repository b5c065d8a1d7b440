/**
 * The command tree: `cfs [GLOBAL FLAGS] <group> <command> [ARGS]`, with cfsctl's names.
 *
 * @module
 */

import type { CommandSpec, GlobalOptions, OptionSpec } from "./command.ts";
import { errorLine, errorToJson, EXIT, UsageError } from "./errors.ts";
import { denoSink, Output, stringifyJson } from "./output.ts";
import { COMMANDS } from "./commands.ts";

/** The program name shown in help and errors. */
export const PROGRAM = "cfs";
/** The version printed by `--version`. */
export const VERSION = "0.1.0";

const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  repo: {
    type: "string",
    valueName: "PATH",
    description: "Repository path (for `oci copy`: the destination)",
  },
  user: { type: "boolean", description: "Use $HOME/.var/lib/composefs" },
  system: { type: "boolean", description: "Use /sysroot/composefs" },
  hash: {
    type: "string",
    valueName: "ALG",
    description: "Confirm the repository algorithm (sha256|sha512)",
  },
  insecure: { type: "boolean", description: "Do not require fs-verity" },
  "require-verity": {
    type: "boolean",
    description: "Fail unless the repository requires fs-verity",
  },
  "no-upgrade": { type: "boolean", description: "Do not upgrade repositories that lack meta.json" },
  "erofs-version": { type: "string", valueName: "0|1|2", description: "EROFS format for this run" },
  varlink: {
    type: "string",
    valueName: "ADDRESS",
    description: "Reach the repository through a varlink server (for `oci copy`: the destination)",
  },
};

const HELP_OPTION: Record<string, OptionSpec> = {
  help: { type: "boolean", short: "h", description: "Show help" },
};

function optionTable(opts: Record<string, OptionSpec>): string {
  const rows = Object.entries(opts).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : "    "}--${name}${
      o.type === "string" ? ` ${o.valueName ?? "VALUE"}` : ""
    }`;
    return [flag, o.description];
  });
  const w = Math.max(0, ...rows.map((r) => r[0].length));
  return rows.map(([f, d]) => `  ${f.padEnd(w)}  ${d}`).join("\n");
}

function commandsUnder(prefix: string[]): CommandSpec[] {
  return COMMANDS.filter((c) =>
    prefix.every((w, i) => c.words[i] === w) && c.words.length > prefix.length
  );
}

function groupHelp(prefix: string[]): string {
  const cmds = commandsUnder(prefix);
  const w = Math.max(0, ...cmds.map((c) => c.words.slice(prefix.length).join(" ").length));
  const lines = cmds.map((c) =>
    `  ${c.words.slice(prefix.length).join(" ").padEnd(w)}  ${c.summary}`
  );
  return [
    `Usage: ${PROGRAM} [GLOBAL OPTIONS] ${[...prefix, "<command>"].join(" ")} [ARGS]`,
    "",
    "Commands:",
    ...lines,
    "",
    "Global options:",
    optionTable({
      ...GLOBAL_OPTIONS,
      ...HELP_OPTION,
      version: { type: "boolean", description: "Show version" },
    }),
  ].join("\n") + "\n";
}

function commandHelp(c: CommandSpec): string {
  return [
    `Usage: ${PROGRAM} [GLOBAL OPTIONS] ${c.words.join(" ")}${
      c.options && Object.keys(c.options).length ? " [OPTIONS]" : ""
    }${c.synopsis ? " " + c.synopsis : ""}`,
    "",
    c.summary,
    ...(c.help ? ["", c.help] : []),
    "",
    "Options:",
    optionTable({ ...(c.options ?? {}), ...HELP_OPTION }),
    "",
    "Global options:",
    optionTable(GLOBAL_OPTIONS),
  ].join("\n") + "\n";
}

function toParseArgs(opts: Record<string, OptionSpec>) {
  const out: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> =
    {};
  for (const [k, o] of Object.entries(opts)) {
    out[k] = {
      type: o.type,
      ...(o.short ? { short: o.short } : {}),
      ...(o.multiple ? { multiple: true } : {}),
    };
  }
  return out;
}

function globalsFrom(values: Record<string, unknown>, cmd: string): GlobalOptions {
  const g: GlobalOptions = {
    repo: values.repo as string | undefined,
    user: values.user as boolean | undefined,
    system: values.system as boolean | undefined,
    hash: values.hash as string | undefined,
    insecure: values.insecure as boolean | undefined,
    requireVerity: values["require-verity"] as boolean | undefined,
    noUpgrade: values["no-upgrade"] as boolean | undefined,
  };
  if ([g.repo !== undefined, g.user, g.system].filter(Boolean).length > 1) {
    throw new UsageError("--repo, --user and --system are mutually exclusive", cmd);
  }
  if (g.hash !== undefined && g.hash !== "sha256" && g.hash !== "sha512") {
    throw new UsageError(`Invalid --hash "${g.hash}": expected sha256 or sha512`, cmd);
  }
  const ev = values["erofs-version"];
  if (ev !== undefined) {
    if (ev !== "0" && ev !== "1" && ev !== "2") {
      throw new UsageError(`Invalid --erofs-version "${ev}": expected 0, 1 or 2`, cmd);
    }
    g.erofsVersion = Number(ev);
  }
  return g;
}

/** Where `runCli` writes; defaults to the process's stdout/stderr. */
export interface RunCliOptions {
  /** Output to use (tests pass buffers). */
  output?: Output;
}

/**
 * Run the CLI with `argv` (without the program name) and resolve to the exit code.
 * Never calls `Deno.exit`.
 */
export async function runCli(argv: string[], opts: RunCliOptions = {}): Promise<number> {
  // No arguments but socket-activated (varlinkctl exec:, a systemd unit): serve varlink, as
  // cfsctl's pre-parse shortcut does (spec varlink-api §3.1).
  if (argv.length === 0 && Deno.env.get("LISTEN_FDS") !== undefined) argv = ["varlink"];
  const out = opts.output ?? new Output(denoSink(Deno.stdout), denoSink(Deno.stderr));
  let wantJson = argv.includes("--json");
  let cmdName = "";
  try {
    // 1. Walk the tree: leading global flags, then command words.
    const words: string[] = [];
    let i = 0;
    const globalValueFlags = new Set(
      Object.entries(GLOBAL_OPTIONS).filter(([, o]) => o.type === "string").map(([k]) => `--${k}`),
    );
    const rest: string[] = [];
    let leaf: CommandSpec | undefined;
    for (; i < argv.length; i++) {
      const a = argv[i];
      if (a.startsWith("-")) {
        rest.push(a);
        if (globalValueFlags.has(a) && i + 1 < argv.length) rest.push(argv[++i]);
        continue;
      }
      const next = [...words, a];
      leaf = COMMANDS.find((c) =>
        c.words.length === next.length && c.words.every((w, j) => w === next[j])
      );
      if (leaf) {
        words.push(a);
        i++;
        break;
      }
      if (commandsUnder(next).length > 0) {
        words.push(a);
        continue;
      }
      throw new UsageError(
        `Unknown command "${next.join(" ")}"`,
        words.join(" "),
      );
    }
    cmdName = words.join(" ");
    rest.push(...argv.slice(i));
    if (!leaf) {
      if (rest.includes("--version")) {
        out.raw(`${PROGRAM} ${VERSION}\n`);
        return EXIT.OK;
      }
      const help = groupHelp(words);
      if (rest.includes("--help") || rest.includes("-h")) {
        out.raw(help);
        return EXIT.OK;
      }
      out.stderr.write(help);
      throw new UsageError(
        words.length ? `Missing command after "${cmdName}"` : "Missing command",
        cmdName,
      );
    }
    // 2. Parse the leaf's options together with the global ones.
    const options = { ...GLOBAL_OPTIONS, ...HELP_OPTION, ...(leaf.options ?? {}) };
    // node:util is imported here, not at the top: loading Deno's Node compatibility layer costs
    // ~14 ms, which `cfs --help` (a group's help needs no option parsing) should not pay.
    const { parseArgs } = await import("node:util");
    let parsed;
    try {
      parsed = parseArgs({
        args: rest,
        options: toParseArgs(options),
        strict: true,
        allowPositionals: true,
      });
    } catch (e) {
      throw new UsageError(
        (e as Error).message.split("\n")[0].replace(/\. To specify.*$/, ""),
        cmdName,
        { cause: e },
      );
    }
    if (parsed.values.help) {
      out.raw(commandHelp(leaf));
      return EXIT.OK;
    }
    const { min, max } = leaf.positionals;
    if (parsed.positionals.length < min) {
      throw new UsageError(
        `Missing argument: expected ${leaf.synopsis ?? `${min} argument(s)`}`,
        cmdName,
      );
    }
    if (parsed.positionals.length > max) {
      throw new UsageError(`Unexpected argument "${parsed.positionals[max]}"`, cmdName);
    }
    wantJson = parsed.values.json === true;
    out.json = wantJson;
    const run = await leaf.load();
    const code = await run({
      command: cmdName,
      args: parsed.positionals,
      values: parsed.values as Record<string, string | boolean | string[] | undefined>,
      global: globalsFrom(parsed.values, cmdName),
      out,
    });
    return code ?? EXIT.OK;
  } catch (e) {
    out.progressDone();
    const usage = e instanceof UsageError;
    const hint = usage ? ` (see: ${PROGRAM} ${cmdName ? cmdName + " " : ""}--help)` : "";
    out.stderr.write(`${PROGRAM}: error: ${errorLine(e)}${hint}\n`);
    if (wantJson) out.stdout.write(stringifyJson({ error: errorToJson(e) }) + "\n");
    return usage ? EXIT.USAGE : EXIT.FAILURE;
  }
}

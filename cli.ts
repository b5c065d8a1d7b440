/**
 * The `cfs` command line: composefs repositories and OCI images, cfsctl's command names.
 *
 * ```sh
 * deno run -A cli.ts --repo /var/tmp/repo init --algorithm fsverity-sha256-12
 * ```
 *
 * @module
 */

import { runCli } from "./lib/cli/main.ts";

export { runCli };

if (import.meta.main) {
  Deno.exitCode = await runCli(Deno.args);
}

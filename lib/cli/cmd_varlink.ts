/**
 * `varlink [--address PATH]` (also `oci varlink`): serve `org.composefs.Repository` and
 * `org.composefs.Oci`. Without `--address` the socket comes from systemd socket activation
 * (fd 3): a listening socket is served until SIGTERM/SIGINT; a connected one (`varlinkctl
 * exec:`) is served alone and the command exits when it closes. Logs go to stderr only: under
 * `exec:` stdout may be watched by the parent.
 *
 * @module
 */

import { createComposefsService } from "../varlink/composefs_service.ts";
import { serveActivated, VarlinkServer } from "../varlink/server.ts";
import type { CommandContext } from "./command.ts";
import { UsageError } from "./errors.ts";

/** Signals that stop a listening server cleanly. */
const STOP_SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM"];

/** `varlink` and its alias `oci varlink`. */
export async function runVarlink(ctx: CommandContext): Promise<number> {
  const log = (m: string) => ctx.out.stderr.write(`cfs varlink: ${m}\n`);
  using svc = createComposefsService({
    insecure: ctx.global.insecure,
    requireVerity: ctx.global.requireVerity,
    noUpgrade: ctx.global.noUpgrade,
    log,
  });
  const server = new VarlinkServer(svc.service, {
    log,
    trustedUids: ctx.values["trust-any-uid"] === true ? "any" : undefined,
  });
  const address = ctx.values.address as string | undefined;
  let served: Promise<void>;
  if (address !== undefined) {
    served = server.listen(address.startsWith("unix:") ? address.slice(5) : address).served;
  } else {
    const act = serveActivated(server);
    if (act === undefined) {
      throw new UsageError("no --address given and not socket-activated", ctx.command);
    }
    served = act.served;
    if (act.mode === "connected") served = served.then(() => server.close());
  }
  const stop = () => void server.close();
  for (const s of STOP_SIGNALS) Deno.addSignalListener(s, stop);
  try {
    await served;
  } finally {
    for (const s of STOP_SIGNALS) Deno.removeSignalListener(s, stop);
    await server.close();
  }
  return 0;
}

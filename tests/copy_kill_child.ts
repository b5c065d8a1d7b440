/**
 * Child process for tests/oci_copy_closure_test.ts: runs a same-algorithm `oci copy` and
 * SIGKILLs itself at a chosen step — the N-th object imported, or the N-th name written —
 * so a kill lands exactly where the test wants it, through the real copy code.
 *
 * Usage: deno run -A copy_kill_child.ts SRC DST object|name N
 *
 * @module
 */

import { Repository } from "../lib/repository/repository.ts";
import { copyImage } from "../lib/oci/copy.ts";
import { LocalRepositoryEndpoint } from "../lib/oci/copy_endpoint.ts";

const [src, dst, where, nArg] = Deno.args;
const n = Number(nArg);
let calls = 0;
const proto = Repository.prototype;
function killAt<K extends "importTrustedObject" | "linkStreamObject" | "linkImageObject">(
  name: K,
): void {
  const original = proto[name] as (...args: unknown[]) => unknown;
  (proto as unknown as Record<string, unknown>)[name] = function (
    this: Repository,
    ...args: unknown[]
  ) {
    if (++calls === n) Deno.kill(Deno.pid, "SIGKILL");
    return original.apply(this, args);
  };
}
if (where === "object") killAt("importTrustedObject");
else {
  // Names: layer streams, the composefs image, config and manifest streams.
  killAt("linkStreamObject");
  killAt("linkImageObject");
}

using from = await Repository.open(src, { write: false });
using to = await Repository.open(dst, { write: true });
await copyImage(new LocalRepositoryEndpoint(from), new LocalRepositoryEndpoint(to), "demo");
// Reaching this line means the kill point was past the end of the copy.
console.log("completed");

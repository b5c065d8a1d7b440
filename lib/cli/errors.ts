/**
 * CLI error kinds: usage errors exit 2, everything else exits 1.
 *
 * @module
 */

/** A wrong command line: unknown command or flag, missing or extra argument. Exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
  /** The command path the error belongs to (for the help hint), e.g. `oci pull`. */
  readonly command: string;
  constructor(message: string, command = "", options?: ErrorOptions) {
    super(message, options);
    this.command = command;
  }
}

/** Exit codes (DESIGN 10). */
export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2 } as const;

/** Plain JSON view of an error: name, message, own enumerable structured fields, cause chain. */
export function errorToJson(e: unknown): Record<string, unknown> {
  if (!(e instanceof Error)) return { name: "Error", message: String(e) };
  const out: Record<string, unknown> = { name: e.name, message: e.message };
  for (const [k, v] of Object.entries(e)) {
    if (k === "name" || k === "message" || k === "cause" || k === "stack") continue;
    if (typeof v === "bigint") out[k] = v.toString();
    else if (v instanceof Uint8Array) out[k] = v.toHex();
    else if (v === undefined || typeof v === "function") continue;
    else out[k] = v;
  }
  if (e.cause !== undefined) out.cause = errorToJson(e.cause);
  return out;
}

/** One clear line: the message, then each distinct cause message after a colon. */
export function errorLine(e: unknown): string {
  const parts: string[] = [];
  let cur: unknown = e;
  for (let depth = 0; cur !== undefined && depth < 8; depth++) {
    const msg = cur instanceof Error ? cur.message : String(cur);
    if (!parts.some((p) => p.includes(msg))) parts.push(msg);
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return parts.join(": ");
}

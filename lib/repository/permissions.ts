/**
 * Deno permission checks for the repository writer (DESIGN 7). `--allow-ffi` bypasses Deno's
 * read/write scopes, so the repository asks `Deno.permissions.query` itself before it touches
 * anything, and afterwards works only through its directory fd.
 *
 * @module
 */

import { RepositoryPermissionError } from "./errors.ts";

/** Throw {@link RepositoryPermissionError} unless `access` to `path` is granted. */
export async function requirePermission(path: string, access: "read" | "write"): Promise<void> {
  const status = await Deno.permissions.query({ name: access, path });
  if (status.state !== "granted") throw new RepositoryPermissionError(path, access);
}

/**
 * cfs-deno: composefs's OCI storage stack for Deno — composefs repositories, OCI images,
 * the splitdirfdstream layer transport and the varlink APIs, byte-compatible with composefs-rs.
 *
 * ```ts
 * import { ErrnoError } from "@cfs-deno/cfs";
 * ```
 *
 * @module
 */

export { ErrnoError } from "./ffi/errno.ts";

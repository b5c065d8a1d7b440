/**
 * The composefs varlink service as `cfs varlink` serves it: `org.composefs.Repository` and
 * `org.composefs.Oci` sharing one server-wide handle table, plus `org.varlink.service`.
 *
 * @module
 */

import { HandleTable } from "./handles.ts";
import { repositoryInterface, type RepositoryOpenDefaults } from "./repository_service.ts";
import { MAX_PRODUCERS, ociInterface } from "./oci_service.ts";
import { ProducerPool } from "./producer_pool.ts";
import { VarlinkService, type VarlinkServiceOptions } from "./service.ts";

/** Identification of our server in `org.varlink.service.GetInfo` (spec §1.8). */
export const COMPOSEFS_SERVICE_INFO = {
  vendor: "org.composefs",
  product: "cfsctl",
  version: "0.9.0",
  url: "https://github.com/composefs/composefs-rs",
} as const;

/** Options of {@link createComposefsService}. */
export interface ComposefsServiceOptions extends RepositoryOpenDefaults, VarlinkServiceOptions {
  /** Diagnostics sink (never stdout). */
  log?: (message: string) => void;
  /** Most GetLayer producers alive at once (default `MAX_PRODUCERS`, 64). */
  maxProducers?: number;
}

/**
 * A {@link VarlinkService} with both composefs interfaces. Dispose the returned handle table
 * to close every repository the clients opened, or the whole object to also stop live
 * GetLayer producers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createComposefsService } from "./composefs_service.ts";
 * using svc = createComposefsService();
 * assert.deepEqual(svc.service.interfaceNames(), [
 *   "org.composefs.Repository",
 *   "org.composefs.Oci",
 *   "org.varlink.service",
 * ]);
 * ```
 */
export function createComposefsService(
  options: ComposefsServiceOptions = {},
): { service: VarlinkService; handles: HandleTable } & Disposable {
  const handles = new HandleTable();
  const service = new VarlinkService(COMPOSEFS_SERVICE_INFO, options);
  service.add(repositoryInterface(handles, options));
  const producers = new ProducerPool(options.maxProducers ?? MAX_PRODUCERS);
  service.add(ociInterface(handles, { log: options.log, producers }));
  return {
    service,
    handles,
    [Symbol.dispose]: () => {
      // Live GetLayer producers first: they hold dups of repository directories.
      producers[Symbol.dispose]();
      handles[Symbol.dispose]();
    },
  };
}

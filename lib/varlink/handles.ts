/**
 * Repository handles of the composefs varlink server (spec §2.1): opaque integers from a
 * server-wide counter starting at 1, never reused, usable from any connection, dropped only by
 * `CloseRepository`. They are not capabilities: anyone who can connect can guess them, so the
 * socket's permissions are the access control (spec §5).
 *
 * @module
 */

import type { Repository } from "../repository/repository.ts";
import type { JsonValue } from "./protocol.ts";

/** Open repositories by handle. */
export class HandleTable implements Disposable {
  #next = 1;
  readonly #repos = new Map<number, Repository>();

  /** Register an open repository; the table owns it from now on. Returns its handle. */
  add(repo: Repository): number {
    const h = this.#next++;
    this.#repos.set(h, repo);
    return h;
  }

  /** The repository of `handle` (any JSON value: non-integers are never valid handles). */
  get(handle: JsonValue | undefined): Repository | undefined {
    return typeof handle === "number" ? this.#repos.get(handle) : undefined;
  }

  /** Close and forget `handle`; false when it is unknown. */
  close(handle: JsonValue | undefined): boolean {
    const repo = this.get(handle);
    if (repo === undefined) return false;
    this.#repos.delete(handle as number);
    repo.close();
    return true;
  }

  /** Number of open handles. */
  get size(): number {
    return this.#repos.size;
  }

  /** Close every repository. */
  [Symbol.dispose](): void {
    for (const r of this.#repos.values()) r.close();
    this.#repos.clear();
  }
}

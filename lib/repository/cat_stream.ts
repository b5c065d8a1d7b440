/**
 * A stored splitstream's reassembled bytes as a Web stream: inline data and the external
 * objects it references, in order, one object open at a time.
 *
 * @module
 */

import { pread } from "../../ffi/fs.ts";
import type { OwnedFd } from "../../ffi/owned_fd.ts";
import type { Splitstream } from "./splitstream.ts";

/** Read size from external objects. */
const READ_CHUNK = 1 << 20;

/**
 * The bytes `parsed` stands for; `openObject` opens (and verifies) each external object.
 * Pull-driven (highWaterMark 0): nothing is read before the consumer asks.
 */
export function catSplitstream(
  parsed: Splitstream,
  openObject: (id: Uint8Array) => OwnedFd,
): ReadableStream<Uint8Array> {
  const chunks = parsed.chunks()[Symbol.iterator]();
  let cur: OwnedFd | undefined;
  let off = 0;
  const buf = new Uint8Array(READ_CHUNK);
  return new ReadableStream<Uint8Array>({
    pull: (ctl) => {
      try {
        for (;;) {
          if (cur) {
            const n = pread(cur, buf, off);
            if (n > 0) {
              off += n;
              ctl.enqueue(buf.slice(0, n));
              return;
            }
            cur.close();
            cur = undefined;
          }
          const next = chunks.next();
          if (next.done) {
            ctl.close();
            return;
          }
          const c = next.value;
          if ("inline" in c) {
            if (c.inline.length === 0) continue;
            ctl.enqueue(c.inline);
            return;
          }
          cur = openObject(c.external);
          off = 0;
        }
      } catch (e) {
        cur?.close();
        cur = undefined;
        chunks.return?.();
        throw e;
      }
    },
    cancel: () => {
      cur?.close();
      cur = undefined;
      chunks.return?.();
    },
  }, { highWaterMark: 0 });
}

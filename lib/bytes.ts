/**
 * Byte-array helpers shared by the codecs (std's `bytes/concat`, which JSR would give us).
 *
 * @module
 */

/** Concatenate `parts` into one new array (always a copy, never a view of a part). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * Real composefs EROFS images for repository tests: one external file per given object ID
 * (plus optional inline files), written by the project's EROFS writer.
 *
 * @module
 */

import { Directory, Leaf, makeStat } from "../lib/erofs/tree.ts";
import { writeErofs } from "../lib/erofs/writer.ts";

/** An image whose files `f0`, `f1`, … are external objects `ids`; `inline` adds small files. */
export function composefsImage(ids: Uint8Array[], inline: Record<string, string> = {}): Uint8Array {
  const root = new Directory(makeStat({ mode: 0o755 }));
  ids.forEach((digest, i) => {
    root.entries.set(
      `f${i}`,
      new Leaf(makeStat({ mode: 0o644 }), {
        kind: "regular",
        content: { kind: "external", digest, size: 4096 + i },
      }),
    );
  });
  for (const [name, text] of Object.entries(inline)) {
    root.entries.set(
      name,
      new Leaf(makeStat({ mode: 0o644 }), {
        kind: "regular",
        content: { kind: "inline", data: new TextEncoder().encode(text) },
      }),
    );
  }
  return writeErofs(root, { version: 1 });
}

/**
 * EROFS generation for a debootstrap-sized tree: the dumpfile of `/usr/include` (about 8 700
 * entries, read with our directory scan, sha256 object ids) turned into a V1 image by our
 * writer and by C `mkcomposefs --min-version=1 --from-file` (composefs 1.0.8). Both include
 * parsing the dumpfile and writing the image file; C also pays its process start-up, so a
 * third entry measures the C tool on an empty dumpfile (its fixed cost).
 *
 * Run: `deno bench -A bench/erofs_bench.ts`.
 *
 * Measured here (2 shared cores, other engineers' jobs running, 2026-11-28), avg per run:
 * C 51.7–65.3 ms; ours parse + write + file 88.6–190 ms (ratio 1.5–2.9 depending on load,
 * typically ≈ 2); our writer alone 40–68 ms (below C's whole run). The spread is V8
 * young-generation GC under CPU contention: `--v8-flags=--max-semi-space-size=32` narrows it.
 */

import { join } from "node:path";
import { parseDumpfile, writeDumpfile } from "../lib/erofs/dumpfile.ts";
import { scanDirectory } from "../lib/erofs/scan.ts";
import { writeErofs } from "../lib/erofs/writer.ts";

const SOURCE = Deno.env.get("CFS_EROFS_BENCH_TREE") ?? "/usr/include";
const MKCOMPOSEFS = join(
  Deno.env.get("CFS_SID_TOOLS") ?? "/var/tmp/cfs-sid-tools",
  "bin/mkcomposefs",
);

const tmp = await Deno.makeTempDir({ prefix: "cfs-erofs-bench-" });
addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));
const dumpPath = join(tmp, "tree.dump");
const emptyPath = join(tmp, "empty.dump");
const text = writeDumpfile(scanDirectory(SOURCE, { algorithm: "sha256" }));
Deno.writeTextFileSync(dumpPath, text);
Deno.writeTextFileSync(emptyPath, "/ 0 40755 2 0 0 0 0.0 - - -\n");
const tree = parseDumpfile(text);
console.error(`${SOURCE}: ${text.split("\n").length - 1} entries`);

function mkcomposefs(input: string, out: string) {
  const r = new Deno.Command(MKCOMPOSEFS, {
    args: ["--min-version=1", "--from-file", input, out],
    stdout: "null",
    stderr: "piped",
  }).outputSync();
  if (!r.success) throw new Error(`mkcomposefs failed: ${new TextDecoder().decode(r.stderr)}`);
}

// The C image of the same dumpfile must equal ours, or the comparison means nothing.
mkcomposefs(dumpPath, join(tmp, "c.img"));
const c = Deno.readFileSync(join(tmp, "c.img"));
const ours = writeErofs(tree, { version: 1 });
if (c.length !== ours.length || c.some((b, i) => b !== ours[i])) {
  throw new Error("Our V1 image differs from mkcomposefs's");
}

Deno.bench("mkcomposefs --min-version=1 --from-file (C, process)", {
  group: "erofs",
  baseline: true,
}, () => {
  mkcomposefs(dumpPath, join(tmp, "c.img"));
});

Deno.bench("parseDumpfile + writeErofs V1 + write file (ours)", { group: "erofs" }, () => {
  const root = parseDumpfile(Deno.readTextFileSync(dumpPath));
  Deno.writeFileSync(join(tmp, "ours.img"), writeErofs(root, { version: 1 }));
});

Deno.bench("writeErofs V1 only (ours, tree in memory)", { group: "erofs" }, () => {
  writeErofs(tree, { version: 1 });
});

Deno.bench("mkcomposefs on an empty dumpfile (C start-up cost)", { group: "erofs" }, () => {
  mkcomposefs(emptyPath, join(tmp, "empty.img"));
});

/**
 * fs-verity digests of every regular file of a real tree (default `/usr/lib/x86_64-linux-gnu`,
 * ≈ 660 MB in ≈ 2300 files here; override with `CFS_BENCH_TREE`): our `fsverityDigestFd`
 * against fsverity-utils' `fsverity digest --block-size=4096` over the same files, sha256 and
 * sha512. The tree is read once first, so both sides hash from a warm page cache, and the
 * first fsverity run cross-checks every digest. Run: `deno bench -A bench/fsverity_bench.ts`
 *
 * @module
 */

import { openPath } from "../ffi/fs.ts";
import { fsverityDigestFd, type HashAlgorithm } from "../lib/fsverity/mod.ts";

const TREE = Deno.env.get("CFS_BENCH_TREE") ?? "/usr/lib/x86_64-linux-gnu";
/** One pass over the whole tree takes about a second: a few runs are enough. */
const RUNS = { n: 3, warmup: 1 };
/** Files per `fsverity digest` invocation (keeps argv well below ARG_MAX). */
const BATCH = 500;

async function regularFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else if (e.isFile) {
        try {
          using f = openPath(p);
          void f;
          out.push(p);
        } catch {
          // unreadable file: leave it out of both sides
        }
      }
    }
  };
  await walk(root);
  return out.sort();
}

const files = await regularFiles(TREE);
let bytes = 0;
for (const f of files) bytes += (await Deno.stat(f)).size;
console.error(`${TREE}: ${files.length} files, ${(bytes / 1e6).toFixed(0)} MB`);

const hex = (b: Uint8Array) => b.toHex();

function ours(alg: HashAlgorithm): Map<string, string> {
  const m = new Map<string, string>();
  for (const f of files) {
    using fd = openPath(f);
    m.set(f, hex(fsverityDigestFd(fd, alg)));
  }
  return m;
}

async function tool(alg: HashAlgorithm): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for (let i = 0; i < files.length; i += BATCH) {
    const out = await new Deno.Command("fsverity", {
      args: ["digest", `--hash-alg=${alg}`, "--block-size=4096", ...files.slice(i, i + BATCH)],
      stdout: "piped",
    }).output();
    if (!out.success) throw new Error(`fsverity digest failed with ${out.code}`);
    for (const line of new TextDecoder().decode(out.stdout).trimEnd().split("\n")) {
      const sp = line.indexOf(" ");
      m.set(line.slice(sp + 1), line.slice(line.indexOf(":") + 1, sp));
    }
  }
  return m;
}

const checked = new Set<HashAlgorithm>();

for (const alg of ["sha256", "sha512"] as const) {
  Deno.bench({
    name: `fsverityDigestFd ${alg}`,
    group: `tree ${alg}`,
    baseline: true,
    ...RUNS,
  }, () => {
    ours(alg);
  });
  Deno.bench({ name: `fsverity digest ${alg}`, group: `tree ${alg}`, ...RUNS }, async () => {
    const want = await tool(alg);
    if (!checked.has(alg)) {
      checked.add(alg);
      const got = ours(alg);
      for (const [f, d] of want) {
        if (got.get(f) !== d) throw new Error(`Digest mismatch for "${f}" (${alg})`);
      }
      if (want.size !== files.length) throw new Error(`fsverity printed ${want.size} digests`);
    }
  });
}

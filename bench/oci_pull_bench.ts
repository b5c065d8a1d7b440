/**
 * `oci pull oci:…` of a debootstrap-sized image (≈120 MB, 5000+ files from /usr, one gzip
 * layer built with GNU tar + umoci) against the peer tools doing comparable work on the same
 * layout: `skopeo copy oci:… containers-storage:[vfs@…]` (verifies and extracts the layer)
 * and `tar -xzf` of the layer blob. Each iteration starts from an empty destination.
 *
 * Run: deno bench -A bench/oci_pull_bench.ts
 */

import { Repository } from "../lib/repository/repository.ts";
import { pullImage } from "../lib/oci/pull.ts";

/** Target uncompressed size of the image (a minimal debootstrap is about this big). */
const TARGET_BYTES = 120 * 1024 * 1024;
/** Source trees the files are taken from, in order. */
const SOURCES = ["/usr/share", "/usr/bin"];

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

async function buildImage(
  root: string,
): Promise<{ layout: string; layerBlob: string; files: number }> {
  const list: string[] = [];
  let total = 0;
  const walk = async (dir: string): Promise<boolean> => {
    const entries = [];
    for await (const e of Deno.readDir(dir)) entries.push(e);
    entries.sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory) {
        if (await walk(p)) return true;
      } else if (e.isFile) {
        const st = await Deno.stat(p);
        list.push(p.slice(1));
        total += st.size;
        if (total >= TARGET_BYTES) return true;
      }
    }
    return false;
  };
  for (const s of SOURCES) if (await walk(s)) break;
  await Deno.writeTextFile(`${root}/files`, list.join("\n") + "\n");
  await run("tar", ["-C", "/", "--format=pax", "-cf", `${root}/layer.tar`, "-T", `${root}/files`]);
  const layout = `${root}/oci`;
  await run("umoci", ["init", "--layout", layout]);
  await run("umoci", ["new", "--image", `${layout}:base`]);
  await run("umoci", [
    "raw",
    "add-layer",
    "--image",
    `${layout}:base`,
    "--tag",
    "img",
    `${root}/layer.tar`,
  ]);
  const index = JSON.parse(await Deno.readTextFile(`${layout}/index.json`));
  const m = index.manifests.find((d: { annotations?: Record<string, string> }) =>
    d.annotations?.["org.opencontainers.image.ref.name"] === "img"
  );
  const manifest = JSON.parse(
    await Deno.readTextFile(`${layout}/blobs/sha256/${m.digest.slice(7)}`),
  );
  const layer = manifest.layers[manifest.layers.length - 1].digest.slice(7);
  return { layout, layerBlob: `${layout}/blobs/sha256/${layer}`, files: list.length };
}

const root = await Deno.makeTempDir({ prefix: "cfs-oci-bench-" });
const img = await buildImage(root);
console.error(
  `image: ${img.files} files, ${(TARGET_BYTES / 1048576).toFixed(0)} MB, layer blob ${
    ((await Deno.stat(img.layerBlob)).size / 1048576).toFixed(1)
  } MB gzip`,
);
let iter = 0;
let peakRssDelta = 0;

Deno.bench(
  { name: "cfs oci pull oci:", group: "pull", baseline: true, n: 3, warmup: 1 },
  async () => {
    const dir = `${root}/repo-${iter++}`;
    const rss0 = Deno.memoryUsage().rss;
    {
      using repo = await Repository.init(dir, { algorithm: "sha256", insecure: true });
      await pullImage(repo, `oci:${img.layout}:img`, { tag: "img" });
    }
    peakRssDelta = Math.max(peakRssDelta, Deno.memoryUsage().rss - rss0);
    await Deno.remove(dir, { recursive: true });
  },
);

Deno.bench(
  { name: "skopeo copy oci: containers-storage:[vfs]", group: "pull", n: 3, warmup: 1 },
  async () => {
    const dir = `${root}/cs-${iter++}`;
    await run("skopeo", [
      "copy",
      "-q",
      `oci:${img.layout}:img`,
      `containers-storage:[vfs@${dir}/root+${dir}/run]localhost/bench:img`,
    ]);
    await Deno.remove(dir, { recursive: true });
  },
);

Deno.bench({ name: "tar -xzf layer", group: "pull", n: 3, warmup: 1 }, async () => {
  const dir = `${root}/x-${iter++}`;
  await Deno.mkdir(dir);
  await run("tar", ["-xzf", img.layerBlob, "-C", dir]);
  await Deno.remove(dir, { recursive: true });
});

globalThis.addEventListener("unload", () => {
  console.error(`cfs pull: RSS grew by at most ${(peakRssDelta / 1048576).toFixed(1)} MiB`);
  Deno.removeSync(root, { recursive: true });
});

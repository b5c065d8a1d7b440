/**
 * Memory stays bounded whatever the layer size: a child process pulls an image whose single
 * layer holds a 384 MiB file, and its peak RSS (VmHWM) stays far below the layer size.
 */

import { ok } from "node:assert/strict";
import { sh } from "./oci_fixtures.ts";

/** Size of the one file in the layer. */
const FILE_SIZE = 384 * 1024 * 1024;
/** Peak RSS allowed for the pulling process (Deno itself needs ~60-100 MiB). */
const MAX_PEAK_RSS = 200 * 1024 * 1024;

const CHILD = `
import { Repository } from "${new URL("../lib/repository/repository.ts", import.meta.url)}";
import { pullImage } from "${new URL("../lib/oci/pull.ts", import.meta.url)}";
const [layout, repoPath] = Deno.args;
using repo = await Repository.init(repoPath, { algorithm: "sha256", insecure: true });
const r = await pullImage(repo, "oci:" + layout + ":big", { tag: "big" });
const hwm = Deno.readTextFileSync("/proc/self/status").match(/VmHWM:\\s+(\\d+) kB/)[1];
console.log(JSON.stringify({ peak: Number(hwm) * 1024, external: r.stats.externalBytes }));
`;

Deno.test("oci pull: a 384 MiB layer is imported with bounded memory", async () => {
  const root = await Deno.makeTempDir({ prefix: "cfs-oci-mem-" });
  try {
    await Deno.mkdir(`${root}/src/usr`, { recursive: true });
    await sh("truncate", ["-s", String(FILE_SIZE), `${root}/src/usr/zeros`]);
    await sh("tar", ["-C", `${root}/src`, "-cf", `${root}/layer.tar`, "usr"]);
    await sh("umoci", ["init", "--layout", `${root}/oci`]);
    await sh("umoci", ["new", "--image", `${root}/oci:base`]);
    await sh("umoci", [
      "raw",
      "add-layer",
      "--image",
      `${root}/oci:base`,
      "--tag",
      "big",
      `${root}/layer.tar`,
    ]);
    await Deno.remove(`${root}/layer.tar`);
    await Deno.remove(`${root}/src`, { recursive: true });
    await Deno.writeTextFile(`${root}/child.ts`, CHILD);
    const out = JSON.parse(
      await sh(Deno.execPath(), ["run", "-A", `${root}/child.ts`, `${root}/oci`, `${root}/repo`]),
    );
    ok(out.external === FILE_SIZE, `external bytes ${out.external}`);
    console.log(
      `peak RSS ${(out.peak / 1048576).toFixed(0)} MiB for a ${FILE_SIZE / 1048576} MiB layer`,
    );
    ok(
      out.peak < MAX_PEAK_RSS,
      `peak RSS ${(out.peak / 1048576).toFixed(0)} MiB for a ${FILE_SIZE / 1048576} MiB layer`,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

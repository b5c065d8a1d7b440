/**
 * `oci copy` against the copy tools it replaces, side by side in one run, on one
 * ≈120 MB / 5000-file image (the demo generator at scale):
 *
 * - xfs (loop-mounted, reflink=1): `oci copy --zerocopy` (reflinks) vs
 *   `cp -a --reflink=always` of the source's objects/ (target ratio ≤ 1.5);
 * - ext4 (loop-mounted): `oci copy --zerocopy` (hardlinks) vs `cp -al` (≤ 2.0), and the same on
 *   the xfs with reflinks refused by the destination, so it hardlinks too;
 * - cross-algorithm sha256 → sha512 vs `cp -a` + `fsverity digest --hash-alg=sha512` over
 *   the copied files (≤ 1.2).
 *
 * Needs root (loop mounts). Run: `deno bench -A bench/oci_copy_bench.ts`
 *
 * @module
 */

import { join } from "node:path";
import { Repository } from "../lib/repository/repository.ts";
import { pullImage } from "../lib/oci/pull.ts";
import { copyImage } from "../lib/oci/copy.ts";
import { LocalRepositoryEndpoint } from "../lib/oci/copy_endpoint.ts";
import type { ClosureImportOptions } from "../lib/oci/layer_closure.ts";
import { writeDemoImage } from "../lib/demo/demo_image.ts";

/** Image shape: 5000 files of up to 48 KiB (≈120 MB with the big-file layer). */
const IMAGE = { files: 5000, maxFileSize: 48 * 1024, gzip: false };
/** Whole-image copies take about a second: a few runs give a stable median. */
const RUNS = { n: 4, warmup: 1 };

function sh(cmd: string, args: string[]): void {
  const out = new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).outputSync();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

function mountLoop(fstype: "xfs" | "ext4"): string {
  const img = Deno.makeTempFileSync({ dir: "/var/tmp", prefix: `cfs-bench-${fstype}-` });
  Deno.truncateSync(img, 2 * 1024 * 1024 * 1024);
  if (fstype === "xfs") sh("mkfs.xfs", ["-q", "-f", "-m", "reflink=1", img]);
  else sh("mkfs.ext4", ["-q", "-F", img]);
  const mnt = Deno.makeTempDirSync({ prefix: `cfs-bench-mnt-${fstype}-` });
  sh("mount", ["-o", "loop", img, mnt]);
  addEventListener("unload", () => {
    sh("umount", [mnt]);
    Deno.removeSync(mnt);
    Deno.removeSync(img);
  });
  return mnt;
}

const layoutDir = Deno.makeTempDirSync({ prefix: "cfs-bench-layout-" });
addEventListener("unload", () => Deno.removeSync(layoutDir, { recursive: true }));
await writeDemoImage(layoutDir, "bench", IMAGE);

async function sourceRepo(root: string, alg: "sha256" | "sha512"): Promise<string> {
  const path = join(root, `src-${alg}`);
  using repo = await Repository.init(path, { algorithm: alg, insecure: true });
  await pullImage(repo, `oci:${layoutDir}:bench`, { tag: "bench" });
  return path;
}

const xfs = mountLoop("xfs");
const ext4 = mountLoop("ext4");
const srcXfs = await sourceRepo(xfs, "sha256");
const srcExt4 = await sourceRepo(ext4, "sha256");
let seq = 0;

/**
 * A destination that refuses reflinks, so a same-filesystem copy on xfs hardlinks (the mode
 * `cp -al` is measured against; ext4 gets there by itself, having no reflinks).
 */
class HardlinkingEndpoint extends LocalRepositoryEndpoint {
  override putLayerClosures(
    layers: Parameters<LocalRepositoryEndpoint["putLayerClosures"]>[0],
    store: ClosureImportOptions,
    onProgress?: (layer: number, bytes: number) => void,
  ) {
    return super.putLayerClosures(layers, { ...store, allowReflink: false }, onProgress);
  }
  override finalizeImage(
    ...[manifest, config, layers, tag, prebuilt]: Parameters<
      LocalRepositoryEndpoint["finalizeImage"]
    >
  ) {
    const store = prebuilt && { ...prebuilt, store: { ...prebuilt.store, allowReflink: false } };
    return super.finalizeImage(manifest, config, layers, tag, store);
  }
}

/** A fresh destination repository (made before the clock starts, as `cfs init` would). */
async function freshRepo(root: string, alg: "sha256" | "sha512"): Promise<string> {
  const dst = join(root, `dst-${seq++}`);
  (await Repository.init(dst, { algorithm: alg, insecure: true })).close();
  return dst;
}

/** What `cfs --repo DST oci copy --from SRC bench` does: open both, copy. */
async function ociCopy(src: string, dst: string, zerocopy: boolean, reflink = true) {
  using from = await Repository.open(src);
  using to = await Repository.open(dst, { write: true });
  const sink = reflink ? new LocalRepositoryEndpoint(to) : new HardlinkingEndpoint(to);
  const s = await copyImage(new LocalRepositoryEndpoint(from), sink, "bench", { zerocopy });
  if (!reflink && s.objectsHardlinked === 0) throw new Error("Expected hardlinks");
}

function cleanup(path: string) {
  sh("rm", ["-rf", path]);
}

Deno.bench({
  name: "oci copy --zerocopy (xfs reflink)",
  group: "reflink",
  baseline: true,
  ...RUNS,
  async fn(b) {
    const dst = await freshRepo(xfs, "sha256");
    b.start();
    await ociCopy(srcXfs, dst, true);
    b.end();
    cleanup(dst);
  },
});

Deno.bench({
  name: "cp -a --reflink=always objects/",
  group: "reflink",
  ...RUNS,
  fn(b) {
    const dst = join(xfs, `cp-${seq++}`);
    b.start();
    sh("cp", ["-a", "--reflink=always", join(srcXfs, "objects"), dst]);
    b.end();
    cleanup(dst);
  },
});

Deno.bench({
  name: "oci copy --zerocopy (ext4 hardlink)",
  group: "hardlink",
  baseline: true,
  ...RUNS,
  async fn(b) {
    const dst = await freshRepo(ext4, "sha256");
    b.start();
    await ociCopy(srcExt4, dst, true);
    b.end();
    cleanup(dst);
  },
});

Deno.bench({
  name: "cp -al objects/",
  group: "hardlink",
  ...RUNS,
  fn(b) {
    const dst = join(ext4, `cp-${seq++}`);
    b.start();
    sh("cp", ["-al", join(srcExt4, "objects"), dst]);
    b.end();
    cleanup(dst);
  },
});

Deno.bench({
  name: "oci copy --zerocopy, reflinks refused (xfs hardlink)",
  group: "hardlink-xfs",
  baseline: true,
  ...RUNS,
  async fn(b) {
    const dst = await freshRepo(xfs, "sha256");
    b.start();
    await ociCopy(srcXfs, dst, true, false);
    b.end();
    cleanup(dst);
  },
});

Deno.bench({
  name: "cp -al objects/ (xfs)",
  group: "hardlink-xfs",
  ...RUNS,
  fn(b) {
    const dst = join(xfs, `cp-${seq++}`);
    b.start();
    sh("cp", ["-al", join(srcXfs, "objects"), dst]);
    b.end();
    cleanup(dst);
  },
});

Deno.bench({
  name: "oci copy sha256 -> sha512 (xfs)",
  group: "cross-algorithm",
  baseline: true,
  ...RUNS,
  async fn(b) {
    const dst = await freshRepo(xfs, "sha512");
    b.start();
    await ociCopy(srcXfs, dst, false);
    b.end();
    cleanup(dst);
  },
});

Deno.bench({
  name: "cp -a + fsverity digest --hash-alg=sha512",
  group: "cross-algorithm",
  ...RUNS,
  fn(b) {
    const dst = join(xfs, `cp-${seq++}`);
    b.start();
    sh("cp", ["-a", join(srcXfs, "objects"), dst]);
    sh("sh", [
      "-c",
      `find '${dst}' -type f -print0 | xargs -0 -n 2000 fsverity digest --hash-alg=sha512 >/dev/null`,
    ]);
    b.end();
    cleanup(dst);
  },
});

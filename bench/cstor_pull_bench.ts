/**
 * Pull of a ~120 MB image from containers-storage on a loop-mounted xfs into a repository on
 * the same filesystem (objects reflinked), against the floor: `cp -a --reflink=always` of the
 * layers' diff directories (metadata-only clones, no reading at all). Our pull additionally
 * reads every byte three times (CRC-64 check, diff_id sha256, fs-verity digest of the object).
 *
 * A third entry, clone plus one `sha256sum` pass over every byte, is the floor for any import
 * that verifies content.
 *
 * Run: `deno bench -A bench/cstor_pull_bench.ts` (root: loop mount).
 */

import { Repository } from "../lib/repository/repository.ts";
import { pullFromContainersStorage } from "../lib/oci/cstor/pull.ts";
import { requireCommand, run } from "../tests/_helpers.ts";
import { buildUmociLayout, copyToStore, FIXTURE_NAME } from "../tests/_cstor_fixture.ts";

/** Extra MiB of random files in layer 1: with the fixture's own files, ~120 MB of layers. */
const EXTRA_MIB = 118;

/** Loop image size: the store plus a few reflinked repositories and copies. */
const XFS_MIB = 2048;

const tmp = await Deno.makeTempDir({ prefix: "cfs-cstor-bench-" });
// The loop filesystem is managed here (not with tests' loopMount) because `unload` cleanup
// must be synchronous: umount, then remove the mount point and the image.
const image = `/var/tmp/cfs-cstor-bench-${crypto.randomUUID()}.img`;
const mnt = `${tmp}/mnt`;
addEventListener("unload", () => {
  new Deno.Command("umount", { args: [mnt] }).outputSync();
  Deno.removeSync(image);
  Deno.removeSync(tmp, { recursive: true });
});
Deno.writeFileSync(image, new Uint8Array());
Deno.truncateSync(image, XFS_MIB * 1024 * 1024);
await run(requireCommand("mkfs.xfs"), ["-q", "-f", "-m", "reflink=1", image]);
Deno.mkdirSync(mnt);
await run(requireCommand("mount"), ["-o", "loop", image, mnt]);
const xfs = { path: mnt };
const layout = await buildUmociLayout(tmp, EXTRA_MIB);
const store = `${xfs.path}/store`;
await copyToStore(layout, "v3", "overlay", `${store}/root`, `${store}/run`);
// The layer directories (`<id>/diff` plus overlay's few bytes of `link`/`lower` and empty
// `work/`): copied in one `cp` so process start-up is paid once.
const layerDirs = [...Deno.readDirSync(`${store}/root/overlay`)]
  .filter((e) => e.isDirectory && e.name !== "l")
  .map((e) => `${store}/root/overlay/${e.name}`);
const cp = requireCommand("cp");
let n = 0;

Deno.bench(
  "containers-storage pull, xfs reflink",
  { group: "cstor", n: 4, warmup: 1 },
  async (b) => {
    const path = `${xfs.path}/repo-${n++}`;
    using repo = await Repository.init(path, { algorithm: "sha256", insecure: true });
    b.start();
    const r = await pullFromContainersStorage(
      repo,
      `containers-storage:[overlay@${store}/root+${store}/run]${FIXTURE_NAME}:v3`,
      { env: { HOME: "/nonexistent" } },
    );
    b.end();
    if (r.stats.objectsCopied !== 0 || r.stats.objectsReflinked === 0) {
      throw new Error(`Expected reflinks only: ${JSON.stringify(r.stats)}`);
    }
    repo.close();
    await Deno.remove(path, { recursive: true });
  },
);

Deno.bench("containers-storage pull, xfs reflink, diff_id check only (verifyCrc: false)", {
  group: "cstor",
  n: 4,
  warmup: 1,
}, async (b) => {
  const path = `${xfs.path}/repo-${n++}`;
  using repo = await Repository.init(path, { algorithm: "sha256", insecure: true });
  b.start();
  await pullFromContainersStorage(
    repo,
    `containers-storage:[overlay@${store}/root+${store}/run]${FIXTURE_NAME}:v3`,
    { env: { HOME: "/nonexistent" }, verifyCrc: false },
  );
  b.end();
  repo.close();
  await Deno.remove(path, { recursive: true });
});

Deno.bench("cp -a --reflink=always of the diff dirs", {
  group: "cstor",
  baseline: true,
  n: 4,
  warmup: 1,
}, async (b) => {
  const dest = `${xfs.path}/cp-${n++}`;
  await Deno.mkdir(dest);
  b.start();
  await run(cp, ["-a", "--reflink=always", ...layerDirs, dest]);
  b.end();
  await Deno.remove(dest, { recursive: true });
});

Deno.bench("cp -a --reflink=always, then sha256sum of every file (read once)", {
  group: "cstor",
  n: 4,
  warmup: 1,
}, async (b) => {
  const dest = `${xfs.path}/cps-${n++}`;
  await Deno.mkdir(dest);
  b.start();
  await run(cp, ["-a", "--reflink=always", ...layerDirs, dest]);
  await run("sh", ["-c", `find "${dest}" -type f -print0 | xargs -0 cat | sha256sum`]);
  b.end();
  await Deno.remove(dest, { recursive: true });
});

/**
 * Real containers-storage fixtures (spec cli-oci-cstor §7 recipes A and C2): an OCI layout made
 * by umoci (three layers: xattrs, a 0600 file, hardlinks, symlinks; then whiteouts, a changed
 * file and a removed directory; then a chmod-only change), copied into private overlay / vfs
 * stores by `skopeo copy`, under `unshare -m` so c/storage's bind mount of `<root>/overlay`
 * vanishes with the namespace (spec §4.4.5) and the host store is never touched.
 *
 * @module
 */

import { requireCommand, run } from "./_helpers.ts";

/** Name every fixture image is stored under. */
export const FIXTURE_NAME = "localhost/test";

async function setXattr(path: string, name: string, value: string): Promise<void> {
  await run(requireCommand("python3"), [
    "-c",
    "import os,sys; os.setxattr(sys.argv[1], sys.argv[2], sys.argv[3].encode(), follow_symlinks=False)",
    path,
    name,
    value,
  ]);
}

function randomBytes(n: number, seed: number): Uint8Array<ArrayBuffer> {
  // Deterministic pseudo-random content (xorshift32), so runs are reproducible.
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * Build `<dir>/oci` with tags `v1` (one layer), `v2` (two) and `v3` (three). `bigFileMiB` adds
 * that many MiB of extra files to layer 1 (the benchmark's ~120 MB image).
 */
export async function buildUmociLayout(dir: string, bigFileMiB = 0): Promise<string> {
  const umoci = requireCommand("umoci");
  const oci = `${dir}/oci`;
  await run(umoci, ["init", "--layout", oci]);
  await run(umoci, ["new", "--image", `${oci}:v1`]);
  // Layer 1.
  const b1 = `${dir}/b1`;
  await run(umoci, ["unpack", "--image", `${oci}:v1`, b1]);
  const r1 = `${b1}/rootfs`;
  for (const d of ["etc", "usr/bin", "usr/lib", "var/gone/sub"]) {
    await Deno.mkdir(`${r1}/${d}`, { recursive: true });
  }
  await Deno.writeTextFile(`${r1}/etc/hostname`, "hello\n");
  await Deno.chmod(`${r1}/etc/hostname`, 0o600);
  await Deno.writeFile(`${r1}/etc/secret`, randomBytes(5000, 1), { mode: 0o600 });
  await Deno.chmod(`${r1}/etc/secret`, 0o600);
  await Deno.writeFile(`${r1}/usr/bin/big`, randomBytes(100_000, 2));
  await Deno.chmod(`${r1}/usr/bin/big`, 0o755);
  await setXattr(`${r1}/usr/bin/big`, "user.test", "xattr-value");
  await Deno.link(`${r1}/usr/bin/big`, `${r1}/usr/bin/big-hardlink`);
  await Deno.symlink("../usr/bin/big", `${r1}/etc/biglink`);
  await Deno.writeFile(`${r1}/usr/lib/small`, new TextEncoder().encode("tiny"));
  await Deno.writeFile(`${r1}/usr/lib/empty`, new Uint8Array(0));
  await Deno.writeFile(`${r1}/var/gone/sub/f`, randomBytes(3000, 3));
  for (let i = 0; i < bigFileMiB; i++) {
    await Deno.writeFile(`${r1}/usr/lib/blob${i}`, randomBytes(1024 * 1024, 100 + i));
  }
  await run(umoci, ["repack", "--image", `${oci}:v1`, b1]);
  // Layer 2: whiteouts (file and directory), a changed file, a new file.
  const b2 = `${dir}/b2`;
  await run(umoci, ["unpack", "--image", `${oci}:v1`, b2]);
  const r2 = `${b2}/rootfs`;
  await Deno.remove(`${r2}/etc/biglink`);
  await Deno.remove(`${r2}/var/gone`, { recursive: true });
  await Deno.writeTextFile(`${r2}/etc/hostname`, "changed\n");
  await Deno.mkdir(`${r2}/opt`);
  await Deno.writeFile(`${r2}/opt/data`, randomBytes(5000, 4));
  await run(umoci, ["repack", "--image", `${oci}:v2`, b2]);
  // Layer 3: a chmod-only change and a hardlink to a file of a lower layer.
  const b3 = `${dir}/b3`;
  await run(umoci, ["unpack", "--image", `${oci}:v2`, b3]);
  const r3 = `${b3}/rootfs`;
  await Deno.chmod(`${r3}/opt/data`, 0o640);
  await Deno.link(`${r3}/opt/data`, `${r3}/opt/data-link`);
  await run(umoci, ["repack", "--image", `${oci}:v3`, b3]);
  for (const b of [b1, b2, b3]) await Deno.remove(b, { recursive: true });
  return oci;
}

/**
 * `skopeo copy oci:<layout>:<tag> containers-storage:[driver@root+run]localhost/test:<tag>`,
 * in a private mount namespace unless `keepMount` (then c/storage's bind mount of
 * `<root>/overlay` stays, as on a host podman has used: call {@link unmountStore} after).
 */
export async function copyToStore(
  layout: string,
  tag: string,
  driver: "overlay" | "vfs",
  root: string,
  runRoot: string,
  keepMount = false,
): Promise<void> {
  const skopeo = [
    requireCommand("skopeo"),
    "copy",
    "--quiet",
    `oci:${layout}:${tag}`,
    `containers-storage:[${driver}@${root}+${runRoot}]${FIXTURE_NAME}:${tag}`,
  ];
  if (keepMount) await run(skopeo[0], skopeo.slice(1));
  else await run(requireCommand("unshare"), ["-m", ...skopeo]);
}

/** Undo every mount c/storage left under `root` (its overlay bind mount). */
export async function unmountStore(root: string): Promise<void> {
  const umount = requireCommand("umount");
  for (let i = 0; i < 8; i++) {
    const r = await run(umount, [`${root}/overlay`], { allowFail: true });
    if (r.code !== 0) return;
  }
}

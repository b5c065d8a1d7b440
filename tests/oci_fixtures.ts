/**
 * Real OCI inputs for tests, built with umoci, skopeo and GNU tar in a temp dir
 * (cli-oci-cstor §7 recipes). Missing tools make the build fail loudly with the reason.
 *
 * @module
 */

import { encodeTar } from "../lib/tar/tar_writer.ts";

const dec = new TextDecoder();

/** Run a command; throw with its stderr unless it succeeds. Returns stdout. */
export async function sh(cmd: string, args: string[], cwd?: string): Promise<string> {
  let out;
  try {
    out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    throw new Error(`Cannot run "${cmd}" (install it: .ci/run installs umoci, skopeo, fsverity)`, {
      cause: e,
    });
  }
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${dec.decode(out.stderr)}`);
  }
  return dec.decode(out.stdout);
}

/** Read a layout's index.json manifests. */
export async function layoutIndex(dir: string): Promise<
  { mediaType: string; digest: string; size: number; annotations?: Record<string, string> }[]
> {
  return JSON.parse(await Deno.readTextFile(`${dir}/index.json`)).manifests;
}

/** Path of a blob in a layout. */
export function blobPath(dir: string, digest: string): string {
  return `${dir}/blobs/sha256/${digest.slice(7)}`;
}

/** Read and parse a JSON blob. */
export async function readJsonBlob(dir: string, digest: string): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(blobPath(dir, digest)));
}

/** Write a blob and return its descriptor fields. */
export async function writeBlob(
  dir: string,
  bytes: Uint8Array,
): Promise<{ digest: string; size: number }> {
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  const digest = "sha256:" + h.toHex();
  await Deno.writeFile(blobPath(dir, digest), bytes);
  return { digest, size: bytes.length };
}

/** The images built by {@link buildFixtures}. */
export interface Fixtures {
  /** Temp root (remove when done). */
  root: string;
  /** umoci layout (gzip): tags v1 (1 layer), v2 (+whiteouts), v3 (+GNU tar layer), v4 (+PAX layer). */
  oci: string;
  /** Same image v4 with zstd layers (skopeo). */
  zstd: string;
  /** Same image v4 with uncompressed layers (skopeo via dir:). */
  uncompressed: string;
  /** Same image v4 with Docker v2s2 manifest and media types. */
  docker: string;
  /** oci-archive of v4. */
  archive: string;
  /** Layout whose index.json holds a nested index with amd64 and arm64 manifests, tag "multi". */
  index: string;
  /** umoci unpack of v4 (the reference tree). */
  unpacked: string;
}

/**
 * Build all fixtures. The rootfs covers: a 0600 small file, a 100 kB random file, a symlink,
 * a hardlink, a whiteout (file removed in v2), an opaque dir (v3), GNU long names (v3),
 * PAX long names, long link targets and xattrs (v4), files around the 64-byte threshold.
 */
export async function buildFixtures(): Promise<Fixtures> {
  const root = await Deno.makeTempDir({ prefix: "cfs-oci-fx-" });
  const w = (p: string) => `${root}/${p}`;
  const rnd = (n: number) => {
    const b = new Uint8Array(n);
    for (let o = 0; o < n; o += 65536) {
      crypto.getRandomValues(b.subarray(o, Math.min(n, o + 65536)));
    }
    return b;
  };
  await Deno.mkdir(w("rootfs/usr/bin"), { recursive: true });
  await Deno.mkdir(w("rootfs/etc"), { recursive: true });
  await Deno.writeTextFile(w("rootfs/etc/hostname"), "hello\n");
  await Deno.chmod(w("rootfs/etc/hostname"), 0o600);
  await Deno.writeFile(w("rootfs/usr/bin/big"), rnd(100000));
  await Deno.writeFile(w("rootfs/usr/bin/s64"), rnd(64));
  await Deno.writeFile(w("rootfs/usr/bin/s65"), rnd(65));
  await Deno.writeFile(w("rootfs/usr/bin/empty"), new Uint8Array(0));
  await Deno.symlink("../usr/bin/big", w("rootfs/etc/biglink"));
  await Deno.link(w("rootfs/usr/bin/big"), w("rootfs/usr/bin/bighard"));
  const oci = w("oci");
  await sh("umoci", ["init", "--layout", oci]);
  await sh("umoci", ["new", "--image", `${oci}:v1`]);
  await sh("umoci", ["unpack", "--image", `${oci}:v1`, w("b1")]);
  await sh("cp", ["-a", `${w("rootfs")}/.`, `${w("b1")}/rootfs/`]);
  await sh("umoci", ["repack", "--image", `${oci}:v1`, w("b1")]);
  // v2: a whiteout, a changed file, a new directory with data.
  await sh("umoci", ["unpack", "--image", `${oci}:v1`, w("b2")]);
  await Deno.remove(w("b2/rootfs/etc/biglink"));
  await Deno.writeTextFile(w("b2/rootfs/etc/hostname"), "changed\n");
  await Deno.mkdir(w("b2/rootfs/opt/keep"), { recursive: true });
  await Deno.writeFile(w("b2/rootfs/opt/data"), rnd(5000));
  await Deno.writeFile(w("b2/rootfs/opt/keep/old"), rnd(3000));
  await sh("umoci", ["repack", "--image", `${oci}:v2`, w("b2")]);
  // v3: a GNU-format tar (long names as 'L' entries, hardlink) making opt/ opaque.
  const g = w("gnu");
  const longDir = `deep/${"d".repeat(120)}`;
  await Deno.mkdir(`${g}/opt`, { recursive: true });
  await Deno.mkdir(`${g}/${longDir}`, { recursive: true });
  await Deno.writeFile(`${g}/opt/.wh..wh..opq`, new Uint8Array(0));
  await Deno.writeFile(`${g}/opt/new`, rnd(7000));
  await Deno.writeFile(`${g}/${longDir}/${"f".repeat(110)}`, rnd(9000));
  await Deno.link(`${g}/opt/new`, `${g}/opt/newlink`);
  await Deno.writeFile(`${g}/secret`, rnd(2000));
  await Deno.chmod(`${g}/secret`, 0o600);
  await sh("tar", ["-C", g, "--format=gnu", "--numeric-owner", "-cf", w("l3.tar"), "."]);
  await sh("umoci", ["raw", "add-layer", "--image", `${oci}:v2`, "--tag", "v3", w("l3.tar")]);
  // v4: a PAX tar (long path, long symlink target, xattrs) from the project's tar writer.
  const l4 = encodeTar([
    { path: "pax/", type: "dir", mode: 0o755 },
    {
      path: `pax/${"p".repeat(90)}/${"q".repeat(90)}/${"r".repeat(90)}`,
      type: "file",
      content: rnd(4097),
    },
    { path: "pax/xattr", type: "file", content: rnd(300), xattrs: { "user.test": "value" } },
    { path: "pax/longlink", type: "symlink", linkname: "/" + "t".repeat(200) },
    { path: "pax/tiny", type: "file", content: new TextEncoder().encode("tiny\n"), mode: 0o600 },
  ]);
  await Deno.writeFile(w("l4.tar"), l4);
  await sh("umoci", ["raw", "add-layer", "--image", `${oci}:v3`, "--tag", "v4", w("l4.tar")]);
  await sh("umoci", ["unpack", "--image", `${oci}:v4`, w("unpacked")]);
  const zstd = w("zstd");
  await sh("skopeo", [
    "copy",
    "-q",
    "--dest-compress-format",
    "zstd",
    `oci:${oci}:v4`,
    `oci:${zstd}:v4`,
  ]);
  await sh("skopeo", ["copy", "-q", "--dest-decompress", `oci:${oci}:v4`, `dir:${w("dir")}`]);
  const uncompressed = w("unc");
  await sh("skopeo", [
    "copy",
    "-q",
    "--dest-oci-accept-uncompressed-layers",
    `dir:${w("dir")}`,
    `oci:${uncompressed}:v4`,
  ]);
  const docker = w("docker");
  await sh("skopeo", ["copy", "-q", "-f", "v2s2", `oci:${oci}:v4`, `oci:${docker}:v4`]);
  const archive = w("img.tar");
  await sh("skopeo", ["copy", "-q", `oci:${oci}:v4`, `oci-archive:${archive}:v4`]);
  const index = await buildIndexLayout(w("index"), oci);
  return { root, oci, zstd, uncompressed, docker, archive, index, unpacked: w("unpacked/rootfs") };
}

/**
 * A layout whose index.json has one entry (tag "multi") pointing at a nested image index
 * with two platform manifests: the v1 image as linux/<host arch>, and a copy of it whose
 * config says linux/arm64 (or amd64 on arm64 hosts) and carries an extra label.
 */
async function buildIndexLayout(dir: string, oci: string): Promise<string> {
  await sh("cp", ["-a", oci, dir]);
  const v1 = (await layoutIndex(dir)).find((m) =>
    m.annotations?.["org.opencontainers.image.ref.name"] === "v1"
  )!;
  const manifest = await readJsonBlob(dir, v1.digest);
  const cfgDesc = manifest.config as { digest: string; size: number; mediaType: string };
  const cfg = await readJsonBlob(dir, cfgDesc.digest);
  const host = cfg.architecture as string;
  const other = host === "amd64" ? "arm64" : "amd64";
  const cfg2 = { ...cfg, architecture: other, config: { Labels: { which: "other" } } };
  const cfg2d = await writeBlob(dir, new TextEncoder().encode(JSON.stringify(cfg2)));
  const m2 = { ...manifest, config: { ...cfgDesc, ...cfg2d } };
  const m2d = await writeBlob(dir, new TextEncoder().encode(JSON.stringify(m2)));
  const mt = "application/vnd.oci.image.manifest.v1+json";
  const nested = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [
      { mediaType: mt, ...m2d, platform: { os: "linux", architecture: other } },
      {
        mediaType: mt,
        digest: v1.digest,
        size: v1.size,
        platform: { os: "linux", architecture: host },
      },
    ],
  };
  const nd = await writeBlob(dir, new TextEncoder().encode(JSON.stringify(nested)));
  await Deno.writeTextFile(
    `${dir}/index.json`,
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{
        mediaType: "application/vnd.oci.image.index.v1+json",
        ...nd,
        annotations: { "org.opencontainers.image.ref.name": "multi" },
      }],
    }),
  );
  return dir;
}

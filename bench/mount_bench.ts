/**
 * Composefs mounts and EROFS generation against their peers (run as root):
 *
 * - `mount + find -type f | xargs cat + umount` through our composefs mount of a real umoci
 *   image (~2000 files, ~70 MB: the host's /usr/share/perl and small /usr/bin files) vs the
 *   same `find | xargs cat` over `umoci unpack` of that image;
 * - EROFS V1 generation for a debootstrap-sized tree (the first 15000 entries of the host's
 *   /usr, real sizes and modes) vs `mkcomposefs --min-version=1 --from-file` on the same
 *   dumpfile.
 *
 * `deno bench -A bench/mount_bench.ts`
 *
 * @module
 */

import { join } from "node:path";
import { parseDumpfile, writeDumpfile } from "../lib/erofs/dumpfile.ts";
import { Directory, Leaf, makeStat, utf8ToByteString } from "../lib/erofs/tree.ts";
import { writeErofs } from "../lib/erofs/writer.ts";
import { mountImage, unmountImage } from "../lib/mount/composefs_mount.ts";
import { pullImage } from "../lib/oci/pull.ts";
import { toHex } from "../lib/repository/object_id.ts";
import { Repository } from "../lib/repository/repository.ts";

const SID = "/var/tmp/cfs-sid-tools/bin";
/** Entries of /usr in the generated tree: a debootstrap minbase has about 10–15 thousand. */
const TREE_ENTRIES = 15000;

async function sh(cmd: string, args: string[]): Promise<void> {
  const o = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (!o.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(o.stderr)}`);
  }
}

const work = await Deno.makeTempDir({ prefix: "cfs-mount-bench-" });
const mnt = join(work, "mnt");
await Deno.mkdir(mnt);
const mnt2 = join(work, "mnt2");
await Deno.mkdir(mnt2);
let isMounted = false;
let isMounted2 = false;
globalThis.addEventListener("unload", () => {
  if (isMounted) unmountImage(mnt, { detach: true });
  if (isMounted2) unmountImage(mnt2, { detach: true });
  Deno.removeSync(work, { recursive: true });
});

// ---- a real image: umoci layout of a host subtree
await sh("bash", [
  "-c",
  `set -e; cd ${work}; umoci init --layout oci; umoci new --image oci:v1
   umoci unpack --image oci:v1 b >/dev/null; mkdir -p b/rootfs/usr/bin b/rootfs/usr/share
   cp -a /usr/share/perl b/rootfs/usr/share/
   find /usr/bin -maxdepth 1 -type f -size -2M -exec cp -a {} b/rootfs/usr/bin/ \\;
   umoci repack --image oci:v1 b; umoci unpack --image oci:v1 unpacked >/dev/null`,
]);
const repo = await Repository.init(join(work, "repo"), { algorithm: "sha256", insecure: true });
const pulled = await pullImage(repo, `oci:${work}/oci:v1`, { tag: "v1" });
const imageHex = toHex(pulled.images[0].id);
const catAll = (dir: string) =>
  sh("sh", ["-c", `find ${dir} -type f -print0 | xargs -0 cat > /dev/null`]);

Deno.bench({
  name: "composefs: mount + find|xargs cat + umount",
  group: "read tree",
  async fn() {
    mountImage(repo, imageHex, mnt);
    isMounted = true;
    try {
      await catAll(mnt);
    } finally {
      unmountImage(mnt);
      isMounted = false;
    }
  },
});

// A long-lived mount, to separate the read cost from the mount/umount cost.
mountImage(repo, imageHex, mnt2);
isMounted2 = true;

Deno.bench({
  name: "composefs: find|xargs cat (mounted once)",
  group: "read tree",
  async fn() {
    await catAll(mnt2);
  },
});

Deno.bench({
  name: "composefs: mount + umount only",
  group: "read tree",
  fn() {
    mountImage(repo, imageHex, mnt);
    isMounted = true;
    unmountImage(mnt);
    isMounted = false;
  },
});

Deno.bench({
  name: "umoci unpack: find|xargs cat",
  group: "read tree",
  baseline: true,
  async fn() {
    await catAll(join(work, "unpacked/rootfs"));
  },
});

// ---- a debootstrap-sized tree from the host's /usr (fake object digests: content is not read)
function hostTree(): Directory {
  const root = new Directory(makeStat({ mode: 0o755 }));
  let n = 0;
  const walk = (path: string, dir: Directory) => {
    const names = [...Deno.readDirSync(path)].map((e) => e.name).sort();
    for (const name of names) {
      if (n >= TREE_ENTRIES) return;
      const p = `${path}/${name}`;
      let st: Deno.FileInfo;
      try {
        st = Deno.lstatSync(p);
      } catch {
        continue;
      }
      n++;
      const stat = makeStat({
        mode: st.mode! & 0o7777,
        uid: st.uid!,
        gid: st.gid!,
        mtimeSec: Math.floor(st.mtime!.getTime() / 1000),
      });
      const key = utf8ToByteString(name);
      if (st.isDirectory) {
        const d = new Directory(stat);
        dir.entries.set(key, d);
        walk(p, d);
      } else if (st.isSymlink) {
        dir.entries.set(
          key,
          new Leaf(stat, { kind: "symlink", target: utf8ToByteString(Deno.readLinkSync(p)) }),
        );
      } else if (st.isFile) {
        const digest = new Uint8Array(32);
        new DataView(digest.buffer).setUint32(0, n);
        dir.entries.set(
          key,
          new Leaf(stat, {
            kind: "regular",
            content: st.size <= 64
              ? { kind: "inline", data: Deno.readFileSync(p) }
              : { kind: "external", digest, size: st.size },
          }),
        );
      }
    }
  };
  const usr = new Directory(makeStat({ mode: 0o755 }));
  root.entries.set("usr", usr);
  walk("/usr", usr);
  return root;
}

const tree = hostTree();
const dumpPath = join(work, "tree.dump");
const dump = writeDumpfile(tree);
await Deno.writeTextFile(dumpPath, dump);

Deno.bench({
  name: `writeErofs V1 (${TREE_ENTRIES} entries)`,
  group: "erofs generation",
  fn() {
    writeErofs(tree, { version: 1 });
  },
});

Deno.bench({
  name: `parseDumpfile + writeErofs V1 (${TREE_ENTRIES} entries)`,
  group: "erofs generation",
  fn() {
    writeErofs(parseDumpfile(dump), { version: 1 });
  },
});

Deno.bench({
  name: `mkcomposefs --min-version=1 --from-file (${TREE_ENTRIES} entries)`,
  group: "erofs generation",
  baseline: true,
  async fn() {
    await sh(`${SID}/mkcomposefs`, [
      "--min-version=1",
      "--from-file",
      dumpPath,
      join(work, "c.img"),
    ]);
  },
});

/**
 * End to end, as root: a real 3-layer umoci image (whiteouts, an opaque directory, hardlinks,
 * 0600 files, a file capability, a user xattr, a chown'd file, a fifo and a char device) is
 * pulled, its composefs image mounted with our new-mount-API code, and every file compared
 * with `umoci unpack` of the same image: type, mode, owner, size, mtime, content digest,
 * symlink target, rdev and xattrs (filtered like transform_for_oci). Also: a writable overlay
 * with upper/work dirs, unmount leaves no mount, loop device or fd behind, the V1 image equals
 * `mkcomposefs --min-version=1 --from-file` of our dumpfile, our merged tree agrees with
 * mkcomposefs's scan of the unpacked tree, and fsck / oci fsck / gc keep the linkage sound.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fgetxattr, flistxattr, openPath } from "../ffi/fs.ts";
import * as C from "../ffi/constants.ts";
import { openFdCount } from "../ffi/owned_fd.ts";
import { parseDumpfile, writeDumpfile } from "../lib/erofs/dumpfile.ts";
import { type Directory, type Inode, Leaf } from "../lib/erofs/tree.ts";
import { writeErofs } from "../lib/erofs/writer.ts";
import { mountImage, unmountImage } from "../lib/mount/composefs_mount.ts";
import {
  computeImageId,
  ensureComposefsImage,
  IMAGE_REF_V1,
  imageTree,
  linkedImageId,
} from "../lib/oci/composefs_image.ts";
import { resolveImage } from "../lib/oci/image_store.ts";
import { ociFsck } from "../lib/oci/oci_fsck.ts";
import { pullImage } from "../lib/oci/pull.ts";
import { toHex } from "../lib/repository/object_id.ts";
import { Repository } from "../lib/repository/repository.ts";
import { requireCommand, run } from "./_helpers.ts";
import { runCli } from "../lib/cli/main.ts";
import { Output, type TextSink } from "../lib/cli/output.ts";

class Buf implements TextSink {
  text = "";
  write(t: string) {
    this.text += t;
  }
  isTerminal() {
    return false;
  }
}

async function cli(args: string[]) {
  const stdout = new Buf();
  const stderr = new Buf();
  const code = await runCli(args, { output: new Output(stdout, stderr) });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** Builds the image; `$1` is the work dir. Layer 3 is GNU tar, sorted so the opaque marker comes first. */
const BUILD = String.raw`
set -e
W=$1; cd $W
mkdir -p rootfs/usr/bin rootfs/etc rootfs/opt/a/b rootfs/run/x rootfs/var/lib
head -c 100000 /dev/urandom > rootfs/usr/bin/big
ln rootfs/usr/bin/big rootfs/usr/bin/bighard
printf 'small\n' > rootfs/usr/bin/small
head -c 64 /dev/urandom > rootfs/usr/bin/s64
head -c 65 /dev/urandom > rootfs/usr/bin/s65
: > rootfs/usr/bin/empty
printf 'secret\n' > rootfs/etc/secret; chmod 600 rootfs/etc/secret
head -c 3000 /dev/urandom > rootfs/etc/secretbig; chmod 600 rootfs/etc/secretbig
printf 'host\n' > rootfs/etc/hostname
ln -s ../usr/bin/big rootfs/etc/biglink
head -c 5000 /dev/urandom > rootfs/opt/a/b/data
printf 'x\n' > rootfs/opt/a/keep
head -c 200 /dev/urandom > rootfs/usr/bin/capbin; chmod 4755 rootfs/usr/bin/capbin
setcap cap_net_raw+ep rootfs/usr/bin/capbin
head -c 300 /dev/urandom > rootfs/usr/bin/userx
python3 -c 'import os; os.setxattr("rootfs/usr/bin/userx", "user.foo", b"bar")'
printf 'own\n' > rootfs/var/lib/owned; chown 1234:5678 rootfs/var/lib/owned
mkfifo rootfs/var/lib/fifo
mknod rootfs/var/lib/null c 1 3
printf 'r\n' > rootfs/run/x/file
umoci init --layout oci; umoci new --image oci:v1
umoci unpack --image oci:v1 b1; cp -a rootfs/. b1/rootfs/; umoci repack --image oci:v1 b1
umoci unpack --image oci:v1 b2
rm b2/rootfs/etc/hostname b2/rootfs/etc/biglink; echo changed > b2/rootfs/usr/bin/small
mkdir b2/rootfs/srv; head -c 7000 /dev/urandom > b2/rootfs/srv/new
umoci repack --image oci:v2 b2
mkdir -p l3/opt/a l3/usr/bin; : > l3/opt/a/.wh..wh..opq; head -c 900 /dev/urandom > l3/opt/a/fresh
ln l3/opt/a/fresh l3/opt/a/fresh2; : > l3/usr/bin/.wh.s64; chmod 700 l3/opt/a
tar -C l3 --sort=name --format=gnu --numeric-owner -cf l3.tar opt usr
umoci raw add-layer --image oci:v2 --tag v3 l3.tar
umoci unpack --image oci:v3 unpacked
`;

interface Node {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  rdev: number;
  ino: number;
  digest?: string;
  link?: string;
  xattrs?: Record<string, string>;
}

async function sha256(path: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return new Uint8Array(d).toHex();
}

function xattrsOf(path: string): Record<string, string> {
  using fd = openPath(path, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  const out: Record<string, string> = {};
  for (const k of flistxattr(fd).sort()) out[k] = fgetxattr(fd, k)!.toHex();
  return out;
}

/** Walk a tree: path (relative, "" = root) → what we compare. */
async function walk(root: string): Promise<Map<string, Node>> {
  const out = new Map<string, Node>();
  const visit = async (rel: string) => {
    const p = rel === "" ? root : join(root, rel);
    const st = await Deno.lstat(p);
    const type = st.isFile
      ? "file"
      : st.isDirectory
      ? "dir"
      : st.isSymlink
      ? "symlink"
      : st.isFifo
      ? "fifo"
      : st.isCharDevice
      ? "chr"
      : "other";
    const n: Node = {
      type,
      mode: st.mode! & 0o7777,
      uid: st.uid!,
      gid: st.gid!,
      size: type === "dir" ? 0 : st.size,
      mtime: Math.floor(st.mtime!.getTime() / 1000),
      rdev: st.rdev ?? 0,
      ino: st.ino!,
    };
    if (type === "file") n.digest = await sha256(p);
    if (type === "symlink") n.link = await Deno.readLink(p);
    if (type === "file" || type === "dir") n.xattrs = xattrsOf(p);
    out.set(rel, n);
    if (type === "dir") {
      const names = [];
      for await (const e of Deno.readDir(p)) names.push(e.name);
      for (const name of names.sort()) await visit(rel === "" ? name : `${rel}/${name}`);
    }
  };
  await visit("");
  return out;
}

/** transform_for_oci's default filter: only security.capability survives. */
function allowlisted(x: Record<string, string> | undefined): Record<string, string> | undefined {
  if (x === undefined) return undefined;
  return Object.fromEntries(Object.entries(x).filter(([k]) => k === "security.capability"));
}

function mounted(target: string): boolean {
  return Deno.readTextFileSync("/proc/self/mountinfo").split("\n").some((l) =>
    l.split(" ")[4] === target
  );
}

function loopDevices(): number {
  return [...Deno.readDirSync("/sys/block")].filter((e) =>
    e.name.startsWith("loop") &&
    Deno.readTextFileSync(`/sys/block/${e.name}/size`).trim() !== "0"
  ).length;
}

Deno.test("oci mount: real umoci image vs umoci unpack, writable overlay, mkcomposefs", async (t) => {
  assert.equal(Deno.uid(), 0, "This test mounts filesystems: run it as root");
  for (const tool of ["umoci", "setcap", "python3", "tar"]) requireCommand(tool);
  const mkcomposefs = requireCommand("mkcomposefs");
  const composefsInfo = requireCommand("composefs-info");
  const w = await Deno.makeTempDir({ prefix: "cfs-mount-" });
  const mnt = join(w, "mnt");
  await Deno.mkdir(mnt);
  try {
    await run("bash", ["-c", BUILD, "build", w]);
    using repo = await Repository.init(join(w, "repo"), { algorithm: "sha256", insecure: true });
    const pulled = await pullImage(repo, `oci:${w}/oci:v3`, { tag: "v3" });
    assert.equal(pulled.skipped, undefined);
    assert.equal(pulled.images.length, 1);
    assert.equal(pulled.images[0].version, 1);
    const imageHex = toHex(pulled.images[0].id);

    await t.step("the config links the image; the manifest links the new config", () => {
      const img = resolveImage(repo, "v3");
      assert.deepEqual(img.configRefs.get(IMAGE_REF_V1), pulled.images[0].id);
      assert.deepEqual(img.configVerity, pulled.configVerity);
      assert.deepEqual(img.manifestVerity, pulled.manifestVerity);
      assert.deepEqual(linkedImageId(repo, "v3"), pulled.images[0].id);
      assert.deepEqual(computeImageId(repo, "v3"), pulled.images[0].id);
      assert.deepEqual(computeImageId(repo, `@${img.configDigest}`), pulled.images[0].id);
      // Idempotent: nothing to do the second time.
      assert.equal(ensureComposefsImage(repo, pulled.manifestDigest).changed, false);
      const fsck = repo.fsck();
      assert.equal(fsck.errors.length, 0, JSON.stringify(fsck.errors));
      const ofsck = ociFsck(repo);
      assert.equal(ofsck.imagesCorrupted, 0, JSON.stringify(ofsck.errors));
      // GC keeps the image and every object it redirects to.
      repo.gc();
      assert.deepEqual(repo.imageId(imageHex), pulled.images[0].id);
      for (const id of repo.imageObjects(imageHex)) assert.ok(repo.hasObject(id));
    });

    const fdsBefore = openFdCount();
    const loopsBefore = loopDevices();

    await t.step("mounted tree equals umoci unpack", async () => {
      mountImage(repo, imageHex, mnt);
      try {
        assert.ok(mounted(mnt));
        const ours = await walk(mnt);
        const ref = await walk(join(w, "unpacked/rootfs"));
        // transform_for_oci: /run is emptied; the root takes /usr's metadata.
        for (const k of [...ref.keys()]) if (k.startsWith("run/")) ref.delete(k);
        assert.deepEqual([...ours.keys()].sort(), [...ref.keys()].sort());
        let files = 0;
        for (const [path, r] of ref) {
          const o = ours.get(path)!;
          const want = path === "" ? { ...ref.get("usr")! } : { ...r };
          if (path === "run") want.mtime = ref.get("usr")!.mtime;
          const cmp = (n: Node) => ({
            type: n.type,
            mode: n.mode,
            uid: n.uid,
            gid: n.gid,
            size: n.size,
            mtime: n.mtime,
            rdev: n.rdev,
            digest: n.digest,
            link: n.link,
            xattrs: allowlisted(n.xattrs),
          });
          assert.deepEqual(cmp(o), cmp(want), `"/${path}" differs`);
          if (o.type === "file") files++;
        }
        assert.ok(files >= 12, `only ${files} files compared`);
        // Hardlinks: one inode, from layer 1 and from the GNU layer 3.
        assert.equal(ours.get("usr/bin/big")!.ino, ours.get("usr/bin/bighard")!.ino);
        assert.equal(ours.get("opt/a/fresh")!.ino, ours.get("opt/a/fresh2")!.ino);
        // Spot checks of the merge rules.
        assert.equal(ours.has("etc/hostname"), false, "whiteout");
        assert.equal(ours.has("usr/bin/s64"), false, "whiteout in a later layer");
        assert.equal(ours.has("opt/a/keep"), false, "opaque directory");
        assert.equal(ours.get("etc/secret")!.mode, 0o600);
        assert.equal(ours.get("usr/bin/capbin")!.mode, 0o4755);
        assert.ok(ours.get("usr/bin/capbin")!.xattrs!["security.capability"]);
        assert.equal(ours.get("usr/bin/userx")!.xattrs!["user.foo"], undefined, "filtered");
        assert.equal(ours.get("var/lib/owned")!.uid, 1234);
      } finally {
        unmountImage(mnt);
      }
      assert.equal(mounted(mnt), false);
      assert.deepEqual([...Deno.readDirSync(mnt)], []);
    });

    await t.step("writable overlay with upperdir/workdir", async () => {
      const upper = join(w, "upper");
      const work = join(w, "work");
      await Deno.mkdir(upper);
      await Deno.mkdir(work);
      const bigBefore = await sha256(join(w, "unpacked/rootfs/usr/bin/big"));
      mountImage(repo, imageHex, mnt, { upperdir: upper, workdir: work });
      try {
        await Deno.writeTextFile(join(mnt, "etc/new"), "new\n");
        // Copy-up of a metacopy file: the data must come from the object.
        await Deno.writeFile(join(mnt, "usr/bin/big"), new Uint8Array([1, 2, 3]), {
          append: true,
        });
        await Deno.remove(join(mnt, "etc/secret"));
        assert.equal(await Deno.readTextFile(join(upper, "etc/new")), "new\n");
        const up = await Deno.readFile(join(upper, "usr/bin/big"));
        assert.equal(up.length, 100003);
        assert.equal(
          new Uint8Array(await crypto.subtle.digest("SHA-256", up.subarray(0, 100000))).toHex(),
          bigBefore,
        );
      } finally {
        unmountImage(mnt);
      }
      // The image and its objects are untouched.
      mountImage(repo, imageHex, mnt);
      try {
        assert.equal(await sha256(join(mnt, "usr/bin/big")), bigBefore);
        assert.equal(await Deno.readTextFile(join(mnt, "etc/secret")), "secret\n");
        await assert.rejects(Deno.writeTextFile(join(mnt, "x"), "x"));
      } finally {
        unmountImage(mnt);
      }
    });

    await t.step("unmount leaves nothing behind", () => {
      assert.equal(mounted(mnt), false);
      assert.equal(loopDevices(), loopsBefore, "no loop device is used");
      assert.equal(openFdCount(), fdsBefore, "no fd leaked");
    });

    await t.step("V1 image equals mkcomposefs --min-version=1 of our dumpfile", async () => {
      const tree = imageTree(repo, "v3");
      const dump = writeDumpfile(tree);
      await Deno.writeTextFile(join(w, "ours.dump"), dump);
      await run(mkcomposefs, [
        "--min-version=1",
        "--from-file",
        join(w, "ours.dump"),
        join(w, "c.img"),
      ]);
      const theirs = await Deno.readFile(join(w, "c.img"));
      const ours = writeErofs(tree, { version: 1 });
      assert.ok(ours.length === theirs.length && ours.every((b, i) => b === theirs[i]));
      using fd = repo.openImage(imageHex);
      assert.deepEqual(ours, await Deno.readFile(`/proc/self/fd/${fd.fd}`));
    });

    await t.step(
      "merged tree agrees with mkcomposefs's scan of umoci's unpacked tree",
      async () => {
        await run(mkcomposefs, [join(w, "unpacked/rootfs"), join(w, "scan.img")]);
        const scanned = parseDumpfile(
          (await run(composefsInfo, ["dump", join(w, "scan.img")])).stdout,
          {
            filterSpecial: true,
          },
        );
        const ours = imageTree(repo, "v3");
        const flat = (root: Directory) => {
          const m = new Map<string, Inode>();
          const go = (d: Directory, p: string) => {
            for (const [n, c] of d.entries) {
              m.set(`${p}/${n}`, c);
              if (c.type === "dir") go(c, `${p}/${n}`);
            }
          };
          go(root, "");
          return m;
        };
        const a = flat(ours);
        const b = flat(scanned);
        for (const k of [...b.keys()]) if (k.startsWith("/run/")) b.delete(k);
        assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
        for (const [p, x] of a) {
          const y = b.get(p)!;
          assert.equal(x.type, y.type, p);
          assert.equal(x.stat.mode, y.stat.mode, p);
          assert.equal(x.stat.uid, y.stat.uid, p);
          assert.equal(x.stat.gid, y.stat.gid, p);
          if (x instanceof Leaf && y instanceof Leaf) {
            // Same content kind and, for external files, the same fs-verity digest.
            assert.deepEqual(x.content, y.content, p);
          }
        }
      },
    );
    await t.step("CLI: oci compute-id, oci dump, oci mount, mount with an overlay", async () => {
      const g = ["--repo", join(w, "repo")];
      const id = await cli([...g, "oci", "compute-id", "v3"]);
      assert.equal(id.code, 0, id.stderr);
      assert.equal(id.stdout.trim(), imageHex);
      const dump = await cli([...g, "oci", "dump", "v3"]);
      assert.equal(dump.stdout, writeDumpfile(imageTree(repo, "v3")));
      const m = await cli([...g, "oci", "mount", `sha256:${pulled.manifestDigest.slice(7)}`, mnt]);
      assert.equal(m.code, 0, m.stderr);
      assert.equal(await Deno.readTextFile(join(mnt, "etc/secret")), "secret\n");
      unmountImage(mnt);
      const up = join(w, "up2");
      const wk = join(w, "wk2");
      await Deno.mkdir(up);
      await Deno.mkdir(wk);
      const bad = await cli([...g, "mount", imageHex, mnt, "--upperdir", up]);
      assert.equal(bad.code, 2, "usage error without --workdir");
      assert.equal(mounted(mnt), false);
      const rw = await cli([...g, "mount", imageHex, mnt, "--upperdir", up, "--workdir", wk]);
      assert.equal(rw.code, 0, rw.stderr);
      await Deno.writeTextFile(join(mnt, "hello"), "hi");
      unmountImage(mnt);
      assert.equal(await Deno.readTextFile(join(up, "hello")), "hi");
      const v2 = await cli([...g, "--erofs-version", "2", "oci", "mount", "v3", mnt]);
      assert.equal(v2.code, 1);
      assert.match(v2.stderr, /No composefs EROFS image linked/);
      assert.equal(mounted(mnt), false);
    });

    await t.step("not root: a typed error before anything is opened", async () => {
      const nobody = await new Deno.Command("setpriv", {
        args: [
          "--reuid=65534",
          "--regid=65534",
          "--clear-groups",
          Deno.execPath(),
          "run",
          "-A",
          "--no-lock",
          new URL("../cli.ts", import.meta.url).pathname,
          "--repo",
          "/nonexistent",
          "mount",
          imageHex,
          mnt,
        ],
        env: { DENO_DIR: join(w, "deno-dir"), HOME: w },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const err = new TextDecoder().decode(nobody.stderr);
      assert.equal(nobody.code, 1, err);
      assert.match(err, /needs root/);
    });
  } finally {
    if (mounted(mnt)) unmountImage(mnt, { detach: true });
    await Deno.remove(w, { recursive: true });
  }
});

/**
 * End-to-end tests of `compute-id`, `create-dumpfile` and `create-image` on a real directory
 * tree, with `fsverity digest` and C `mkcomposefs` as oracles.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { readAllAt } from "../ffi/fs.ts";
import { runCli } from "../lib/cli/main.ts";
import { Output, type TextSink } from "../lib/cli/output.ts";
import { parseDumpfile, writeDumpfile } from "../lib/erofs/dumpfile.ts";
import { readErofs } from "../lib/erofs/reader.ts";
import { scanDirectory } from "../lib/erofs/scan.ts";
import { writeErofs } from "../lib/erofs/writer.ts";
import { openPath } from "../ffi/fs.ts";
import { cstr, libc } from "../ffi/libc.ts";
import * as C from "../ffi/constants.ts";
import { Repository } from "../lib/repository/repository.ts";

const MKCOMPOSEFS = join(
  Deno.env.get("CFS_SID_TOOLS") ?? "/var/tmp/cfs-sid-tools",
  "bin/mkcomposefs",
);

async function cli(args: string[]) {
  let out = "";
  let err = "";
  const stdout: TextSink = {
    write: (t) => (out += t),
    writeBytes: (b) => (out += new TextDecoder().decode(b)),
    isTerminal: () => false,
  };
  const stderr: TextSink = { write: (t) => (err += t), isTerminal: () => false };
  const code = await runCli(args, { output: new Output(stdout, stderr) });
  return { code, out, err };
}

async function tool(cmd: string, args: string[]): Promise<string> {
  let o;
  try {
    o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    throw new Error(`Required peer tool "${cmd}" could not run (install it; see .ci/run)`, {
      cause: e,
    });
  }
  if (!o.success) {
    throw new Error(`"${cmd} ${args.join(" ")}" failed: ${new TextDecoder().decode(o.stderr)}`);
  }
  return new TextDecoder().decode(o.stdout);
}

async function makeTree(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "erofs-cli-" });
  const t = join(dir, "tree");
  await Deno.mkdir(join(t, "usr/bin"), { recursive: true });
  await Deno.mkdir(join(t, "run/stale"), { recursive: true });
  await Deno.writeTextFile(join(t, "usr/small"), "hello small\n");
  await Deno.writeTextFile(join(t, "usr/big"), "B".repeat(100));
  await Deno.writeTextFile(join(t, "usr/exactly64"), "x".repeat(64));
  await Deno.writeFile(join(t, "usr/bin/tool"), new Uint8Array(70_000).fill(7));
  await Deno.link(join(t, "usr/big"), join(t, "usr/bin/big-link"));
  await Deno.symlink("../small", join(t, "usr/bin/link"));
  await Deno.chmod(join(t, "usr/bin/tool"), 0o4755);
  await tool("mkfifo", [join(t, "usr/fifo")]);
  await Deno.utime(join(t, "usr"), 1_700_000_000, 1_700_000_000);
  return dir;
}

Deno.test("create-dumpfile and compute-id agree with fsverity digest and mkcomposefs", async () => {
  const dir = await makeTree();
  try {
    const tree = join(dir, "tree");
    const raw = await cli([
      "--hash",
      "sha256",
      "create-dumpfile",
      "--no-propagate-usr-to-root",
      tree,
    ]);
    assert.equal(raw.code, 0, raw.err);
    const root = parseDumpfile(raw.out);
    const usr = root.entries.get("usr");
    assert.ok(usr?.type === "dir");
    const big = usr.entries.get("big");
    assert.ok(big?.type === "leaf" && big.content.kind === "regular");
    assert.equal(
      usr.entries.get("bin")?.type === "dir" &&
        (usr.entries.get("bin") as typeof usr).entries.get("big-link"),
      big,
      "hardlink tracked",
    );
    const c = big.content.content;
    assert.equal(c.kind, "external");
    const oracle = (await tool("fsverity", ["digest", join(tree, "usr/big")])).split(" ")[0];
    assert.equal(c.kind === "external" && `sha256:${c.digest.toHex()}`, oracle);
    const small = usr.entries.get("exactly64");
    assert.ok(
      small?.type === "leaf" && small.content.kind === "regular" &&
        small.content.content.kind === "inline",
    );

    // compute-id = fs-verity digest of C mkcomposefs's V1 image of the same dumpfile.
    const dumpPath = join(dir, "tree.dump");
    await Deno.writeTextFile(dumpPath, raw.out);
    await tool(MKCOMPOSEFS, ["--min-version=1", "--from-file", dumpPath, join(dir, "c.img")]);
    const cId = (await tool("fsverity", ["digest", join(dir, "c.img")])).split(" ")[0];
    const id = await cli(["--hash", "sha256", "compute-id", "--no-propagate-usr-to-root", tree]);
    assert.equal(id.code, 0, id.err);
    assert.equal(`sha256:${id.out.trim()}`, cId);

    // Default: /usr's metadata on the root, /run emptied, sha512 ids.
    const oci = await cli(["create-dumpfile", tree]);
    assert.equal(oci.code, 0, oci.err);
    const lines = oci.out.split("\n");
    assert.match(lines[0], /^\/ 0 40755 \d+ \d+ \d+ 0 1700000000\.0 - - -$/);
    assert.ok(lines.some((l) => l.startsWith("/run ")));
    assert.ok(!lines.some((l) => l.startsWith("/run/stale")));
    assert.match(oci.out, /\/usr\/big 100 100644 2 .* [0-9a-f]{128}\n/);
    const id512 = await cli(["compute-id", tree]);
    assert.match(id512.out, /^[0-9a-f]{128}\n$/);
    const v2 = await cli(["--erofs-version", "2", "compute-id", tree]);
    assert.notEqual(v2.out, id512.out);

    assert.equal((await cli(["compute-id", "--bootable", tree])).code, 2);
    assert.equal((await cli(["compute-id", "--xattrs", "bogus", tree])).code, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("create-image stores the objects and a named image that reads back as the tree", async () => {
  const dir = await makeTree();
  try {
    const repoPath = join(dir, "repo");
    const init = await cli(["init", "--insecure", repoPath]);
    assert.equal(init.code, 0, init.err);
    const tree = join(dir, "tree");
    const r = await cli(["--repo", repoPath, "--insecure", "create-image", tree, "myimage"]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^sha512:[0-9a-f]{128}\n$/);
    const expected = (await cli(["compute-id", tree])).out.trim();
    assert.equal(r.out.trim(), `sha512:${expected}`);
    using repo = await Repository.open(repoPath, { write: false, insecure: true });
    assert.deepEqual(repo.listImages().map((i) => i.name), ["myimage"]);
    using fd = repo.openImage("myimage");
    const bytes = readAllAt(fd);
    const back = readErofs(bytes, { strict: true });
    assert.equal(writeDumpfile(back.root), (await cli(["create-dumpfile", tree])).out);
    // Every external file's object is in the repository.
    const usr = back.root.entries.get("usr");
    assert.ok(usr?.type === "dir");
    for (const name of ["big"]) {
      const leaf = usr.entries.get(name);
      assert.ok(leaf?.type === "leaf" && leaf.content.kind === "regular");
      const c = leaf.content.content;
      assert.ok(c.kind === "external" && repo.hasObject(c.digest));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function setUserXattr(path: string, name: string, value: string): void {
  using fd = openPath(path, C.O_RDONLY);
  const v = new TextEncoder().encode(value);
  if (libc().fsetxattr(fd.fd, cstr(name), v, BigInt(v.length), 0) !== 0) {
    throw new Error(`fsetxattr ${name} on "${path}" failed`);
  }
}

Deno.test("scanDirectory with broken hardlinks equals mkcomposefs run on the directory", async () => {
  const dir = await makeTree();
  try {
    const tree = join(dir, "tree");
    setUserXattr(join(tree, "usr/small"), "user.foo", "bar");
    setUserXattr(join(tree, "usr/big"), "user.foo", "bar");
    setUserXattr(join(tree, "usr"), "user.dir", "x");
    const ours = writeErofs(scanDirectory(tree, { algorithm: "sha256", hardlinks: "break" }), {
      version: 1,
    });
    await tool(MKCOMPOSEFS, ["--min-version=1", tree, join(dir, "c.img")]);
    const theirs = await Deno.readFile(join(dir, "c.img"));
    assert.equal(ours.length, theirs.length);
    assert.ok(ours.every((b, i) => b === theirs[i]), "image bytes differ from mkcomposefs");
    // Tracked hardlinks (cfsctl's default) keep one inode for usr/big and usr/bin/big-link.
    const tracked = scanDirectory(tree, { algorithm: "sha256" });
    const usr = tracked.entries.get("usr");
    assert.ok(usr?.type === "dir");
    const bin = usr.entries.get("bin");
    assert.ok(bin?.type === "dir");
    assert.equal(bin.entries.get("big-link"), usr.entries.get("big"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

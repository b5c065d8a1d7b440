/**
 * DESIGN 7: `--allow-ffi` bypasses Deno's write scope, so the repository checks it itself.
 * A child with `--allow-ffi --allow-read --allow-write=/elsewhere` must be refused before it
 * writes anything.
 */

import assert from "node:assert/strict";

const CHILD = new URL("./repository_writer_child.ts", import.meta.url).pathname;

async function runChild(flags: string[], args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-check", ...flags, CHILD, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout).trim(),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("a writer without --allow-write for the repository is refused despite --allow-ffi", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cfs-perm-test-" });
  try {
    const elsewhere = `${dir}/elsewhere`;
    await Deno.mkdir(elsewhere);
    const flags = ["--allow-ffi", "--allow-read", `--allow-write=${elsewhere}`];

    // init of a new repository outside the write scope: refused, nothing created.
    const init = await runChild(flags, ["init", `${dir}/new-repo`]);
    assert.equal(init.code, 3, init.stdout + init.stderr);
    const e1 = JSON.parse(init.stdout);
    assert.equal(e1.name, "RepositoryPermissionError");
    assert.equal(e1.flag, `--allow-write=${dir}/new-repo`);
    assert.match(e1.message, /--allow-write=/);
    assert.throws(() => Deno.statSync(`${dir}/new-repo`), Deno.errors.NotFound);

    // An existing repository opened for writing: refused, directory unchanged.
    const repo = `${dir}/repo`;
    const ok = await runChild(["--allow-ffi", "--allow-read", `--allow-write=${repo}`], [
      "init",
      repo,
    ]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    const before = [...Deno.readDirSync(repo)].map((e) => e.name).sort();
    const open = await runChild(flags, ["open-write", repo]);
    assert.equal(open.code, 3, open.stdout + open.stderr);
    assert.equal(JSON.parse(open.stdout).name, "RepositoryPermissionError");
    const imp = await runChild(flags, ["import", repo, "1", "3"]);
    assert.equal(imp.code, 3);
    assert.deepEqual([...Deno.readDirSync(repo)].map((e) => e.name).sort(), before);

    // A symlink inside the write scope pointing at the repository does not widen the scope.
    await Deno.symlink(repo, `${elsewhere}/link`);
    const viaLink = await runChild(flags, ["open-write", `${elsewhere}/link`]);
    assert.equal(viaLink.code, 3, viaLink.stdout);
    assert.equal(JSON.parse(viaLink.stdout).flag, `--allow-write=${repo}`);

    // With the right scope the same child works.
    const good = await runChild(["--allow-ffi", "--allow-read", `--allow-write=${repo}`], [
      "import",
      repo,
      "1",
      "2",
    ]);
    assert.equal(good.code, 0, good.stdout + good.stderr);
    assert.equal(good.stdout, "READY\nDONE");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

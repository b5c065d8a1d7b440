/** `cfs oci pull containers-storage:…` through the CLI, with --local-fetch / --zerocopy. */

import assert from "node:assert/strict";
import { runCli } from "../lib/cli/main.ts";
import { Output, type TextSink } from "../lib/cli/output.ts";
import { tempDir } from "./_helpers.ts";
import { buildUmociLayout, copyToStore, FIXTURE_NAME } from "./_cstor_fixture.ts";

async function cli(args: string[]) {
  let out = "";
  let err = "";
  const stdout: TextSink = { write: (t) => (out += t), isTerminal: () => false };
  const stderr: TextSink = { write: (t) => (err += t), isTerminal: () => false };
  const code = await runCli(args, { output: new Output(stdout, stderr) });
  return { code, out, err };
}

Deno.test("cli: oci pull containers-storage: with --local-fetch and --zerocopy", async () => {
  await using tmp = await tempDir("cfs-cstor-cli-");
  const layout = await buildUmociLayout(tmp.path);
  const s = `${tmp.path}/s`;
  await copyToStore(layout, "v2", "vfs", `${s}/root`, `${s}/run`);
  const repo = `${tmp.path}/repo`;
  assert.equal((await cli(["init", "--insecure", repo])).code, 0);
  const src = `containers-storage:[vfs@${s}/root+${s}/run]${FIXTURE_NAME}:v2`;

  let r = await cli(["--repo", repo, "oci", "pull", "--local-fetch", "auto", src, "mine"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^manifest sha256:[0-9a-f]{64}$/m);
  assert.match(r.out, /^tagged {3}mine$/m);
  assert.match(
    r.out,
    /^objects {2}\d+ reflinked \+ \d+ hardlinked \+ \d+ copied \+ \d+ already present objects; 0 layers skipped/m,
  );

  r = await cli(["--repo", repo, "oci", "pull", "--json", src]);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.tag, src); // NAME defaults to the source
  assert.equal(j.layers.length, 2);
  assert.ok(j.layers.every((l: { skipped: boolean }) => l.skipped));
  assert.equal(j.store, `${s}/root`);

  r = await cli(["--repo", repo, "oci", "images", "--json"]);
  assert.equal(r.code, 0, r.err);
  assert.ok(r.out.includes('"mine"'));

  // Usage errors exit 2; a missing image exits 1 with a typed message.
  r = await cli(["--repo", repo, "oci", "pull", "--local-fetch", "nope", src]);
  assert.equal(r.code, 2);
  r = await cli(["--repo", repo, "oci", "pull", "--local-fetch", "disabled", src]);
  assert.equal(r.code, 2);
  assert.match(r.err, /skopeo image proxy/);
  r = await cli(["--repo", repo, "oci", "pull", "--zerocopy", `${src.slice(0, -1)}9`]);
  assert.equal(r.code, 1);
  assert.match(r.err, /not found in containers-storage/);
});

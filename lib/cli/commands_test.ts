import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import { COMMANDS } from "./commands.ts";

Deno.test("every command's implementation loads and is a function", async () => {
  assert.ok(COMMANDS.length > 20);
  for (const c of COMMANDS) {
    const run = await c.load();
    assert.equal(typeof run, "function", c.words.join(" "));
  }
});

Deno.test("command words are unique and no command is a prefix of another", () => {
  const keys = COMMANDS.map((c) => c.words.join(" "));
  assert.equal(new Set(keys).size, keys.length);
  for (const a of COMMANDS) {
    for (const b of COMMANDS) {
      if (a === b || b.words.length <= a.words.length) continue;
      assert.ok(
        !a.words.every((w, i) => b.words[i] === w),
        `"${a.words.join(" ")}" is a prefix of "${b.words.join(" ")}"`,
      );
    }
  }
});

/** What `cli.ts` may load before a command runs: the parser, the tree, output and errors. */
const STARTUP_MODULES = new Set([
  "cli.ts",
  "lib/cli/main.ts",
  "lib/cli/command.ts",
  "lib/cli/commands.ts",
  "lib/cli/errors.ts",
  "lib/cli/output.ts",
]);

Deno.test("cli.ts loads only the command tree at start-up, no library module", async () => {
  const root = fromFileUrl(new URL("../../", import.meta.url));
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "cli.ts"],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string }[];
  };
  const loaded = info.modules.map((m) => m.specifier)
    .filter((s) => s.startsWith("file://"))
    .map((s) => fromFileUrl(s).slice(root.length));
  assert.deepEqual(loaded.filter((m) => !STARTUP_MODULES.has(m)), []);
  assert.ok(loaded.includes("lib/cli/commands.ts"));
});

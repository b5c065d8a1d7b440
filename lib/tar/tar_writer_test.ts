import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { encodeTar } from "./tar_writer.ts";

async function gnuTarList(tar: Uint8Array, verbose = false): Promise<string> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/t.tar`, tar);
    const out = await new Deno.Command("tar", {
      args: [verbose ? "-tvf" : "-tf", `${dir}/t.tar`, "--numeric-owner"],
      env: { TZ: "UTC" },
    }).output();
    if (!out.success) throw new Error(`tar failed: ${new TextDecoder().decode(out.stderr)}`);
    return new TextDecoder().decode(out.stdout);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("tar_writer: GNU tar reads names, long names, links and sizes back", async () => {
  const long = "d/" + "x".repeat(120) + "/" + "y".repeat(120);
  const tar = encodeTar([
    { path: "d/", type: "dir", mode: 0o755 },
    {
      path: "d/a.txt",
      type: "file",
      content: new TextEncoder().encode("hello\n"),
      mtime: 1234567890,
    },
    { path: long, type: "file", content: new Uint8Array(5000).fill(7) },
    { path: "d/link", type: "symlink", linkname: "a.txt" },
    { path: "d/hard", type: "hardlink", linkname: "d/a.txt" },
    { path: "d/x", type: "file", content: new Uint8Array(1), xattrs: { "user.k": "v" } },
  ]);
  assertEquals(tar.length % 512, 0);
  const names = (await gnuTarList(tar)).trim().split("\n");
  assertEquals(names, ["d/", "d/a.txt", long, "d/link", "d/hard", "d/x"]);
  const verbose = await gnuTarList(tar, true);
  assertEquals(verbose.includes(" 5000 "), true);
  assertEquals(verbose.includes("d/link -> a.txt"), true);
});

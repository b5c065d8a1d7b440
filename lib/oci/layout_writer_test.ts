import { deepStrictEqual, equal } from "node:assert/strict";
import { writeOciLayout } from "./layout_writer.ts";
import { encodeTar } from "../tar/tar_writer.ts";

Deno.test("layout_writer: skopeo reads the layout and sees our digests", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const layers = [
      encodeTar([{ path: "etc/", type: "dir", mode: 0o755 }, {
        path: "etc/motd",
        type: "file",
        content: new TextEncoder().encode("hi\n"),
      }]),
      encodeTar([{ path: "big", type: "file", content: new Uint8Array(10000).fill(1) }]),
    ];
    const img = await writeOciLayout(`${dir}/layout`, layers, { tag: "demo" });
    const out = await new Deno.Command("skopeo", {
      args: ["inspect", `oci:${dir}/layout:demo`],
    }).output();
    equal(out.success, true, new TextDecoder().decode(out.stderr));
    const info = JSON.parse(new TextDecoder().decode(out.stdout));
    equal(info.Digest, img.manifestDigest);
    equal(info.Layers.length, 2);
    const cfg = await new Deno.Command("skopeo", {
      args: ["inspect", "--config", `oci:${dir}/layout:demo`],
    }).output();
    deepStrictEqual(
      JSON.parse(new TextDecoder().decode(cfg.stdout)).rootfs.diff_ids,
      img.diffIds,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

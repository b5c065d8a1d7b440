/**
 * The embedded demo image: a small multi-layer OCI image generated from a seed, so
 * `deno task demo` and the tests need no downloads and no external tools. Layers hold
 * directories, small (inline) and large (external) files, empty and 0600 files, symlinks,
 * hardlinks, a whiteout and an opaque directory.
 *
 * @module
 */

import type { TarEntry } from "../tar/tar_writer.ts";
import { encodeTar } from "../tar/tar_writer.ts";
import { writeOciLayout, type WrittenImage } from "../oci/layout_writer.ts";

/** Deterministic xorshift32 byte generator (content only needs to be reproducible). */
function prng(seed: number): (n: number) => Uint8Array {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    const out = new Uint8Array(n);
    const words = new Uint32Array(out.buffer, 0, n >>> 2);
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      words[i] = x >>> 0;
    }
    for (let i = words.length * 4; i < n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      out[i] = x & 0xff;
    }
    return out;
  };
}

/** Shape of the generated image. */
export interface DemoImageOptions {
  /** Seed of the content generator (default 1). */
  seed?: number;
  /** Files in the base layer (default 300). */
  files?: number;
  /** Largest file size in bytes (default 128 KiB). */
  maxFileSize?: number;
  /** gzip layers (default true). */
  gzip?: boolean;
}

/** The layers of the demo image as tar archives. */
export function demoLayers(opts: DemoImageOptions = {}): Uint8Array[] {
  const rand = prng(opts.seed ?? 1);
  const pick = (n: number) => new DataView(rand(4).buffer).getUint32(0, true) % n;
  const files = opts.files ?? 300;
  const maxSize = opts.maxFileSize ?? 128 * 1024;
  const sizes = [0, 1, 63, 64, 65, 4095, 4096, 4097];
  const base: TarEntry[] = [
    { path: "etc/", type: "dir", mode: 0o755 },
    { path: "usr/", type: "dir", mode: 0o755 },
    { path: "usr/lib/", type: "dir", mode: 0o755 },
    { path: "usr/share/", type: "dir", mode: 0o755 },
    { path: "var/", type: "dir", mode: 0o755 },
    { path: "var/cache/", type: "dir", mode: 0o755 },
    { path: "etc/hostname", type: "file", content: new TextEncoder().encode("cfs-demo\n") },
    { path: "etc/shadow", type: "file", mode: 0o600, content: rand(700) },
  ];
  for (let i = 0; i < files; i++) {
    const size = i < sizes.length ? sizes[i] : pick(maxSize);
    const dir = i % 3 === 0 ? "usr/lib" : "usr/share";
    base.push({
      path: `${dir}/file-${String(i).padStart(4, "0")}.bin`,
      type: "file",
      mode: i % 17 === 0 ? 0o600 : 0o644,
      mtime: 1700000000 + i,
      content: rand(size),
    });
  }
  base.push(
    { path: "usr/lib/link-to-first", type: "symlink", linkname: "file-0000.bin" },
    { path: "usr/lib/hardlink-to-first", type: "hardlink", linkname: "usr/lib/file-0000.bin" },
    { path: "var/cache/stale", type: "file", content: rand(5000) },
    { path: "var/cache/old/", type: "dir", mode: 0o755 },
    { path: "var/cache/old/a", type: "file", content: rand(100) },
  );
  const update: TarEntry[] = [
    { path: "etc/", type: "dir", mode: 0o755 },
    { path: "etc/hostname", type: "file", content: new TextEncoder().encode("cfs-demo-2\n") },
    { path: "var/", type: "dir", mode: 0o755 },
    { path: "var/cache/", type: "dir", mode: 0o755 },
    { path: "var/cache/.wh.stale", type: "file", content: new Uint8Array(0) },
    { path: "var/cache/old/", type: "dir", mode: 0o755 },
    { path: "var/cache/old/.wh..wh..opq", type: "file", content: new Uint8Array(0) },
    { path: "usr/", type: "dir", mode: 0o755 },
    { path: "usr/share/", type: "dir", mode: 0o755 },
    {
      path: "usr/share/" + "long-name-".repeat(12) + "file",
      type: "file",
      content: rand(3000),
      xattrs: { "user.demo": "1" },
    },
  ];
  const big: TarEntry[] = [
    { path: "opt/", type: "dir", mode: 0o755 },
    { path: "opt/big-1.bin", type: "file", content: rand(2 * maxSize + 12345) },
    { path: "opt/big-2.bin", type: "file", content: rand(4 * maxSize + 1) },
  ];
  return [encodeTar(base), encodeTar(update), encodeTar(big)];
}

/** Write the demo image as an OCI layout at `dir`, tagged `tag`. */
export async function writeDemoImage(
  dir: string,
  tag: string,
  opts: DemoImageOptions = {},
): Promise<WrittenImage> {
  return await writeOciLayout(dir, demoLayers(opts), { tag, gzip: opts.gzip ?? true });
}

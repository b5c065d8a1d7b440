/**
 * The layer transport end to end through a real pipe, as GetLayer runs it: GNU tar + its
 * directory → produceFromTar → encoder → pipe → decoder → reconstruct, checked by sha256.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { openDir, pipe } from "../ffi/fs.ts";
import { readableFromFd, writableToFd } from "../ffi/fd_stream.ts";
import { ErrnoError } from "../ffi/errno.ts";
import { openFdCount } from "../ffi/owned_fd.ts";
import { SplitdirfdstreamEncoderStream } from "../lib/splitdirfdstream/encoder.ts";
import { SplitdirfdstreamDecoderStream } from "../lib/splitdirfdstream/decoder.ts";
import { reconstruct } from "../lib/splitdirfdstream/reconstruct.ts";
import { produceFromTar } from "../lib/splitdirfdstream/produce_from_tar.ts";

async function makeTree(root: string): Promise<void> {
  await Deno.mkdir(`${root}/etc/app`, { recursive: true });
  const big = new Uint8Array(3 * 1024 * 1024 + 5).map((_, i) => (i * 13) & 0xff);
  await Deno.writeFile(`${root}/big.bin`, big);
  await Deno.writeTextFile(`${root}/etc/app/conf`, "key=value\n");
  await Deno.writeFile(`${root}/etc/app/empty`, new Uint8Array());
  await Deno.writeFile(`${root}/etc/shadow`, new TextEncoder().encode("root:*:1::::::\n"), {
    mode: 0o600,
  });
  await Deno.chmod(`${root}/etc/shadow`, 0o600);
  await Deno.symlink("app/conf", `${root}/etc/link`);
}

/** Start the process-wide event loop (its epoll and eventfd stay open) before counting fds. */
async function warmEventLoop(): Promise<void> {
  const p = pipe();
  // Read an empty pipe first, so the reader has to wait on the event loop.
  const got = new Response(readableFromFd(p.read)).bytes();
  await new Promise((r) => setTimeout(r, 10));
  const w = writableToFd(p.write).getWriter();
  await w.write(new Uint8Array([1]));
  await w.close();
  assert.equal((await got).length, 1);
}

async function gnuTar(root: string): Promise<Uint8Array> {
  const out = await new Deno.Command("tar", {
    args: ["--format=posix", "--sort=name", "-C", root, "-cf", "-", "."],
    stdout: "piped",
  }).output();
  assert.ok(out.success, "GNU tar failed");
  return out.stdout;
}

Deno.test("layer through a pipe: produce → encode → pipe → decode → reconstruct", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "sdfs-pipe-" });
  try {
    await makeTree(`${tmp}/tree`);
    const tar = await gnuTar(`${tmp}/tree`);
    await warmEventLoop();
    const before = openFdCount();
    {
      using dir = openDir(`${tmp}/tree`);
      const p = pipe();
      // Producer (GetLayer phase 1): writes the stream, then closes the write end.
      const produced = produceFromTar(ReadableStream.from([tar]), dir)
        .pipeThrough(new SplitdirfdstreamEncoderStream())
        .pipeTo(writableToFd(p.write));
      // Consumer: reads to EOF and rebuilds the tar with the dirfds region.
      const chunks = readableFromFd(p.read).pipeThrough(new SplitdirfdstreamDecoderStream());
      const h = createHash("sha256");
      for await (const b of reconstruct(chunks, [dir])) h.update(b);
      await produced;
      assert.equal(h.digest("hex"), createHash("sha256").update(tar).digest("hex"));
    }
    assert.equal(openFdCount(), before, "every fd closed");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a consumer that goes away makes the producer fail with EPIPE, not hang", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "sdfs-pipe-" });
  try {
    await makeTree(`${tmp}/tree`);
    // Make the stream mostly inline so it cannot fit in the pipe buffer.
    await Deno.chmod(`${tmp}/tree/big.bin`, 0o600);
    const tar = await gnuTar(`${tmp}/tree`);
    await warmEventLoop();
    const before = openFdCount();
    {
      using dir = openDir(`${tmp}/tree`);
      const p = pipe();
      const produced = produceFromTar(ReadableStream.from([tar]), dir)
        .pipeThrough(new SplitdirfdstreamEncoderStream())
        .pipeTo(writableToFd(p.write));
      const reader = readableFromFd(p.read).getReader();
      await reader.read();
      await reader.cancel(); // closes the read end
      await assert.rejects(produced, (e) => e instanceof ErrnoError && e.code === "EPIPE");
    }
    assert.equal(openFdCount(), before, "every fd closed");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

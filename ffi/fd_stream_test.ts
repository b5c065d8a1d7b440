import assert from "node:assert/strict";
import { readableFromFd, writableToFd } from "./fd_stream.ts";
import { openPath, pipe, read, writeAll } from "./fs.ts";
import { ErrnoError } from "./errno.ts";
import { eventLoopBusy, eventLoopIdle } from "./event_loop.ts";
import * as C from "./constants.ts";
import { assertNoFdLeak, pattern, tempDir } from "../tests/_helpers.ts";

async function sha256(b: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", b));
  return d.toHex();
}

Deno.test("fd_stream: 24 MiB round-trip writable → pipe → readable, fds closed at the end", async () => {
  await assertNoFdLeak(async () => {
    const p = pipe();
    const data = pattern(24 * 1024 * 1024 + 123, 7);
    const source = new ReadableStream<Uint8Array>({
      start(c) {
        // Uneven chunk sizes exercise partial writes.
        for (let off = 0; off < data.length; off += 300_001) {
          c.enqueue(data.subarray(off, off + 300_001));
        }
        c.close();
      },
    });
    const [, received] = await Promise.all([
      source.pipeTo(writableToFd(p.write)),
      new Response(readableFromFd(p.read)).arrayBuffer(),
    ]);
    assert.equal(received.byteLength, data.length);
    assert.equal(await sha256(new Uint8Array(received)), await sha256(data));
    assert.equal(p.read.closed, true);
    assert.equal(p.write.closed, true);
  });
});

Deno.test("fd_stream: back-pressure keeps memory bounded when the consumer does not read", async () => {
  await assertNoFdLeak(async () => {
    const p = pipe();
    const readable = readableFromFd(p.read); // F_SETPIPE_SZ 1 MiB
    const writer = writableToFd(p.write).getWriter();
    const chunk = new Uint8Array(256 * 1024);
    let written = 0;
    // Keep writing until a write has not completed for 100 ms: the pipe and the queue are full.
    for (;;) {
      await writer.ready;
      const done = writer.write(chunk).then(() => true);
      const stalled = await Promise.race([
        done.then(() => false),
        new Promise<boolean>((r) => setTimeout(() => r(true), 100)),
      ]);
      if (stalled) break;
      written += chunk.length;
      assert.ok(written <= 8 * 1024 * 1024, `writer never blocked after ${written} bytes`);
    }
    // Pipe (1 MiB) + writable queue (1 MiB) + at most one chunk in flight.
    assert.ok(written >= 1024 * 1024, `pipe was not enlarged to 1 MiB: ${written}`);
    assert.ok(written <= 3 * 1024 * 1024, `${written} bytes accepted without a reader`);
    const reader = readable.getReader();
    const first = await reader.read();
    assert.ok(first.value && first.value.length <= 1024 * 1024);
    await reader.cancel();
    await writer.abort();
    await eventLoopIdle();
    assert.equal(eventLoopBusy(), false);
  });
});

Deno.test("fd_stream: cancel while waiting closes the fd and leaves nothing pending", async () => {
  await assertNoFdLeak(async () => {
    const p = pipe();
    using w = p.write;
    const reader = readableFromFd(p.read).getReader();
    const pending = reader.read();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(eventLoopBusy(), true);
    await reader.cancel();
    assert.deepEqual(await pending, { done: true, value: undefined });
    assert.equal(p.read.closed, true);
    await eventLoopIdle();
    assert.equal(eventLoopBusy(), false);
    void w;
  });
});

Deno.test("fd_stream: BYOB reads fill the caller's buffer", async () => {
  await assertNoFdLeak(async () => {
    const p = pipe();
    writeAll(p.write, new TextEncoder().encode("abcdefgh"));
    p.write.close();
    const reader = readableFromFd(p.read).getReader({ mode: "byob" });
    const r1 = await reader.read(new Uint8Array(3));
    assert.equal(new TextDecoder().decode(r1.value), "abc");
    const r2 = await reader.read(new Uint8Array(100));
    assert.equal(new TextDecoder().decode(r2.value), "defgh");
    const r3 = await reader.read(new Uint8Array(10));
    assert.equal(r3.done, true);
    assert.equal(p.read.closed, true);
  });
});

Deno.test("fd_stream: small reads are copied out, not 1 MiB buffers each", async () => {
  await assertNoFdLeak(async () => {
    const p = pipe();
    const reader = readableFromFd(p.read).getReader();
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < 5; i++) {
      writeAll(p.write, new Uint8Array([i]));
      const { value } = await reader.read();
      chunks.push(value!);
    }
    p.write.close();
    assert.equal((await reader.read()).done, true);
    for (const [i, c] of chunks.entries()) {
      assert.deepEqual([...c], [i]);
      assert.equal(c.buffer.byteLength, 1);
    }
  });
});

Deno.test("fd_stream: writing to a pipe without reader fails with EPIPE and closes the fd", async () => {
  await assertNoFdLeak(async () => {
    const p = pipe();
    p.read.close();
    const writer = writableToFd(p.write).getWriter();
    await assert.rejects(
      writer.write(new Uint8Array(10)),
      (e) => e instanceof ErrnoError && e.is("EPIPE"),
    );
    assert.equal(p.write.closed, true);
  });
});

Deno.test("fd_stream: a regular file streams without epoll", async () => {
  await using dir = await tempDir();
  const data = pattern(3 * 1024 * 1024 + 5, 3);
  await Deno.writeFile(`${dir.path}/f`, data);
  await assertNoFdLeak(async () => {
    const fd = openPath(`${dir.path}/f`, C.O_RDONLY);
    const got = new Uint8Array(await new Response(readableFromFd(fd)).arrayBuffer());
    assert.equal(await sha256(got), await sha256(data));
    const out = openPath(`${dir.path}/g`, C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o644);
    await new Response(data).body!.pipeTo(writableToFd(out));
    using again = openPath(`${dir.path}/g`, C.O_RDONLY);
    const head = new Uint8Array(16);
    assert.equal(read(again, head), 16);
    assert.deepEqual(head, data.subarray(0, 16));
  });
});

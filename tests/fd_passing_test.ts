import assert from "node:assert/strict";
import { UnixSocket } from "../ffi/socket.ts";
import { openDir, pipe, read, write } from "../ffi/fs.ts";
import { writableToFd } from "../ffi/fd_stream.ts";
import { fileURLToPath } from "node:url";
import { assertNoFdLeak, tempDir } from "./_helpers.ts";

const CHILD = fileURLToPath(new URL("./fd_passing_child.ts", import.meta.url));
/** Child startup (Deno boot + type stripping) plus the exchange; generous for a loaded CI box. */
const CHILD_TIMEOUT_MS = 45_000;

/** Read from `s` until a newline; returns the line without it. */
async function recvLine(s: UnixSocket): Promise<string> {
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(4096);
  for (;;) {
    const { n, fds } = await s.recvMessage(buf);
    for (const f of fds) f.close();
    if (n === 0) throw new Error("Child closed before sending its report");
    parts.push(buf.slice(0, n));
    if (buf[n - 1] === 0x0a) break;
  }
  const all = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length;
  }
  return new TextDecoder().decode(all).trimEnd();
}

Deno.test("fd passing: a dirfd and a pipe go to another Deno process; 240 fds round-trip", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(`${dir.path}/sub`);
  await Deno.writeTextFile(`${dir.path}/sub/hello.txt`, "hello beneath\n");
  await assertNoFdLeak(async () => {
    const signal = AbortSignal.timeout(CHILD_TIMEOUT_MS);
    using listener = UnixSocket.listen(`${dir.path}/parent.sock`);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CHILD, `${dir.path}/parent.sock`],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const output = child.output();
    try {
      using conn = await listener.accept(signal);
      assert.equal(conn.peerCredentials().pid, child.pid);

      // One message: payload "DIR+PIPE" carrying [dirfd, pipe read end].
      {
        using d = openDir(dir.path);
        const p = pipe();
        using r = p.read;
        await conn.sendMessage(new TextEncoder().encode("DIR+PIPE"), [d, r], signal);
        // Our copy of the read end closes here; the child's copy keeps the pipe open.
        const w = writableToFd(p.write).getWriter();
        await w.write(new TextEncoder().encode("bytes through "));
        await w.write(new TextEncoder().encode("the passed pipe\n"));
        await w.close();
      }
      const report = JSON.parse(await recvLine(conn));
      assert.deepEqual(report.payload, "DIR+PIPE");
      assert.equal(report.fdCount, 2);
      assert.equal(report.hello, "hello beneath\n");
      assert.equal(report.piped, "bytes through the passed pipe\n");
      assert.equal(report.pid, child.pid);
      assert.equal(report.parent.pid, Deno.pid);

      // 240 pipe read ends in one message; the child sends them all back in one message.
      const pipes = Array.from({ length: 240 }, () => pipe());
      try {
        await conn.sendMessage(new TextEncoder().encode("FDS"), pipes.map((p) => p.read), signal);
        const buf = new Uint8Array(64);
        const back = await conn.recvMessage(buf, { signal });
        try {
          assert.equal(new TextDecoder().decode(buf.subarray(0, back.n)), "FDS:240");
          assert.equal(back.fds.length, 240);
          for (let i = 0; i < 240; i++) write(pipes[i].write, new Uint8Array([i]));
          for (let i = 0; i < 240; i++) {
            const one = new Uint8Array(1);
            assert.equal(read(back.fds[i], one), 1);
            assert.equal(one[0], i, `fd #${i} came back as another pipe`);
          }
        } finally {
          for (const f of back.fds) f.close();
        }
      } finally {
        for (const p of pipes) {
          p.read.close();
          p.write.close();
        }
      }
      conn.shutdown("both");
    } catch (e) {
      child.kill("SIGKILL");
      const out = await output;
      throw new Error(`Parent side failed; child stderr: ${new TextDecoder().decode(out.stderr)}`, {
        cause: e,
      });
    }
    const out = await output;
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  });
});

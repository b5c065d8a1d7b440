import assert from "node:assert/strict";
import {
  ControlTruncatedError,
  MessageTruncatedError,
  SocketClosedError,
  UnixSocket,
} from "./socket.ts";
import { fstat, pipe, read, write } from "./fs.ts";
import type { BorrowedFd, OwnedFd } from "./owned_fd.ts";
import { eventLoopBusy, eventLoopIdle } from "./event_loop.ts";
import { ErrnoError } from "./errno.ts";
import { libc } from "./libc.ts";
import * as C from "./constants.ts";
import { assertNoFdLeak, tempDir } from "../tests/_helpers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Receive until `want` bytes arrived; collects every fd. */
async function recvExactly(
  s: UnixSocket,
  want: number,
): Promise<{ bytes: Uint8Array; fds: OwnedFd[] }> {
  const out = new Uint8Array(want);
  const fds: OwnedFd[] = [];
  let off = 0;
  while (off < want) {
    const buf = new Uint8Array(want - off);
    const { n, fds: got } = await s.recvMessage(buf);
    fds.push(...got);
    if (n === 0) throw new Error(`EOF after ${off} of ${want} bytes`);
    out.set(buf.subarray(0, n), off);
    off += n;
  }
  return { bytes: out, fds };
}

Deno.test("socket: pair carries bytes and fds; received fds refer to the same pipe", async () => {
  await assertNoFdLeak(async () => {
    const [a, b] = UnixSocket.pair();
    using _a = a;
    using _b = b;
    const p = pipe();
    using r = p.read;
    using w = p.write;
    await a.sendMessage(enc.encode("PIPE"), [r]);
    const buf = new Uint8Array(64);
    const msg = await b.recvMessage(buf);
    assert.equal(dec.decode(buf.subarray(0, msg.n)), "PIPE");
    assert.equal(msg.fds.length, 1);
    using got = msg.fds[0];
    assert.equal(fstat(got).ino, fstat(r).ino);
    write(w, enc.encode("through"));
    const out = new Uint8Array(16);
    const n = read(got, out);
    assert.equal(dec.decode(out.subarray(0, n)), "through");
  });
});

Deno.test("socket: 240 and 253 fds in one message round-trip, and 254 are refused", async () => {
  await assertNoFdLeak(async () => {
    const [a, b] = UnixSocket.pair();
    using _a = a;
    using _b = b;
    const pipes = Array.from({ length: 240 }, () => pipe());
    try {
      await a.sendMessage(new Uint8Array([42]), pipes.map((p) => p.read));
      const buf = new Uint8Array(1);
      const { n, fds } = await b.recvMessage(buf);
      try {
        assert.equal(n, 1);
        assert.equal(fds.length, 240);
        // Each received fd is the read end of the pipe at the same index.
        for (let i = 0; i < 240; i++) write(pipes[i].write, new Uint8Array([i & 0xff]));
        for (let i = 0; i < 240; i++) {
          const one = new Uint8Array(1);
          assert.equal(read(fds[i], one), 1);
          assert.equal(one[0], i & 0xff);
        }
      } finally {
        for (const f of fds) f.close();
      }
      // 253 (SCM_MAX_FD) is the kernel's limit and still goes through.
      await a.sendMessage(
        new Uint8Array([7]),
        Array.from({ length: 253 }, (_, i) => pipes[i % 240].read),
      );
      const max = await b.recvMessage(new Uint8Array(1));
      assert.equal(max.fds.length, 253);
      for (const f of max.fds) f.close();
      const many = Array.from({ length: 254 }, () => pipes[0].read);
      await assert.rejects(a.sendMessage(new Uint8Array([1]), many), RangeError);
    } finally {
      for (const p of pipes) {
        p.read.close();
        p.write.close();
      }
    }
  });
});

Deno.test("socket: MSG_CTRUNC is a typed error and leaves no fd behind", async () => {
  await assertNoFdLeak(async () => {
    const [a, b] = UnixSocket.pair();
    using _a = a;
    using _b = b;
    const p = pipe();
    using r = p.read;
    using w = p.write;
    await a.sendMessage(new Uint8Array([1]), Array.from({ length: 10 }, () => r));
    const err = await b.recvMessage(new Uint8Array(8), { maxFds: 4 }).then(
      () => assert.fail("expected ControlTruncatedError"),
      (e) => e,
    );
    assert.ok(err instanceof ControlTruncatedError, String(err));
    assert.equal(err.capacity, 4);
    assert.equal(err.received, 4);
    void w;
  });
});

Deno.test("socket: listen/connect/accept over a path, peer credentials, EOF", async () => {
  await using dir = await tempDir();
  await assertNoFdLeak(async () => {
    const path = `${dir.path}/s.sock`;
    using listener = UnixSocket.listen(path);
    const accepted = listener.accept();
    using client = await UnixSocket.connect(path);
    using server = await accepted;
    const cred = server.peerCredentials();
    assert.equal(cred.pid, Deno.pid);
    assert.equal(cred.uid, Deno.uid());
    assert.equal(cred.gid, Deno.gid());
    await client.sendMessage(enc.encode("hello"));
    const got = await recvExactly(server, 5);
    assert.equal(dec.decode(got.bytes), "hello");
    client.shutdown("write");
    assert.equal((await server.recvMessage(new Uint8Array(4))).n, 0);
    // A second listener on the same path is refused.
    assert.throws(
      () => UnixSocket.listen(path),
      (e) => e instanceof ErrnoError && e.is("EADDRINUSE"),
    );
    await assert.rejects(
      UnixSocket.connect(`${dir.path}/missing.sock`),
      (e) => e instanceof ErrnoError && e.is("ENOENT"),
    );
  });
});

Deno.test("socket: a large send completes through back-pressure; fds ride on the first byte", async () => {
  await assertNoFdLeak(async () => {
    const [a, b] = UnixSocket.pair();
    using _a = a;
    using _b = b;
    const p = pipe();
    using r = p.read;
    p.write.close();
    const big = new Uint8Array(8 * 1024 * 1024).map((_, i) => (i * 7) & 0xff);
    const sending = a.sendMessage(big, [r]);
    const got = await recvExactly(b, big.length);
    await sending;
    assert.equal(got.fds.length, 1);
    assert.equal(fstat(got.fds[0]).ino, fstat(r).ino);
    for (const f of got.fds) f.close();
    assert.deepEqual(got.bytes, big);
  });
});

Deno.test("socket: waits abort and close cancels them; nothing stays pending", async () => {
  await assertNoFdLeak(async () => {
    const [a, b] = UnixSocket.pair();
    using _b = b;
    const ac = new AbortController();
    const waiting = a.recvMessage(new Uint8Array(4), { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(eventLoopBusy(), true);
    ac.abort(new Error("stop"));
    await assert.rejects(waiting, /stop/);
    await eventLoopIdle();
    assert.equal(eventLoopBusy(), false);

    const waiting2 = a.recvMessage(new Uint8Array(4));
    await new Promise((r) => setTimeout(r, 5));
    a.close();
    await assert.rejects(waiting2, SocketClosedError);
    await eventLoopIdle();
    assert.equal(eventLoopBusy(), false);
  });
});

Deno.test("socket: concurrent senders do not interleave their bytes", async () => {
  await assertNoFdLeak(async () => {
    const [a, b] = UnixSocket.pair();
    using _a = a;
    using _b = b;
    const m1 = new Uint8Array(300_000).fill(1);
    const m2 = new Uint8Array(300_000).fill(2);
    const sends = Promise.all([a.sendMessage(m1), a.sendMessage(m2)]);
    const got = await recvExactly(b, 600_000);
    await sends;
    assert.ok(got.bytes.subarray(0, 300_000).every((x) => x === 1));
    assert.ok(got.bytes.subarray(300_000).every((x) => x === 2));
  });
});

Deno.test("socket: every socket and received fd is close-on-exec and non-blocking", async () => {
  await using dir = await tempDir();
  const cloexec = (f: BorrowedFd) => (libc().fcntl(f.fd, C.F_GETFD, 0n) & C.FD_CLOEXEC) !== 0;
  const nonblock = (f: BorrowedFd) => (libc().fcntl(f.fd, C.F_GETFL, 0n) & C.O_NONBLOCK) !== 0;
  await assertNoFdLeak(async () => {
    using listener = UnixSocket.listen(`${dir.path}/c.sock`);
    const accepting = listener.accept();
    using client = await UnixSocket.connect(`${dir.path}/c.sock`);
    using server = await accepting;
    const [a, b] = UnixSocket.pair();
    using _a = a;
    using _b = b;
    for (const s of [listener, client, server, a, b]) {
      assert.ok(cloexec(s.ownedFd), "socket without FD_CLOEXEC");
      assert.ok(nonblock(s.ownedFd), "socket without O_NONBLOCK");
    }
    const p = pipe();
    using r = p.read;
    using w = p.write;
    // Make the sent fd inheritable: the received copy must still come back close-on-exec.
    libc().fcntl(r.fd, C.F_SETFD, 0n);
    await client.sendMessage(new Uint8Array([1]), [r, w]);
    const got = await server.recvMessage(new Uint8Array(1));
    using stack = new DisposableStack();
    for (const f of got.fds) stack.use(f);
    assert.equal(got.fds.length, 2);
    assert.ok(got.fds.every(cloexec), "received fd without FD_CLOEXEC");
    // fromFd adopts a socket fd (e.g. one received over SCM_RIGHTS) and makes it non-blocking.
    const [x, y] = UnixSocket.pair();
    using _y = y;
    await a.sendMessage(new Uint8Array([2]), [x.ownedFd]);
    x.close();
    const passed = await b.recvMessage(new Uint8Array(1));
    using adopted = UnixSocket.fromFd(passed.fds[0]);
    await adopted.sendMessage(new TextEncoder().encode("via passed socket"));
    const buf = new Uint8Array(64);
    const m = await y.recvMessage(buf);
    assert.equal(new TextDecoder().decode(buf.subarray(0, m.n)), "via passed socket");
  });
});

Deno.test("socket: seqpacket keeps message boundaries and reports truncation", async () => {
  await assertNoFdLeak(async () => {
    const [a, b] = UnixSocket.pair({ type: "seqpacket" });
    using _a = a;
    using _b = b;
    await a.sendMessage(enc.encode("one"));
    await a.sendMessage(enc.encode("two!"));
    const buf = new Uint8Array(64);
    assert.equal((await b.recvMessage(buf)).n, 3);
    assert.equal(dec.decode(buf.subarray(0, 3)), "one");
    assert.equal((await b.recvMessage(buf)).n, 4);
    assert.equal(dec.decode(buf.subarray(0, 4)), "two!");
    const p = pipe();
    using r = p.read;
    using _w = p.write;
    await a.sendMessage(enc.encode("too long for the buffer"), [r]);
    await assert.rejects(b.recvMessage(new Uint8Array(4)), MessageTruncatedError);
  });
});

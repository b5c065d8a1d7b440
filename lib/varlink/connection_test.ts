import assert from "node:assert/strict";
import { UnixSocket } from "../../ffi/socket.ts";
import { fstat, pipe } from "../../ffi/fs.ts";
import { VarlinkConnection } from "./connection.ts";
import { encodeCall } from "./protocol.ts";
import { VarlinkTransportError } from "./errors.ts";
import { assertNoFdLeak } from "../../tests/_helpers.ts";

const dec = new TextDecoder();
const enc = new TextEncoder();

Deno.test("VarlinkConnection binds each message's fds to it over a real socket", async () => {
  await assertNoFdLeak(async () => {
    const [a, b] = UnixSocket.pair();
    using ca = new VarlinkConnection(a);
    using cb = new VarlinkConnection(b);
    const p = pipe();
    const q = pipe();
    const inoP = fstat(p.read).ino;
    const inoQ = fstat(q.read).ino;
    // Lock step, as composefs does while fds are in flight.
    await ca.write(encodeCall("a.b.First"), [p.read, p.write]);
    assert.ok(p.read.closed && p.write.closed, "sent fds are closed locally");
    const m1 = await cb.read();
    assert.equal(JSON.parse(dec.decode(m1!.bytes)).method, "a.b.First");
    assert.equal(m1!.fds.length, 2);
    assert.equal(fstat(m1!.fds[0]).ino, inoP);
    for (const f of m1!.fds) f.close();
    // A message larger than one receive, fds on its first byte, then a plain one.
    const big = encodeCall("a.b.Big", { data: "x".repeat(200_000) });
    await Promise.all([ca.write(big, [q.read]), ca.write(encodeCall("a.b.After"))]);
    q.write.close();
    const m2 = await cb.read();
    assert.equal(m2!.bytes.length, big.length - 1);
    assert.equal(m2!.fds.length, 1);
    assert.equal(fstat(m2!.fds[0]).ino, inoQ);
    m2!.fds[0].close();
    const m3 = await cb.read();
    assert.deepEqual([JSON.parse(dec.decode(m3!.bytes)).method, m3!.fds.length], ["a.b.After", 0]);
    ca.close();
    assert.equal(await cb.read(), null, "clean EOF between messages");
  });
});

Deno.test("VarlinkConnection reports a peer that vanished mid-message and closes held fds", async () => {
  await assertNoFdLeak(async () => {
    const [a, b] = UnixSocket.pair();
    using conn = new VarlinkConnection(b);
    const p = pipe();
    await a.sendMessage(enc.encode('{"method":'), [p.read]);
    p.read.close();
    p.write.close();
    a.close();
    await assert.rejects(conn.read(), (e: unknown) => {
      assert.ok(e instanceof VarlinkTransportError);
      assert.equal(e.reason, "closed");
      assert.match(e.message, /inside a message/);
      return true;
    });
  });
});

Deno.test("VarlinkConnection.write on a closed connection closes the fds and rejects", async () => {
  await assertNoFdLeak(async () => {
    const [a, b] = UnixSocket.pair();
    b.close();
    const conn = new VarlinkConnection(a);
    conn.close();
    const p = pipe();
    await assert.rejects(
      conn.write(encodeCall("a.b.C"), [p.read]),
      (e: unknown) => e instanceof VarlinkTransportError && e.reason === "closed",
    );
    assert.ok(p.read.closed);
    p.write.close();
  });
});

Deno.test("VarlinkConnection enforces the message size limit as a protocol error", async () => {
  await assertNoFdLeak(async () => {
    const [a, b] = UnixSocket.pair();
    using _a = a;
    using conn = new VarlinkConnection(b, { maxMessageSize: 1024 });
    await a.sendMessage(enc.encode("x".repeat(2048)));
    await assert.rejects(
      conn.read(),
      (e: unknown) => e instanceof VarlinkTransportError && e.reason === "protocol",
    );
  });
});

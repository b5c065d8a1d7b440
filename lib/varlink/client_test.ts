import assert from "node:assert/strict";
import { UnixSocket } from "../../ffi/socket.ts";
import { pipe } from "../../ffi/fs.ts";
import { parseAddress, VarlinkClient } from "./client.ts";
import { VarlinkServer } from "./server.ts";
import { VarlinkTransportError } from "./errors.ts";
import { assertNoFdLeak } from "../../tests/_helpers.ts";
import { testService } from "../../tests/_varlink_fixture.ts";

const enc = new TextEncoder();

Deno.test("parseAddress() accepts unix: and paths, rejects other transports", () => {
  assert.deepEqual(parseAddress("/run/x.sock"), { path: "/run/x.sock" });
  assert.deepEqual(parseAddress("unix:/run/x.sock"), { path: "/run/x.sock" });
  assert.deepEqual(parseAddress("unix:@abstract"), { path: "\0abstract" });
  assert.deepEqual(parseAddress("rel/x.sock"), { path: "rel/x.sock" });
  assert.throws(() => parseAddress("tcp:1.2.3.4:5"), TypeError);
  assert.throws(() => parseAddress("unix:"), TypeError);
});

Deno.test("callMore() abandoned early closes the connection; later calls fail cleanly", async () => {
  await assertNoFdLeak(async () => {
    const { service } = testService();
    const server = new VarlinkServer(service);
    const [a, b] = UnixSocket.pair();
    const served = server.serveConnection(a);
    const client = new VarlinkClient(b);
    for await (const f of client.callMore("org.cfs.Test.Count", { n: 50 })) {
      assert.equal(f.parameters.i, 0);
      break;
    }
    assert.ok(client.closed);
    const p = pipe();
    await assert.rejects(
      client.call("org.cfs.Test.Ping", { n: 1 }, { fds: [p.read] }),
      (e: unknown) => e instanceof VarlinkTransportError && e.reason === "closed",
    );
    assert.ok(p.read.closed, "fds of a call that cannot be sent are closed");
    p.write.close();
    await served;
    await server.close();
  });
});

Deno.test("calls on one client are serialised, never pipelined", async () => {
  await assertNoFdLeak(async () => {
    const { service } = testService();
    const server = new VarlinkServer(service);
    const [a, b] = UnixSocket.pair();
    const served = server.serveConnection(a);
    using client = new VarlinkClient(b);
    const slow = client.call("org.cfs.Test.Slow", { ms: 30 });
    const fast = client.call("org.cfs.Test.Ping", { n: 2 });
    const order: string[] = [];
    await Promise.all([
      slow.then(() => order.push("slow")),
      fast.then(() => order.push("fast")),
    ]);
    assert.deepEqual(order, ["slow", "fast"]);
    client.close();
    await served;
    await server.close();
  });
});

Deno.test("a reply that breaks the protocol fails the call and the client", async () => {
  await assertNoFdLeak(async () => {
    const bad = [
      '{"parameters":{},"continues":true}\0', // continues without more
      '{"parameters":{},"bogus":1}\0', // foreign key
      "not json\0",
    ];
    for (const reply of bad) {
      const [a, b] = UnixSocket.pair();
      using _a = a;
      using client = new VarlinkClient(b);
      const call = client.call("a.b.C");
      await a.recvMessage(new Uint8Array(1024));
      await a.sendMessage(enc.encode(reply));
      await assert.rejects(
        call,
        (e: unknown) => e instanceof VarlinkTransportError && e.reason === "protocol",
        reply,
      );
      assert.ok(client.closed);
    }
  });
});

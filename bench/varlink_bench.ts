/**
 * Small-call latency of our varlink stack (client → server → client, one `org.cfs.Test.Ping`
 * round trip over a unix stream socket in this process, both ends on the epoll loop) against
 * the floor: Deno's native unix socket (`Deno.listen`/`Deno.connect`, which cannot pass fds)
 * echoing the same NUL-terminated JSON bytes, also in this process. Also measured: the codec
 * alone (encode a call, split it, decode it) and `varlinkctl call` as the peer-tool anchor
 * (process start-up dominates it). A second group puts each server in a child process.
 *
 * Run: `deno bench -A bench/varlink_bench.ts`; `deno bench --json` gives avg/p75/p99.
 */

import { VarlinkServer } from "../lib/varlink/server.ts";
import { VarlinkClient } from "../lib/varlink/client.ts";
import { decodeCall, encodeCall, encodeReply, MessageSplitter } from "../lib/varlink/protocol.ts";
import { testService } from "../tests/_varlink_fixture.ts";
import { requireCommand } from "../tests/_helpers.ts";

const tmp = await Deno.makeTempDir({ prefix: "cfs-varlink-bench-" });
const ourPath = `${tmp}/ours.sock`;
const nativePath = `${tmp}/native.sock`;

// Our server and client.
const { service } = testService();
const server = new VarlinkServer(service);
server.listen(ourPath);
const client = await VarlinkClient.connect(ourPath);

// Native echo server: answers each NUL-terminated message with a fixed reply.
const reply = encodeReply({ n: 1 }, false);
const listener = Deno.listen({ transport: "unix", path: nativePath });
(async () => {
  for await (const conn of listener) {
    (async () => {
      const buf = new Uint8Array(65536);
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        for (let i = 0; i < n; i++) if (buf[i] === 0) await conn.write(reply);
      }
      conn.close();
    })();
  }
})();
const native = await Deno.connect({ transport: "unix", path: nativePath });
const nativeBuf = new Uint8Array(65536);
const call = encodeCall("org.cfs.Test.Ping", { n: 1 });

// The same two servers in child processes (a more realistic deployment): `cfs varlink` and a
// Deno echo server, each called from this process.
const cli = new URL("../cli.ts", import.meta.url).pathname;
const childOurs = `${tmp}/child-ours.sock`;
const childNative = `${tmp}/child-native.sock`;
const ECHO = `const reply = new TextEncoder().encode('{"parameters":{"n":1},"continues":false}\\0');
const l = Deno.listen({ transport: "unix", path: Deno.args[0] });
for await (const c of l) (async () => {
  const buf = new Uint8Array(65536);
  for (;;) {
    const n = await c.read(buf);
    if (n === null) break;
    for (let i = 0; i < n; i++) if (buf[i] === 0) await c.write(reply);
  }
})();`;
const children = [
  new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cli, "varlink", "--address", childOurs],
    stdout: "null",
    stderr: "null",
  }).spawn(),
  new Deno.Command(Deno.execPath(), {
    args: ["eval", ECHO, childNative],
    stdout: "null",
    stderr: "null",
  }).spawn(),
];
async function waitFor(path: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    try {
      await Deno.stat(path);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  throw new Error(`Child server did not create "${path}"`);
}
await waitFor(childOurs);
await waitFor(childNative);
const childClient = await VarlinkClient.connect(childOurs);
const childNativeConn = await Deno.connect({ transport: "unix", path: childNative });
const getInfo = encodeCall("org.varlink.service.GetInfo");

addEventListener("unload", () => {
  client.close();
  childClient.close();
  native.close();
  childNativeConn.close();
  listener.close();
  for (const c of children) c.kill("SIGTERM");
  Deno.removeSync(tmp, { recursive: true });
});

Deno.bench({
  group: "small call round trip, server in a child process",
  name: "Deno native unix socket (echo child)",
  baseline: true,
  async fn() {
    await childNativeConn.write(getInfo);
    for (;;) {
      const n = await childNativeConn.read(nativeBuf);
      if (n === null) throw new Error("Native echo child closed");
      if (nativeBuf[n - 1] === 0) return;
    }
  },
});

Deno.bench({
  group: "small call round trip, server in a child process",
  name: "cfs varlink client → cfs varlink (org.varlink.service.GetInfo)",
  async fn() {
    const r = await childClient.call("org.varlink.service.GetInfo");
    if (r.parameters.product !== "cfsctl") throw new Error("Wrong reply");
  },
});

Deno.bench({
  group: "small call round trip",
  name: "Deno native unix socket (echo, no fd passing)",
  baseline: true,
  async fn() {
    await native.write(call);
    for (;;) {
      const n = await native.read(nativeBuf);
      if (n === null) throw new Error("Native echo server closed");
      if (nativeBuf[n - 1] === 0) return;
    }
  },
});

Deno.bench({
  group: "small call round trip",
  name: "cfs varlink client + server (FFI sockets, epoll loop)",
  async fn() {
    const r = await client.call("org.cfs.Test.Ping", { n: 1 });
    if (r.parameters.n !== 1) throw new Error("Wrong reply");
  },
});

const varlinkctl = requireCommand("varlinkctl");
Deno.bench({
  group: "small call round trip",
  name: "varlinkctl call (process per call)",
  n: 50,
  async fn() {
    const out = await new Deno.Command(varlinkctl, {
      args: ["call", ourPath, "org.cfs.Test.Ping", '{"n":1}'],
      stdout: "null",
      stderr: "null",
    }).output();
    if (!out.success) throw new Error("varlinkctl call failed");
  },
});

Deno.bench({
  group: "codec",
  name: "encode + split + decode one call",
  baseline: true,
  fn() {
    const s = new MessageSplitter<never>();
    const [m] = s.push(encodeCall("org.cfs.Test.Ping", { n: 1 }), []);
    decodeCall(m.bytes);
  },
});

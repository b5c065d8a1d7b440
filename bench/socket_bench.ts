/**
 * Small-message (100-byte) round trips over the socket layer against Deno's own unix socket
 * (`Deno.listen`/`Deno.connect`, transport "unix", which cannot carry fds).
 *
 * - "in-process": both ends in this isolate, strictly alternating, so data is always there when
 *   read: the cost of the syscalls and the JS around them.
 * - "echo child": the server is a separate Deno process; the client waits for each reply, so our
 *   side goes through the shared epoll wait every round trip.
 * - "1 fd": a message carrying one fd, received (and closed) on the other end.
 *
 * Run: `deno bench -A bench/socket_bench.ts`
 *
 * @module
 */

import { UnixSocket } from "../ffi/socket.ts";
import { pipe } from "../ffi/fs.ts";

const MSG = 100;
const msg = new Uint8Array(MSG).fill(0x61);
const RUNS = { n: 5000, warmup: 500 };

async function recvFull(s: UnixSocket, buf: Uint8Array): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { n, fds } = await s.recvMessage(off === 0 ? buf : buf.subarray(off));
    for (const f of fds) f.close();
    if (n === 0) throw new Error("Unexpected EOF");
    off += n;
  }
}

async function readFull(c: Deno.Conn, buf: Uint8Array): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const n = await c.read(buf.subarray(off));
    if (n === null) throw new Error("Unexpected EOF");
    off += n;
  }
}

const dir = await Deno.makeTempDir({ prefix: "cfs-bench-sock-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

// --- in-process -----------------------------------------------------------------------------
const [a, b] = UnixSocket.pair();
const bufA = new Uint8Array(MSG);
const bufB = new Uint8Array(MSG);

const nativeListener = Deno.listen({ transport: "unix", path: `${dir}/native.sock` });
const nativeAccept = nativeListener.accept();
const nc = await Deno.connect({ transport: "unix", path: `${dir}/native.sock` });
const ns = await nativeAccept;
nativeListener.close();

Deno.bench({
  name: "UnixSocket (FFI)",
  group: "100 B round trip, in-process",
  baseline: true,
  ...RUNS,
}, async () => {
  await a.sendMessage(msg);
  await recvFull(b, bufB);
  await b.sendMessage(bufB);
  await recvFull(a, bufA);
});

Deno.bench(
  { name: "Deno.connect unix (native)", group: "100 B round trip, in-process", ...RUNS },
  async () => {
    await nc.write(msg);
    await readFull(ns, bufB);
    await ns.write(bufB);
    await readFull(nc, bufA);
  },
);

// --- echo child -----------------------------------------------------------------------------
const socketUrl = new URL("../ffi/socket.ts", import.meta.url).href;
const ffiEcho = `
  import { UnixSocket } from "${socketUrl}";
  const l = UnixSocket.listen(Deno.args[0]);
  const s = await l.accept();
  l.close();
  const buf = new Uint8Array(65536);
  for (;;) {
    const { n } = await s.recvMessage(buf);
    if (n === 0) break;
    await s.sendMessage(buf.subarray(0, n));
  }
`;
const nativeEcho = `
  const l = Deno.listen({ transport: "unix", path: Deno.args[0] });
  const c = await l.accept();
  l.close();
  const buf = new Uint8Array(65536);
  for (;;) {
    const n = await c.read(buf);
    if (n === null) break;
    let off = 0;
    while (off < n) off += await c.write(buf.subarray(off, n));
  }
`;

async function spawnEcho(code: string, path: string): Promise<Deno.ChildProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-check", code, path],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  // Wait until the child listens.
  for (let i = 0; i < 600; i++) {
    try {
      await Deno.lstat(path);
      child.unref();
      return child;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`Echo child never listened on "${path}"`);
}

await spawnEcho(ffiEcho, `${dir}/ffi-echo.sock`);
await spawnEcho(nativeEcho, `${dir}/native-echo.sock`);
await spawnEcho(nativeEcho, `${dir}/native-echo-2.sock`);
const mixedClient = await UnixSocket.connect(`${dir}/native-echo-2.sock`);
const ffiClient = await UnixSocket.connect(`${dir}/ffi-echo.sock`);
const nativeClient = await Deno.connect({ transport: "unix", path: `${dir}/native-echo.sock` });

Deno.bench({
  name: "UnixSocket (FFI) ↔ FFI echo child",
  group: "100 B round trip, echo child",
  baseline: true,
  ...RUNS,
}, async () => {
  await ffiClient.sendMessage(msg);
  await recvFull(ffiClient, bufA);
});

Deno.bench({
  name: "Deno.connect unix ↔ native echo child",
  group: "100 B round trip, echo child",
  ...RUNS,
}, async () => {
  await nativeClient.write(msg);
  await readFull(nativeClient, bufA);
});

Deno.bench({
  name: "UnixSocket (FFI) ↔ native echo child",
  group: "100 B round trip, echo child",
  ...RUNS,
}, async () => {
  await mixedClient.sendMessage(msg);
  await recvFull(mixedClient, bufA);
});

// --- one fd per message ---------------------------------------------------------------------
const p = pipe();
Deno.bench({ name: "send + recv + close, 1 fd", group: "fd passing", ...RUNS }, async () => {
  await a.sendMessage(msg, [p.read]);
  await recvFull(b, bufB);
});

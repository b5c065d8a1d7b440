/**
 * Child side of tests/fd_passing_test.ts: connects to the parent's unix socket, receives a
 * directory fd and a pipe read end, reads `sub/hello.txt` beneath the dirfd and the pipe to EOF,
 * reports both as one JSON line, then echoes a 240-fd message back.
 *
 * Usage: deno run -A tests/fd_passing_child.ts <socket path>
 *
 * @module
 */

import { UnixSocket } from "../ffi/socket.ts";
import { openBeneath, readAllAt } from "../ffi/fs.ts";
import { readableFromFd } from "../ffi/fd_stream.ts";
import type { OwnedFd } from "../ffi/owned_fd.ts";

const path = Deno.args[0];
if (!path) throw new Error("Usage: fd_passing_child.ts <socket path>");

/** Read exactly `want` bytes, collecting fds. */
async function recvExactly(s: UnixSocket, want: number): Promise<[string, OwnedFd[]]> {
  const out = new Uint8Array(want);
  const fds: OwnedFd[] = [];
  let off = 0;
  while (off < want) {
    const buf = new Uint8Array(want - off);
    const m = await s.recvMessage(buf);
    fds.push(...m.fds);
    if (m.n === 0) throw new Error(`Parent closed after ${off} of ${want} bytes`);
    out.set(buf.subarray(0, m.n), off);
    off += m.n;
  }
  return [new TextDecoder().decode(out), fds];
}

using sock = await UnixSocket.connect(path);
const [payload, fds] = await recvExactly(sock, 8);
const [dirFd, pipeFd] = fds;
let hello: string;
{
  using dir = dirFd;
  using f = openBeneath(dir, "sub/hello.txt");
  hello = new TextDecoder().decode(readAllAt(f));
}
const piped = await new Response(readableFromFd(pipeFd)).text();
const report = {
  payload,
  fdCount: fds.length,
  hello,
  piped,
  pid: Deno.pid,
  parent: sock.peerCredentials(),
};
await sock.sendMessage(new TextEncoder().encode(JSON.stringify(report) + "\n"));

// Round trip: receive 240 fds in one message and send them straight back in one message.
const [tag, many] = await recvExactly(sock, 3);
try {
  await sock.sendMessage(new TextEncoder().encode(`${tag}:${many.length}`), many);
} finally {
  for (const f of many) f.close();
}
// Wait for the parent to hang up so every message is delivered before we exit.
await sock.recvMessage(new Uint8Array(1));

/**
 * 1 GiB through a pipe: readableFromFd (1 MiB sync reads on an O_NONBLOCK fd + the shared epoll
 * wait, pipe enlarged to 1 MiB) against `cat` reading the same data from the same kind of pipe,
 * and Deno's own `Deno.Command` stdout stream for reference.
 *
 * The writer is always `head -c 1GiB /dev/zero` in a child process writing into a FIFO, so
 * every reader sees the same producer. Run: `deno bench -A bench/fd_stream_bench.ts`
 *
 * @module
 */

import { readableFromFd } from "../ffi/fd_stream.ts";
import { openPath } from "../ffi/fs.ts";

/** Bytes per run. */
const TOTAL = 1024 * 1024 * 1024;
/** Each run moves 1 GiB (about a second): a few runs are enough on a noisy 2-vCPU machine. */
const RUNS = { n: 3, warmup: 1 };

const dir = await Deno.makeTempDir({ prefix: "cfs-bench-fifo-" });
const fifo = `${dir}/fifo`;
const mk = await new Deno.Command("mkfifo", { args: [fifo] }).output();
if (mk.code !== 0) throw new Error(`mkfifo failed: ${new TextDecoder().decode(mk.stderr)}`);
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

function writer(): Deno.ChildProcess {
  return new Deno.Command("sh", {
    args: ["-c", `exec head -c ${TOTAL} /dev/zero > "$1"`, "sh", fifo],
    stdout: "null",
  }).spawn();
}

function countingSink(): { sink: WritableStream<Uint8Array>; total: () => number } {
  let n = 0;
  return {
    sink: new WritableStream<Uint8Array>({
      write(c) {
        n += c.byteLength;
      },
    }),
    total: () => n,
  };
}

Deno.bench({
  name: "readableFromFd (FFI + epoll, 1 MiB pipe)",
  group: "pipe 1 GiB",
  baseline: true,
  ...RUNS,
}, async () => {
  const w = writer();
  // Blocking open of the FIFO returns once the writer has opened its end.
  const fd = openPath(fifo);
  const { sink, total } = countingSink();
  await readableFromFd(fd).pipeTo(sink);
  await w.status;
  if (total() !== TOTAL) throw new Error(`Read ${total()} bytes, expected ${TOTAL}`);
});

Deno.bench({ name: "cat fifo > /dev/null", group: "pipe 1 GiB", ...RUNS }, async () => {
  const r = await new Deno.Command("sh", {
    args: ["-c", `head -c ${TOTAL} /dev/zero > "$1" & cat "$1" > /dev/null; wait`, "sh", fifo],
  }).output();
  if (r.code !== 0) throw new Error(`cat pipeline failed: ${new TextDecoder().decode(r.stderr)}`);
});

Deno.bench({
  name: "Deno.Command stdout stream (native, 64 KiB pipe)",
  group: "pipe 1 GiB",
  ...RUNS,
}, async () => {
  const child = new Deno.Command("head", { args: ["-c", `${TOTAL}`, "/dev/zero"], stdout: "piped" })
    .spawn();
  const { sink, total } = countingSink();
  await child.stdout.pipeTo(sink);
  await child.status;
  if (total() !== TOTAL) throw new Error(`Read ${total()} bytes, expected ${TOTAL}`);
});

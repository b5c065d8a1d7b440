import assert from "node:assert/strict";
import {
  eventLoopBusy,
  eventLoopIdle,
  eventLoopStats,
  startEventLoop,
  waitReadable,
  waitWritable,
} from "./event_loop.ts";
import { openPath, pipe, read, write } from "./fs.ts";
import { assertNoFdLeak } from "../tests/_helpers.ts";

Deno.test("event_loop: a wait resolves when data arrives while timers keep running", async () => {
  await assertNoFdLeak(async () => {
    const p = pipe({ nonblock: true });
    using r = p.read;
    using w = p.write;
    let ticks = 0;
    const iv = setInterval(() => ticks++, 1);
    setTimeout(() => write(w, new Uint8Array([9])), 50);
    const t0 = performance.now();
    await waitReadable(r);
    clearInterval(iv);
    assert.ok(performance.now() - t0 >= 40);
    assert.ok(ticks >= 5, `the event loop was blocked: ${ticks} timer ticks`);
    const b = new Uint8Array(1);
    assert.equal(read(r, b), 1);
    assert.equal(b[0], 9);
    await eventLoopIdle();
    assert.equal(eventLoopBusy(), false);
  });
});

Deno.test("event_loop: 100 concurrent waits share one epoll_wait, Deno's async fs ops still run", async () => {
  await assertNoFdLeak(async () => {
    const pipes = Array.from({ length: 100 }, () => pipe({ nonblock: true }));
    try {
      const waits = pipes.map((p) => waitReadable(p.read));
      // With one nonblocking call per fd, 32 would exhaust Deno's pool and stall this stat.
      const stat = Deno.stat("/");
      const t = await Promise.race([
        stat.then(() => "stat"),
        new Promise((r) => setTimeout(() => r("timeout"), 2000)),
      ]);
      assert.equal(t, "stat");
      assert.equal(eventLoopBusy(), true);
      // Wake them in reverse order; every wait resolves.
      for (const p of [...pipes].reverse()) write(p.write, new Uint8Array([1]));
      await Promise.all(waits);
      await eventLoopIdle();
      assert.equal(eventLoopBusy(), false);
    } finally {
      for (const p of pipes) {
        p.read.close();
        p.write.close();
      }
    }
  });
});

Deno.test("event_loop: readers and writers on one fd; writable resolves at once on a pipe with room", async () => {
  await assertNoFdLeak(async () => {
    const p = pipe({ nonblock: true });
    using r = p.read;
    using w = p.write;
    await waitWritable(w);
    const a = waitReadable(r);
    const b = waitReadable(r);
    write(w, new Uint8Array([1]));
    await Promise.all([a, b]);
  });
});

Deno.test("event_loop: abort rejects with the reason and the pending wait is released", async () => {
  await assertNoFdLeak(async () => {
    const p = pipe({ nonblock: true });
    using r = p.read;
    using _w = p.write;
    const ac = new AbortController();
    const w = waitReadable(r, ac.signal);
    await new Promise((res) => setTimeout(res, 10));
    assert.equal(eventLoopBusy(), true);
    ac.abort(new Error("enough"));
    await assert.rejects(w, /enough/);
    assert.equal(eventLoopBusy(), false);
    // An already-aborted signal rejects without registering anything.
    await assert.rejects(waitReadable(r, AbortSignal.abort(new Error("early"))), /early/);
  });
});

Deno.test("event_loop: regular files are always ready (epoll refuses them)", async () => {
  await assertNoFdLeak(async () => {
    using f = openPath("/etc/hostname");
    await waitReadable(f);
    await waitWritable(f);
    assert.equal(eventLoopBusy(), false);
  });
});

Deno.test("event_loop: a process whose last wait was aborted exits promptly", async () => {
  startEventLoop();
  const url = new URL("./event_loop.ts", import.meta.url).href;
  const fsUrl = new URL("./fs.ts", import.meta.url).href;
  const code = `
    import { waitReadable } from "${url}";
    import { pipe } from "${fsUrl}";
    const p = pipe({ nonblock: true });
    const ac = new AbortController();
    const w = waitReadable(p.read, ac.signal).catch(() => "aborted");
    setTimeout(() => ac.abort(), 30);
    console.log(await w);
  `;
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-check", code],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  const out = await child.output();
  clearTimeout(timer);
  const elapsed = performance.now() - t0;
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.equal(new TextDecoder().decode(out.stdout).trim(), "aborted");
  assert.ok(elapsed < 8000, `child took ${elapsed} ms to exit`);
});

Deno.test("event_loop: aborting one of several waits settles promptly; the others stay armed", async () => {
  await assertNoFdLeak(async () => {
    const p1 = pipe({ nonblock: true });
    const p2 = pipe({ nonblock: true });
    using r1 = p1.read;
    using w1 = p1.write;
    using r2 = p2.read;
    using w2 = p2.write;
    const ac = new AbortController();
    const aborted = waitReadable(r1, ac.signal);
    const other = waitReadable(r2);
    await new Promise((res) => setTimeout(res, 10));
    ac.abort(new Error("only this one"));
    const t = await Promise.race([
      aborted.then(() => "resolved", () => "rejected"),
      new Promise((res) => setTimeout(() => res("stuck"), 2000)),
    ]);
    assert.equal(t, "rejected");
    assert.equal(eventLoopBusy(), true); // still waiting for r2
    write(w2, new Uint8Array([1]));
    await other;
    await eventLoopIdle();
    assert.equal(eventLoopBusy(), false);
    void w1;
  });
});

Deno.test("event_loop: an fd closed behind the loop's back cannot spin it or wake a newer fd", async () => {
  await assertNoFdLeak(async () => {
    const p = pipe({ nonblock: true });
    using w = p.write;
    // The dup keeps the open file alive, so the kernel keeps the epoll entry after close.
    using _keep = p.read.dup();
    const ac = new AbortController();
    const orphan = waitReadable(p.read, ac.signal).catch(() => "aborted");
    await new Promise((res) => setTimeout(res, 10));
    p.read.close(); // behind the loop's back (no cancelWaits)
    ac.abort();
    assert.equal(await orphan, "aborted");
    write(w, new Uint8Array([1])); // the orphaned entry's file is now readable
    // A fresh pipe (probably reusing the closed number) waits only for its own data.
    const q = pipe({ nonblock: true });
    using qr = q.read;
    using qw = q.write;
    let woke = false;
    const before = eventLoopStats().waits;
    const fresh = waitReadable(qr).then(() => (woke = true));
    await new Promise((res) => setTimeout(res, 100));
    assert.equal(woke, false, "a stale entry woke a newer fd");
    const spins = eventLoopStats().waits - before;
    assert.ok(spins <= 3, `the loop went round ${spins} times in 100 ms without events`);
    write(qw, new Uint8Array([2]));
    await fresh;
    await eventLoopIdle();
    assert.equal(eventLoopBusy(), false);
  });
});

/** Two tasks in this process bouncing one byte through two pipes, `rounds` times each. */
async function pingPong(rounds: number, stop?: () => boolean): Promise<number> {
  const there = pipe({ nonblock: true });
  const back = pipe({ nonblock: true });
  using _a = there.read;
  using _b = there.write;
  using _c = back.read;
  using _d = back.write;
  const one = new Uint8Array([1]);
  const b = new Uint8Array(1);
  let done = 0;
  const echo = (async () => {
    for (let i = 0; i < rounds; i++) {
      await waitReadable(there.read);
      read(there.read, b);
      write(back.write, one);
      if (b[0] === 0) return;
    }
  })();
  for (; done < rounds; done++) {
    const last = stop?.() === true || done === rounds - 1;
    write(there.write, last ? new Uint8Array([0]) : one);
    await waitReadable(back.read);
    read(back.read, b);
    if (last) {
      done++;
      break;
    }
  }
  await echo;
  return done;
}

Deno.test("event_loop: an in-process ping-pong is served by timeout-0 polls, not the pool", async () => {
  await assertNoFdLeak(async () => {
    const before = eventLoopStats();
    await pingPong(400);
    const after = eventLoopStats();
    const quick = after.quickPolls - before.quickPolls;
    const blocking = after.waits - before.waits - quick;
    // 800 wake-ups in all; through the blocking pool each would cost a thread round trip.
    assert.ok(quick >= 600, `quick polls ${quick}, blocking waits ${blocking}`);
    assert.ok(blocking < 200, `quick polls ${quick}, blocking waits ${blocking}`);
    await eventLoopIdle();
  });
});

Deno.test("event_loop: timers still fire while fds stay busy with quick polls", async () => {
  await assertNoFdLeak(async () => {
    const t0 = performance.now();
    let firedAt = -1;
    setTimeout(() => firedAt = performance.now() - t0, 0);
    // Busy until the timer fires (or 3 s, so a starving loop fails instead of hanging).
    await pingPong(1_000_000, () => firedAt >= 0 || performance.now() - t0 > 3000);
    assert.ok(firedAt >= 0, "the timer never fired while the fds were busy");
    assert.ok(firedAt < 500, `the timer fired only after ${firedAt.toFixed(0)} ms`);
    await eventLoopIdle();
  });
});

/**
 * The process-wide readiness loop (DESIGN 3): one epoll set, one eventfd, and at most ONE
 * pending `nonblocking` `epoll_wait` for the whole process.
 *
 * All real I/O is synchronous FFI on O_NONBLOCK fds; a caller that gets EAGAIN awaits
 * {@link waitReadable} / {@link waitWritable}. The fd is registered in the epoll set only while
 * somebody waits on it. When the last waiter leaves, the pending wait is woken through the eventfd
 * and not re-armed, so an idle process has no call in flight and can exit.
 *
 * @module
 */

import { errno, libc } from "./libc.ts";
import { check, ERRNO, ErrnoError } from "./errno.ts";
import { OwnedFd } from "./owned_fd.ts";
import { decodeEpollEvents, encodeEpollEvent, EPOLL_EVENT_SIZE } from "./structs.ts";
import * as C from "./constants.ts";

/** epoll_ctl operations (sys/epoll.h). */
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLL_CTL_MOD = 3;

/** epoll event bits (sys/epoll.h): readable. */
export const EPOLLIN = 0x001;
/** Writable. */
export const EPOLLOUT = 0x004;
/** Error condition. */
export const EPOLLERR = 0x008;
/** Hang-up. */
export const EPOLLHUP = 0x010;
/** Peer shut down its writing half. */
export const EPOLLRDHUP = 0x2000;

/** eventfd(2) flags: EFD_CLOEXEC = O_CLOEXEC, EFD_NONBLOCK = O_NONBLOCK. */
const EFD_FLAGS = C.O_CLOEXEC | C.O_NONBLOCK;

/**
 * Microtask turns the code woken by an epoll event gets before the loop polls again with
 * timeout 0: enough for an in-process varlink server to read a call, run a short method and
 * write its reply (a round trip went from ~160 µs to ~30 µs); a few µs lost when nothing
 * became ready.
 */
const QUICK_POLL_TURNS = 32;
/**
 * How long timeout-0 polls may follow one another before the loop blocks again (a round
 * through Deno's event loop, which runs timers and other ops): busy fds must not turn the
 * loop into a microtask-only spin. A blocking round costs ~150 µs of thread wake-ups here,
 * so one per 10 ms keeps its cost near 1.5 % and timers at most 10 ms late.
 */
const QUICK_POLL_BUDGET_MS = 10;
/** Events returned per epoll_wait; more ready fds simply come back on the next round. */
const MAX_EVENTS = 64;

/** Bits that wake a reader: data, peer hang-up, or an error (the retried syscall reports it). */
const READ_WAKE = EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP;
/** Bits that wake a writer. */
const WRITE_WAKE = EPOLLOUT | EPOLLHUP | EPOLLERR;

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
  cleanup: () => void;
}

interface Registration {
  /** The raw fd this registration is for. */
  raw: number;
  /** epoll data: unique per registration, so a stale kernel entry can never wake a newer fd. */
  token: bigint;
  readers: Set<Waiter>;
  writers: Set<Waiter>;
  /** Mask currently registered in the epoll set (0 = not registered). */
  mask: number;
  /** EPOLLONESHOT entries disarm after reporting once; re-armed with EPOLL_CTL_MOD. */
  armed: boolean;
}

/** data=u64 of the eventfd's epoll entry; registration tokens start at 1. */
const WAKE_TOKEN = 0n;
/**
 * Every fd entry is one-shot: an entry the kernel keeps after its fd was closed behind our back
 * (its file still open elsewhere, e.g. in flight over SCM_RIGHTS) reports at most once instead
 * of spinning the loop with level-triggered events nobody consumes.
 */
const EPOLLONESHOT = 0x40000000;

class EventLoop {
  #epfd: OwnedFd;
  #eventfd: OwnedFd;
  #regs = new Map<number, Registration>();
  #byToken = new Map<bigint, Registration>();
  #nextToken = 1n;
  #waiters = 0;
  #pending: Promise<void> | null = null;
  /** A non-blocking poll is scheduled ({@link #pollSoon}): do not start a blocking wait. */
  #polling = false;
  /** When the last blocking wait was started: quick polls stop {@link QUICK_POLL_BUDGET_MS} later. */
  #lastBlocked = 0;
  #woken = false;
  /** Rejections held back until the pending wait returns (so nothing is in flight afterwards). */
  #deferred: Array<() => void> = [];
  #events = new Uint8Array(MAX_EVENTS * EPOLL_EVENT_SIZE);
  #eightBytes = new Uint8Array(8);

  constructor() {
    const c = libc();
    this.#epfd = new OwnedFd(check(c.epoll_create1(C.O_CLOEXEC), "epoll_create1"));
    try {
      this.#eventfd = new OwnedFd(check(c.eventfd(0, EFD_FLAGS), "eventfd"));
    } catch (e) {
      this.#epfd.close();
      throw e;
    }
    check(
      c.epoll_ctl(
        this.#epfd.fd,
        EPOLL_CTL_ADD,
        this.#eventfd.fd,
        encodeEpollEvent(EPOLLIN, WAKE_TOKEN),
      ),
      "epoll_ctl(ADD eventfd)",
    );
  }

  /** epoll_wait calls issued so far (tests check that the loop does not spin). */
  waits = 0;
  /** Of those, the timeout-0 polls made right after events ({@link QUICK_POLL_TURNS}). */
  quickPolls = 0;

  /** True while an epoll_wait is in flight on Deno's blocking pool. */
  get busy(): boolean {
    return this.#pending !== null;
  }

  /** Resolves once no wait is in flight. */
  async idle(): Promise<void> {
    while (this.#pending) await this.#pending;
  }

  wait(fd: OwnedFd, write: boolean, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const raw = fd.fd;
    let reg = this.#regs.get(raw);
    if (!reg) {
      reg = {
        raw,
        token: this.#nextToken++,
        readers: new Set(),
        writers: new Set(),
        mask: 0,
        armed: false,
      };
      this.#regs.set(raw, reg);
      this.#byToken.set(reg.token, reg);
    }
    const r = reg;
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        if (!this.#remove(raw, r, waiter)) return;
        this.#settleLater(() => reject(signal!.reason));
      };
      const waiter: Waiter = {
        resolve,
        reject,
        cleanup: () => signal?.removeEventListener("abort", onAbort),
      };
      (write ? r.writers : r.readers).add(waiter);
      this.#waiters++;
      try {
        this.#update(raw, r);
      } catch (e) {
        this.#remove(raw, r, waiter);
        reject(e);
        return;
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#pump();
    });
  }

  /** Reject every waiter on `fd` and drop its registration (call before closing the fd). */
  cancel(fd: OwnedFd, reason: unknown): void {
    if (fd.closed) return;
    const raw = fd.fd;
    const reg = this.#regs.get(raw);
    if (!reg) return;
    for (const w of [...reg.readers, ...reg.writers]) {
      this.#remove(raw, reg, w);
      this.#settleLater(() => w.reject(reason));
    }
  }

  /** Remove a waiter; returns false if it was already gone. */
  #remove(raw: number, reg: Registration, w: Waiter): boolean {
    const gone = !reg.readers.delete(w) && !reg.writers.delete(w);
    if (gone) return false;
    w.cleanup();
    this.#waiters--;
    this.#update(raw, reg);
    if (this.#waiters === 0) this.#wake();
    return true;
  }

  /**
   * Settle now when nothing is in flight, else wake the pending wait and settle when it returns
   * (so a test that awaits the rejection finds no call in flight; other waiters are re-armed).
   */
  #settleLater(fn: () => void): void {
    if (!this.#pending) {
      fn();
      return;
    }
    this.#deferred.push(fn);
    this.#wake();
  }

  /** Bring the epoll registration of `raw` in line with its waiters (re-arming a fired entry). */
  #update(raw: number, reg: Registration): void {
    const want = (reg.readers.size ? EPOLLIN | EPOLLRDHUP : 0) | (reg.writers.size ? EPOLLOUT : 0);
    const c = libc();
    if (want === 0) {
      if (reg.mask !== 0) {
        // ENOENT/EBADF: the fd was closed behind our back, which removed or orphaned the entry.
        const rc = c.epoll_ctl(this.#epfd.fd, EPOLL_CTL_DEL, raw, encodeEpollEvent(0, 0n));
        if (rc < 0) {
          const e = errno();
          if (e !== ERRNO.ENOENT && e !== ERRNO.EBADF) throw new ErrnoError("epoll_ctl(DEL)", e);
        }
      }
      reg.mask = 0;
      reg.armed = false;
      this.#regs.delete(raw);
      this.#byToken.delete(reg.token);
      return;
    }
    if (want === reg.mask && reg.armed) return;
    const ev = encodeEpollEvent(want | EPOLLONESHOT, reg.token);
    let op = reg.mask === 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    let rc = c.epoll_ctl(this.#epfd.fd, op, raw, ev);
    if (rc < 0 && op === EPOLL_CTL_ADD && errno() === ERRNO.EEXIST) {
      op = EPOLL_CTL_MOD;
      rc = c.epoll_ctl(this.#epfd.fd, op, raw, ev);
    }
    if (rc < 0) {
      const e = errno();
      // EPERM: regular files and directories are always ready; never make anyone wait on them.
      if (e === ERRNO.EPERM) {
        for (const w of [...reg.readers, ...reg.writers]) {
          this.#remove(raw, reg, w);
          w.resolve();
        }
        return;
      }
      throw new ErrnoError(op === EPOLL_CTL_ADD ? "epoll_ctl(ADD)" : "epoll_ctl(MOD)", e);
    }
    reg.mask = want;
    reg.armed = true;
  }

  #wake(): void {
    if (!this.#pending || this.#woken) return;
    this.#woken = true;
    const one = new Uint8Array(8);
    one[0] = 1;
    const rc = libc().write(this.#eventfd.fd, one, 8n);
    // EAGAIN only if the counter is saturated, which already means "wake up".
    if (rc < 0n && errno() !== ERRNO.EAGAIN) throw new ErrnoError("write(eventfd)", errno());
  }

  #pump(): void {
    if (this.#pending || this.#polling || this.#waiters === 0) return;
    this.#woken = false;
    this.waits++;
    this.#lastBlocked = performance.now();
    this.#pending = libc().epoll_wait_nb(this.#epfd.fd, this.#events, MAX_EVENTS, -1).then(
      (n) => this.#onEvents(n),
    );
  }

  #onEvents(n: number): void {
    this.#pending = null;
    // n < 0 is EINTR (errno is not readable after a nonblocking call): just go round again.
    for (const ev of decodeEpollEvents(this.#events, Math.max(n, 0))) {
      if (ev.data === WAKE_TOKEN) {
        libc().read(this.#eventfd.fd, this.#eightBytes, 8n);
        continue;
      }
      const reg = this.#byToken.get(ev.data);
      if (!reg) continue; // a stale one-shot entry: reported once, never re-armed
      const raw = reg.raw;
      reg.armed = false;
      const ready: Waiter[] = [];
      if (ev.events & READ_WAKE) ready.push(...reg.readers);
      if (ev.events & WRITE_WAKE) ready.push(...reg.writers);
      for (const w of ready) {
        this.#remove(raw, reg, w);
        w.resolve();
      }
      // Waiters the event did not concern keep waiting: re-arm the one-shot entry for them.
      if (this.#byToken.get(reg.token) === reg && !reg.armed) this.#update(raw, reg);
    }
    const deferred = this.#deferred;
    this.#deferred = [];
    for (const fn of deferred) fn();
    // Code just woken often makes another waited-on fd ready within microtasks (an
    // in-process server answering its client): look again without blocking before paying
    // a round trip through Deno's blocking pool — but only a few times in a row, so that
    // timers and other ops still get event-loop turns while fds stay busy.
    if (
      n > 0 && this.#waiters > 0 && performance.now() - this.#lastBlocked < QUICK_POLL_BUDGET_MS
    ) {
      this.#pollSoon();
    } else this.#pump();
  }

  /** After {@link QUICK_POLL_TURNS} microtask turns, poll with timeout 0; else block. */
  async #pollSoon(): Promise<void> {
    this.#polling = true;
    for (let i = 0; i < QUICK_POLL_TURNS; i++) await null;
    this.#polling = false;
    if (this.#pending || this.#waiters === 0) return;
    this.waits++;
    this.quickPolls++;
    const n = libc().epoll_wait(this.#epfd.fd, this.#events, MAX_EVENTS, 0);
    if (n > 0) this.#onEvents(n);
    else this.#pump();
  }
}

let loop: EventLoop | undefined;

function theLoop(): EventLoop {
  loop ??= new EventLoop();
  return loop;
}

/**
 * Start the process-wide loop now (it starts lazily otherwise): creates its epoll fd and eventfd,
 * which live for the rest of the process. Leak tests call this before counting fds.
 */
export function startEventLoop(): void {
  theLoop();
}

/**
 * Resolve when `fd` is readable (or hung up / in error: the retried syscall tells which).
 * Rejects with `signal.reason` when aborted. `fd` must be O_NONBLOCK and stay open meanwhile.
 */
export function waitReadable(fd: OwnedFd, signal?: AbortSignal): Promise<void> {
  return theLoop().wait(fd, false, signal);
}

/** Resolve when `fd` is writable (or hung up / in error). Rejects with `signal.reason` when aborted. */
export function waitWritable(fd: OwnedFd, signal?: AbortSignal): Promise<void> {
  return theLoop().wait(fd, true, signal);
}

/** Reject all pending waits on `fd` with `reason`; call this before closing an fd others may wait on. */
export function cancelWaits(fd: OwnedFd, reason: unknown): void {
  loop?.cancel(fd, reason);
}

/** True while the loop's single epoll_wait is in flight (tests: nothing may stay pending). */
export function eventLoopBusy(): boolean {
  return loop?.busy ?? false;
}

/** Resolve once the loop has no epoll_wait in flight. */
export function eventLoopIdle(): Promise<void> {
  return loop?.idle() ?? Promise.resolve();
}

/**
 * Counters for tests and diagnostics: `waits` = epoll_wait calls issued by this process,
 * `quickPolls` = how many of them were timeout-0 polls right after events (the rest went
 * through Deno's blocking pool).
 */
export function eventLoopStats(): { waits: number; quickPolls: number } {
  return { waits: loop?.waits ?? 0, quickPolls: loop?.quickPolls ?? 0 };
}

/**
 * Longest stretch of synchronous work between two turns of the event loop. Long imports (a
 * pull, a PutLayer drain) are synchronous FFI chained through microtasks, which starves timers
 * and the epoll wait; {@link cooperate} hands the loop a turn once this much time has passed.
 * A turn costs ~70 µs ({@link yieldToEventLoop}), so 10 ms keeps the cost under 1 % while
 * another connection waits at most 10 ms for its answer.
 */
export const COOPERATIVE_SLICE_MS = 10;

/** The slice in force ({@link setCooperativeSlice}). */
let sliceMs = COOPERATIVE_SLICE_MS;
/** When the process last gave the event loop a turn through {@link cooperate}. */
let lastTurn = performance.now();
/** Turns given so far (tests and diagnostics). */
let turns = 0;

/**
 * Give the event loop one full turn: timers fire and completed I/O (the epoll wait, other
 * connections) is processed before this resolves. A macrotask, unlike `await` on a resolved
 * promise (a microtask, which the loop never sees): the completion of a no-op nonblocking FFI
 * call (`getpid` on Deno's blocking pool), which the loop delivers together with due timers
 * and other op completions, in ~70 µs. `setTimeout(0)` does the same but waits for the next
 * millisecond tick (~2 ms); `setImmediate` and `MessageChannel` can starve timers or ops.
 */
export async function yieldToEventLoop(): Promise<void> {
  await libc().getpid_nb();
  lastTurn = performance.now();
  turns++;
}

/**
 * Call between units of synchronous work in a long loop (a layer import): resolves at once
 * (a microtask) unless {@link COOPERATIVE_SLICE_MS} have passed since the process last yielded,
 * in which case it yields with {@link yieldToEventLoop}. Process-wide, so concurrent imports
 * share one budget.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cooperate } from "./event_loop.ts";
 *
 * let ticks = 0;
 * const timer = setInterval(() => ticks++, 1);
 * const start = performance.now();
 * while (performance.now() - start < 300) {
 *   const t = performance.now();
 *   let spins = 0;
 *   while (performance.now() - t < 1) spins++; // stands for synchronous FFI work
 *   await cooperate();
 * }
 * clearInterval(timer);
 * assert.ok(ticks > 0);
 * ```
 */
export function cooperate(): Promise<void> {
  if (performance.now() - lastTurn < sliceMs) return Promise.resolve();
  return yieldToEventLoop();
}

/**
 * Set the slice {@link cooperate} allows (ms; `Infinity` = never yield) and return the previous
 * one. For benchmarks measuring what the yields cost; the default is {@link COOPERATIVE_SLICE_MS}.
 */
export function setCooperativeSlice(ms: number): number {
  if (!(ms > 0)) throw new RangeError(`Invalid cooperative slice ${ms} ms`);
  const previous = sliceMs;
  sliceMs = ms;
  return previous;
}

/** Turns given by {@link yieldToEventLoop} so far (tests: a long import did yield). */
export function cooperativeTurns(): number {
  return turns;
}

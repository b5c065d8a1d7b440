/**
 * A small varlink test interface (`org.cfs.Test`) exercising every generic server path: plain
 * replies, streams, fds in and out, writes (peer-uid policy), slow calls (abort on disconnect)
 * and unexpected exceptions (InternalError).
 *
 * @module
 */

import { pipe, read, write } from "../ffi/fs.ts";
import { VarlinkService } from "../lib/varlink/service.ts";
import { VarlinkError } from "../lib/varlink/errors.ts";

/** IDL of the test interface. */
export const TEST_IDL = `# Test interface for the generic varlink layer.
interface org.cfs.Test

type Pair (a: int, b: ?string)

method Ping(n: int, pair: ?Pair) -> (n: int)
method Count(n: int) -> (i: int)
method MakePipes(count: int, text: string) -> (count: int)
method ReadFd(index: int) -> (data: string)
method Write(value: string) -> ()
method Slow(ms: int) -> (aborted: bool)
method Fail(typed: bool) -> ()
method Big(size: int) -> (data: string)

error Refused (reason: string)
error InternalError (message: string)
`;

/** Observations the tests can assert on. */
export interface FixtureState {
  /** Values received by Write. */
  written: string[];
  /** How many Slow calls saw their signal abort. */
  slowAborted: number;
  /** Slow calls that started. */
  slowStarted: number;
}

const dec = new TextDecoder();
const enc = new TextEncoder();

/** A service with `org.cfs.Test` (and checkReplies on), plus its observable state. */
export function testService(): { service: VarlinkService; state: FixtureState } {
  const state: FixtureState = { written: [], slowAborted: 0, slowStarted: 0 };
  const service = new VarlinkService(
    { vendor: "org.cfs", product: "cfs-test", version: "1.0", url: "https://example.invalid" },
    { checkReplies: true },
  );
  service.add({
    idl: TEST_IDL,
    methods: {
      Ping: (p) => Promise.resolve({ parameters: { n: p.n } }),
      Count: async function* (p) {
        // Capped so fuzzed calls cannot ask for an endless stream.
        const n = Math.min(Number(p.n), 100);
        for (let i = 0; i < n; i++) yield { parameters: { i } };
      },
      MakePipes: (p) => {
        const fds = [];
        for (let i = 0; i < Number(p.count); i++) {
          const { read: r, write: w } = pipe();
          write(w, enc.encode(`${p.text}${i}`));
          w.close();
          fds.push(r);
        }
        return Promise.resolve({ parameters: { count: p.count }, fds });
      },
      ReadFd: (p, ctx) => {
        using fd = ctx.takeFd(Number(p.index));
        const buf = new Uint8Array(4096);
        const n = read(fd, buf);
        return Promise.resolve({ parameters: { data: dec.decode(buf.subarray(0, n)) } });
      },
      Write: {
        writes: true,
        handler: (p) => {
          state.written.push(p.value as string);
          return Promise.resolve();
        },
      },
      Slow: async (p, ctx) => {
        state.slowStarted++;
        const aborted = await new Promise<boolean>((resolve) => {
          const onAbort = () => {
            clearTimeout(timer);
            state.slowAborted++;
            resolve(true);
          };
          const timer = setTimeout(() => {
            ctx.signal.removeEventListener("abort", onAbort);
            resolve(false);
          }, Number(p.ms));
          ctx.signal.addEventListener("abort", onAbort, { once: true });
        });
        return { parameters: { aborted } };
      },
      Fail: (p) => {
        if (p.typed) throw new VarlinkError("org.cfs.Test.Refused", { reason: "asked to" });
        throw new Error("Boom");
      },
      Big: (p) => Promise.resolve({ parameters: { data: "x".repeat(Number(p.size)) } }),
    },
  });
  return { service, state };
}

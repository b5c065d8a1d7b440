import assert from "node:assert/strict";
import { pipe } from "../../ffi/fs.ts";
import type { OwnedFd } from "../../ffi/owned_fd.ts";
import {
  type InterfaceDefinition,
  InterfaceDefinitionError,
  type ReplyFrame,
  VarlinkInterface,
  VarlinkService,
} from "./service.ts";
import type { Call, JsonObject } from "./protocol.ts";
import { VarlinkError } from "./errors.ts";
import { assertNoFdLeak } from "../../tests/_helpers.ts";

const INFO = { vendor: "v", product: "p", version: "1", url: "u" };
const IDL = `interface org.example.T
method Get(n: ?int) -> (n: int)
method Stream(n: int) -> (i: int)
method Pipes() -> (count: int)
error Failed (why: string)
`;

function call(method: string, parameters: JsonObject = {}, flags: Partial<Call> = {}): Call {
  return { method, parameters, oneway: false, more: false, upgrade: false, ...flags };
}

async function run(
  svc: VarlinkService,
  c: Call,
  fds: OwnedFd[] = [],
): Promise<ReplyFrame[]> {
  const frames: ReplyFrame[] = [];
  await svc.dispatch(c, fds, { signal: new AbortController().signal }, (f) => {
    frames.push(f);
    return Promise.resolve();
  });
  return frames;
}

function pipesFrame(n: number): { parameters: JsonObject; fds: OwnedFd[] } {
  const fds = [];
  for (let i = 0; i < n; i++) {
    const p = pipe();
    p.write.close();
    fds.push(p.read);
  }
  return { parameters: { i: n }, fds };
}

function service(def: Partial<InterfaceDefinition["methods"]> = {}, checkReplies = true) {
  const svc = new VarlinkService(INFO, { checkReplies });
  svc.add({
    idl: IDL,
    methods: {
      Get: (p) => Promise.resolve({ parameters: { n: p.n ?? 0 } }),
      Stream: async function* (p) {
        for (let i = 1; i <= Number(p.n); i++) yield pipesFrame(i);
      },
      Pipes: () => Promise.resolve({ parameters: { count: 1 }, fds: [pipesFrame(1).fds[0]] }),
      ...def,
    },
  });
  return svc;
}

Deno.test("VarlinkInterface rejects handlers that do not match the IDL", () => {
  assert.throws(
    () => new VarlinkInterface({ idl: IDL, methods: { Get: () => Promise.resolve() } }),
    (e: unknown) =>
      e instanceof InterfaceDefinitionError && /"Stream" has no handler/.test(e.message),
  );
  assert.throws(
    () =>
      new VarlinkInterface({
        idl: "interface a.b\nmethod X() -> ()",
        methods: { X: () => Promise.resolve(), Y: () => Promise.resolve() },
      }),
    (e: unknown) =>
      e instanceof InterfaceDefinitionError && /"Y" has no IDL method/.test(e.message),
  );
  const svc = service();
  assert.throws(() => svc.add({ idl: IDL, methods: {} }), InterfaceDefinitionError);
});

Deno.test("dispatch() streams with more, keeps only the last frame without, and closes dropped fds", async () => {
  await assertNoFdLeak(async () => {
    const svc = service();
    const more = await run(svc, call("org.example.T.Stream", { n: 3 }, { more: true }));
    assert.deepEqual(more.map((f) => [f.parameters, f.continues, f.fds.length]), [
      [{ i: 1 }, true, 1],
      [{ i: 2 }, true, 2],
      [{ i: 3 }, false, 3],
    ]);
    for (const f of more) for (const fd of f.fds) fd.close();
    const single = await run(svc, call("org.example.T.Stream", { n: 3 }));
    assert.deepEqual(single.map((f) => [f.parameters, f.continues, f.fds.length]), [
      [{ i: 3 }, false, 3],
    ]);
    for (const fd of single[0].fds) fd.close();
    // oneway: no frames, reply fds closed (the fd-leak check proves it).
    assert.deepEqual(await run(svc, call("org.example.T.Pipes", {}, { oneway: true })), []);
  });
});

Deno.test("dispatch() refuses replies and errors that break the IDL when checking replies", async () => {
  const svc = service({
    Get: (p) => {
      if (p.n === 1) return Promise.resolve({ parameters: { n: "one" } });
      if (p.n === 2) return Promise.resolve({ parameters: { n: 2, extra: true } });
      if (p.n === 3) throw new VarlinkError("org.example.T.Nope", {});
      if (p.n === 4) throw new VarlinkError("org.example.T.Failed", { why: 4 });
      throw new VarlinkError("org.example.T.Failed", { why: "declared" });
    },
  });
  // No InternalError declared in this IDL: the dispatcher has nothing to map to and rejects.
  for (const n of [1, 2, 3, 4]) {
    await assert.rejects(run(svc, call("org.example.T.Get", { n })), Error, `n=${n}`);
  }
  const ok = await run(svc, call("org.example.T.Get", { n: 5 }));
  assert.deepEqual(ok.map((f) => [f.error, f.parameters]), [["org.example.T.Failed", {
    why: "declared",
  }]]);
});

Deno.test("dispatch() applies normalize before validation and checks writes against trusted uids", async () => {
  const svc = new VarlinkService(INFO);
  svc.add({
    idl: "interface a.b\nmethod W(flag: bool) -> (flag: bool)\n",
    methods: {
      W: {
        writes: true,
        normalize: (p) => ({ flag: false, ...p }),
        handler: (p) => Promise.resolve({ parameters: { flag: p.flag } }),
      },
    },
  });
  const frames: ReplyFrame[] = [];
  const send = (f: ReplyFrame) => {
    frames.push(f);
    return Promise.resolve();
  };
  const signal = new AbortController().signal;
  await svc.dispatch(call("a.b.W"), [], { signal }, send);
  await svc.dispatch(call("a.b.W"), [], {
    signal,
    peer: { pid: 1, uid: 1000, gid: 1000 },
    trustedUids: [0],
  }, send);
  await svc.dispatch(call("a.b.W", { flag: true }), [], {
    signal,
    peer: { pid: 1, uid: 0, gid: 0 },
    trustedUids: [0],
  }, send);
  assert.deepEqual(frames.map((f) => f.error ?? f.parameters), [
    { flag: false },
    "org.varlink.service.PermissionDenied",
    { flag: true },
  ]);
});

import assert from "node:assert/strict";
import fc from "fast-check";
import { UnixSocket } from "../../ffi/socket.ts";
import { pipe, read, write } from "../../ffi/fs.ts";
import { VarlinkServer } from "./server.ts";
import { VarlinkClient } from "./client.ts";
import { VarlinkError, VarlinkServiceError, VarlinkTransportError } from "./errors.ts";
import { assertNoFdLeak, requireCommand, run, tempDir } from "../../tests/_helpers.ts";
import { testService } from "../../tests/_varlink_fixture.ts";
import { encodeCall } from "./protocol.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A server over a socketpair and a client on the other end. */
function pairSetup(opts: ConstructorParameters<typeof VarlinkServer>[1] = {}) {
  const { service, state } = testService();
  const logs: string[] = [];
  const server = new VarlinkServer(service, { log: (m) => logs.push(m), ...opts });
  const [a, b] = UnixSocket.pair();
  const served = server.serveConnection(a);
  const client = new VarlinkClient(b);
  return { server, client, served, state, logs };
}

/** Read raw bytes until EOF (for protocol-violation tests). */
async function readToEof(s: UnixSocket): Promise<string> {
  const buf = new Uint8Array(65536);
  let out = "";
  for (;;) {
    const { n, fds } = await s.recvMessage(buf);
    for (const f of fds) f.close();
    if (n === 0) return out;
    out += dec.decode(buf.subarray(0, n));
  }
}

Deno.test("server: calls, org.varlink.service and typed errors over a socketpair", async () => {
  await assertNoFdLeak(async () => {
    const { server, client, served } = pairSetup();
    try {
      assert.deepEqual((await client.call("org.cfs.Test.Ping", { n: 5 })).parameters, { n: 5 });
      const info = (await client.call("org.varlink.service.GetInfo")).parameters;
      assert.deepEqual(info, {
        vendor: "org.cfs",
        product: "cfs-test",
        version: "1.0",
        url: "https://example.invalid",
        interfaces: ["org.cfs.Test", "org.varlink.service"],
      });
      const desc = await client.call("org.varlink.service.GetInterfaceDescription", {
        interface: "org.cfs.Test",
      });
      assert.match(desc.parameters.description as string, /^# Test interface/);
      const expectError = async (
        p: Promise<unknown>,
        error: string,
        parameters: Record<string, unknown>,
      ) => {
        await assert.rejects(p, (e: unknown) => {
          assert.ok(e instanceof VarlinkError, String(e));
          assert.equal(e.error, error);
          assert.deepEqual(e.parameters, parameters);
          return true;
        });
      };
      await expectError(
        client.call("org.varlink.service.GetInterfaceDescription", { interface: "no.Such" }),
        "org.varlink.service.InterfaceNotFound",
        { interface: "no.Such" },
      );
      await expectError(
        client.call("org.cfs.Test.Nope"),
        "org.varlink.service.MethodNotFound",
        { method: "org.cfs.Test.Nope" },
      );
      await expectError(
        client.call("bad name"),
        "org.varlink.service.MethodNotFound",
        { method: "bad name" },
      );
      await expectError(
        client.call("org.cfs.Test.Ping", { n: "five" }),
        "org.varlink.service.InvalidParameter",
        { parameter: "n" },
      );
      await expectError(
        client.call("org.cfs.Test.Ping", {}),
        "org.varlink.service.InvalidParameter",
        { parameter: "n" },
      );
      await expectError(
        client.call("org.cfs.Test.Ping", { n: 1, pair: { a: "x" } }),
        "org.varlink.service.InvalidParameter",
        { parameter: "pair" },
      );
      await expectError(
        client.call("org.cfs.Test.Fail", { typed: true }),
        "org.cfs.Test.Refused",
        { reason: "asked to" },
      );
      await expectError(
        client.call("org.cfs.Test.Fail", { typed: false }),
        "org.cfs.Test.InternalError",
        { message: "Boom" },
      );
      // Unknown keys are ignored; null optionals are accepted.
      assert.deepEqual(
        (await client.call("org.cfs.Test.Ping", { n: 1, pair: null, junk: [1] })).parameters,
        { n: 1 },
      );
      // After all those errors the connection still works.
      assert.deepEqual((await client.call("org.cfs.Test.Ping", { n: 2 })).parameters, { n: 2 });
      assert.ok(
        (await client.call("org.varlink.service.GetInfo").catch((e) => e)) instanceof Object,
      );
    } finally {
      client.close();
      await served;
      await server.close();
    }
  });
});

Deno.test("server: upgrade is refused with InvalidParameter and oneway gets no reply", async () => {
  await assertNoFdLeak(async () => {
    const { service, state } = testService();
    const server = new VarlinkServer(service);
    const [a, b] = UnixSocket.pair();
    const served = server.serveConnection(a);
    try {
      await b.sendMessage(encodeCall("org.cfs.Test.Ping", { n: 1 }, { upgrade: true }));
      await b.sendMessage(encodeCall("org.cfs.Test.Write", { value: "quiet" }, { oneway: true }));
      await b.sendMessage(encodeCall("org.cfs.Test.Ping", { n: 9 }));
      b.shutdown("write");
      const out = await readToEof(b);
      assert.deepEqual(out.split("\0").filter((s) => s).map((s) => JSON.parse(s)), [
        { error: "org.varlink.service.InvalidParameter", parameters: { parameter: "upgrade" } },
        { parameters: { n: 9 }, continues: false },
      ]);
      assert.deepEqual(state.written, ["quiet"]);
    } finally {
      b.close();
      await served;
      await server.close();
    }
  });
});

Deno.test("server: streams with more, a single final frame without more", async () => {
  await assertNoFdLeak(async () => {
    const { server, client, served } = pairSetup();
    try {
      const frames = [];
      for await (const f of client.callMore("org.cfs.Test.Count", { n: 4 })) frames.push(f);
      assert.deepEqual(frames.map((f) => [f.parameters.i, f.continues]), [
        [0, true],
        [1, true],
        [2, true],
        [3, false],
      ]);
      const one = await client.call("org.cfs.Test.Count", { n: 4 });
      assert.deepEqual(one.parameters, { i: 3 });
      const empty = [];
      for await (const f of client.callMore("org.cfs.Test.Count", { n: 0 })) empty.push(f);
      assert.deepEqual(empty.map((f) => [f.parameters, f.continues]), [[{}, false]]);
      // A non-streaming method called with more: one frame.
      const ping = [];
      for await (const f of client.callMore("org.cfs.Test.Ping", { n: 3 })) ping.push(f);
      assert.deepEqual(ping.map((f) => [f.parameters, f.continues]), [[{ n: 3 }, false]]);
    } finally {
      client.close();
      await served;
      await server.close();
    }
  });
});

Deno.test("server: fds travel both ways; unused request fds are closed; bad index → InvalidParameter", async () => {
  await assertNoFdLeak(async () => {
    const { server, client, served } = pairSetup();
    try {
      const r = await client.call("org.cfs.Test.MakePipes", { count: 3, text: "p" });
      assert.equal(r.fds.length, 3);
      const got = r.fds.map((fd) => {
        using f = fd;
        const buf = new Uint8Array(16);
        return dec.decode(buf.subarray(0, read(f, buf)));
      });
      assert.deepEqual(got, ["p0", "p1", "p2"]);

      const p1 = pipe();
      const p2 = pipe();
      write(p2.write, enc.encode("second"));
      p1.write.close();
      p2.write.close();
      const rr = await client.call("org.cfs.Test.ReadFd", { index: 1 }, {
        fds: [p1.read, p2.read],
      });
      assert.deepEqual(rr.parameters, { data: "second" });
      assert.ok(p1.read.closed && p2.read.closed, "sent fds are closed locally");

      const p3 = pipe();
      p3.write.close();
      await assert.rejects(
        client.call("org.cfs.Test.ReadFd", { index: 1 }, { fds: [p3.read] }),
        (e: unknown) =>
          e instanceof VarlinkServiceError && e.error === "org.varlink.service.InvalidParameter" &&
          e.parameters.parameter === "fds",
      );
      // 200 fds with a call that uses none: all closed by the server (the fd-leak check sees it).
      const many = Array.from({ length: 100 }, () => pipe());
      await client.call("org.cfs.Test.Ping", { n: 1 }, {
        fds: many.flatMap((p) => [p.read, p.write]),
      });
    } finally {
      client.close();
      await served;
      await server.close();
    }
  });
});

Deno.test("server: writes need a trusted peer uid (SO_PEERCRED)", async () => {
  await assertNoFdLeak(async () => {
    const strict = pairSetup({ trustedUids: [4242424] });
    try {
      await assert.rejects(
        strict.client.call("org.cfs.Test.Write", { value: "no" }),
        (e: unknown) =>
          e instanceof VarlinkServiceError && e.error === "org.varlink.service.PermissionDenied",
      );
      assert.deepEqual(strict.state.written, []);
      assert.deepEqual((await strict.client.call("org.cfs.Test.Ping", { n: 1 })).parameters, {
        n: 1,
      });
    } finally {
      strict.client.close();
      await strict.served;
      await strict.server.close();
    }
    const dflt = pairSetup();
    try {
      await dflt.client.call("org.cfs.Test.Write", { value: "yes" });
      assert.deepEqual(dflt.state.written, ["yes"]);
    } finally {
      dflt.client.close();
      await dflt.served;
      await dflt.server.close();
    }
  });
});

Deno.test("server: protocol violations close only that connection", async (t) => {
  await assertNoFdLeak(async () => {
    const { service } = testService();
    const logs: string[] = [];
    const server = new VarlinkServer(service, {
      log: (m) => logs.push(m),
      maxMessageSize: 4096,
      maxFds: 8,
    });
    const violations: { name: string; send: (s: UnixSocket) => Promise<void>; log: RegExp }[] = [
      {
        name: "bad JSON",
        send: (s) => s.sendMessage(enc.encode("{not json}\0")),
        log: /not valid JSON/,
      },
      {
        name: "no method",
        send: (s) => s.sendMessage(enc.encode('{"parameters":{}}\0')),
        log: /"method"/,
      },
      {
        name: "oversized message",
        send: (s) => s.sendMessage(enc.encode('{"method":"' + "x".repeat(5000))),
        log: /4096-byte limit/,
      },
      {
        name: "too many fds",
        send: async (s) => {
          const ps = Array.from({ length: 5 }, () => pipe());
          try {
            await s.sendMessage(
              encodeCall("org.cfs.Test.Ping", { n: 1 }),
              ps.flatMap((p) => [p.read, p.write]),
            );
          } finally {
            for (const p of ps) {
              p.read.close();
              p.write.close();
            }
          }
        },
        log: /per-connection limit of 8/,
      },
      {
        name: "truncated message at EOF",
        send: async (s) => {
          await s.sendMessage(enc.encode('{"method":"org.cfs.Te'));
          s.shutdown("write");
        },
        log: /ended inside a message/,
      },
    ];
    const [ka, kb] = UnixSocket.pair();
    const keeper = server.serveConnection(ka);
    using good = new VarlinkClient(kb);
    for (const v of violations) {
      await t.step(v.name, async () => {
        const [a, b] = UnixSocket.pair();
        const served = server.serveConnection(a);
        await v.send(b);
        // A good call pipelined behind it never gets a reply: the server closes.
        await b.sendMessage(encodeCall("org.cfs.Test.Ping", { n: 1 })).catch(() => {});
        assert.equal(await readToEof(b).catch(() => ""), "");
        b.close();
        await served;
        assert.ok(logs.some((l) => v.log.test(l)), `log ${v.log} in ${JSON.stringify(logs)}`);
        // The other connection is unaffected.
        assert.deepEqual((await good.call("org.cfs.Test.Ping", { n: 7 })).parameters, { n: 7 });
      });
    }
    good.close();
    await keeper;
    await server.close();
  });
});

Deno.test("server: the client sees a closed connection as VarlinkTransportError", async () => {
  await assertNoFdLeak(async () => {
    const [a, b] = UnixSocket.pair();
    const client = new VarlinkClient(b);
    const call = client.call("org.cfs.Test.Ping", { n: 1 });
    a.close();
    await assert.rejects(
      call,
      (e: unknown) => e instanceof VarlinkTransportError && e.reason === "closed",
    );
    await assert.rejects(
      client.call("org.cfs.Test.Ping", { n: 1 }),
      (e: unknown) => e instanceof VarlinkTransportError,
    );
    client.close();
  });
});

Deno.test("server: 100 concurrent clients on a path socket; vanishing clients abort their calls", async () => {
  await using dir = await tempDir();
  await assertNoFdLeak(async () => {
    const { service, state } = testService();
    const server = new VarlinkServer(service);
    const path = `${dir.path}/s.sock`;
    const { served } = server.listen(path);
    try {
      const CLIENTS = 100;
      const CALLS = 10;
      await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
        using client = await VarlinkClient.connect(path);
        // One slow call per client proves calls of different connections overlap.
        const slow = client.call("org.cfs.Test.Slow", { ms: 50 });
        assert.deepEqual((await slow).parameters, { aborted: false });
        for (let i = 0; i < CALLS; i++) {
          const n = c * 1000 + i;
          assert.deepEqual((await client.call("org.cfs.Test.Ping", { n })).parameters, { n });
        }
      }));
      // Clients that vanish mid-call: their Slow calls see the abort.
      const VANISH = 20;
      const before = state.slowAborted;
      await Promise.all(Array.from({ length: VANISH }, async () => {
        const s = await UnixSocket.connect(path);
        await s.sendMessage(encodeCall("org.cfs.Test.Slow", { ms: 60_000 }));
        while (state.slowStarted < CLIENTS + VANISH) await new Promise((r) => setTimeout(r, 5));
        s.close();
      }));
      for (let i = 0; i < 200 && state.slowAborted - before < VANISH; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(state.slowAborted - before, VANISH);
      // Clients that vanish mid-message or with fds in flight.
      for (let i = 0; i < 10; i++) {
        const s = await UnixSocket.connect(path);
        const p = pipe();
        await s.sendMessage(enc.encode('{"method":"org.cfs.Test.Pi'), [p.read, p.write]);
        p.read.close();
        p.write.close();
        s.close();
      }
      using client = await VarlinkClient.connect(path);
      assert.deepEqual((await client.call("org.cfs.Test.Ping", { n: 1 })).parameters, { n: 1 });
      client.close();
      for (let i = 0; i < 200 && server.connectionCount > 0; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(server.connectionCount, 0);
    } finally {
      await server.close();
      await served;
    }
  });
});

Deno.test("server: 10 000 random and mutated messages get typed errors or a close, and the server still answers", async () => {
  await using dir = await tempDir();
  await assertNoFdLeak(async () => {
    const { service } = testService();
    const server = new VarlinkServer(service, { maxMessageSize: 1 << 16 });
    const path = `${dir.path}/s.sock`;
    const { served } = server.listen(path);
    const methods = [
      "org.cfs.Test.Ping",
      "org.cfs.Test.Count",
      "org.cfs.Test.ReadFd",
      "org.cfs.Test.Fail",
      "org.cfs.Test.Nope",
      "org.varlink.service.GetInfo",
      "org.varlink.service.GetInterfaceDescription",
      "org.composefs.Oci.GetInfo",
    ];
    const callArb = fc.record({
      method: fc.constantFrom(...methods),
      parameters: fc.oneof(
        fc.constant(undefined),
        fc.constant(null),
        fc.dictionary(
          fc.constantFrom("n", "index", "typed", "interface", "pair", "x"),
          fc.oneof(fc.integer(), fc.string(), fc.boolean(), fc.constant(null), fc.object()),
        ),
      ),
      more: fc.option(fc.boolean(), { nil: undefined }),
    }).map((c) => JSON.stringify(c));
    const mutate = (s: string, muts: { at: number; ch: string }[]) => {
      let out = s;
      for (const m of muts) {
        const i = m.at % (out.length + 1);
        out = out.slice(0, i) + m.ch + out.slice(i + 1);
      }
      return out.replaceAll("\0", "");
    };
    const msgArb = fc.oneof(
      callArb,
      fc.tuple(
        callArb,
        fc.array(fc.record({ at: fc.nat(), ch: fc.string({ maxLength: 2 }) }), {
          minLength: 1,
          maxLength: 4,
        }),
      )
        .map(([s, m]) => mutate(s, m)),
      fc.string({ maxLength: 64 }).map((s) => s.replaceAll("\0", "")),
    );
    const messages = fc.sample(msgArb, { seed: 0xf022, numRuns: 10_000 });
    const sentinel = encodeCall("org.cfs.Test.Ping", { n: -1 });
    const stats = { replies: 0, errors: new Map<string, number>(), closes: 0 };
    let sock = await UnixSocket.connect(path);
    let pending = "";
    const buf = new Uint8Array(65536);
    try {
      for (const m of messages) {
        await sock.sendMessage(enc.encode(m + "\0"));
        await sock.sendMessage(sentinel).catch(() => {});
        // Read replies until the sentinel's answer, or EOF (the server dropped us).
        let done = false;
        while (!done) {
          const { n, fds } = await sock.recvMessage(buf).catch(() => ({ n: 0, fds: [] }));
          for (const f of fds) f.close();
          if (n === 0) {
            stats.closes++;
            sock.close();
            sock = await UnixSocket.connect(path);
            pending = "";
            break;
          }
          pending += dec.decode(buf.subarray(0, n));
          let nul;
          while ((nul = pending.indexOf("\0")) >= 0) {
            const reply = JSON.parse(pending.slice(0, nul));
            pending = pending.slice(nul + 1);
            const keys = Object.keys(reply).filter((k) =>
              !["parameters", "continues", "error"].includes(k)
            );
            assert.deepEqual(keys, [], "replies only carry parameters/continues/error");
            if (reply.error) {
              assert.notEqual(reply.continues, true);
              stats.errors.set(reply.error, (stats.errors.get(reply.error) ?? 0) + 1);
            } else if (reply.parameters?.n === -1) {
              done = true;
            } else stats.replies++;
          }
        }
      }
    } finally {
      sock.close();
    }
    // Every class of outcome happened, and the server survived all of it.
    assert.ok(stats.replies > 100, `replies ${stats.replies}`);
    assert.ok(stats.closes > 100, `closes ${stats.closes}`);
    for (
      const e of [
        "org.varlink.service.MethodNotFound",
        "org.varlink.service.InvalidParameter",
        "org.varlink.service.InterfaceNotFound",
        "org.cfs.Test.InternalError",
      ]
    ) assert.ok((stats.errors.get(e) ?? 0) > 0, `${e} seen: ${[...stats.errors.keys()]}`);
    using client = await VarlinkClient.connect(path);
    assert.equal((await client.call("org.varlink.service.GetInfo")).parameters.product, "cfs-test");
    client.close();
    await server.close();
    await served;
  });
});

Deno.test("varlinkctl talks to our server: info, list-interfaces, introspect, call, --more, --push-fd", async () => {
  const varlinkctl = requireCommand("varlinkctl");
  await using dir = await tempDir();
  const { service } = testService();
  const server = new VarlinkServer(service);
  const path = `${dir.path}/s.sock`;
  const { served } = server.listen(path);
  try {
    const info = await run(varlinkctl, ["--json=short", "info", path]);
    assert.deepEqual(JSON.parse(info.stdout).interfaces, ["org.cfs.Test", "org.varlink.service"]);
    const ifaces = await run(varlinkctl, ["list-interfaces", path]);
    assert.deepEqual(ifaces.stdout.trim().split("\n"), ["org.cfs.Test", "org.varlink.service"]);
    const intro = await run(varlinkctl, ["introspect", path, "org.cfs.Test"]);
    assert.match(intro.stdout, /method Ping\(/);
    const ping = await run(varlinkctl, [
      "--json=short",
      "call",
      path,
      "org.cfs.Test.Ping",
      '{"n":42}',
    ]);
    assert.deepEqual(JSON.parse(ping.stdout), { n: 42 });
    const more = await run(varlinkctl, [
      "--json=short",
      "--more",
      "call",
      path,
      "org.cfs.Test.Count",
      '{"n":3}',
    ]);
    const frames = more.stdout.split("\n").filter((l) => l).map((l) =>
      JSON.parse(l.startsWith("\x1e") ? l.slice(1) : l)
    );
    assert.deepEqual(frames, [{ i: 0 }, { i: 1 }, { i: 2 }]);
    const file = `${dir.path}/pushed.txt`;
    await Deno.writeTextFile(file, "pushed through SCM_RIGHTS");
    const pushed = await run(varlinkctl, [
      "--json=short",
      `--push-fd=${file}`,
      "call",
      path,
      "org.cfs.Test.ReadFd",
      '{"index":0}',
    ]);
    assert.deepEqual(JSON.parse(pushed.stdout), { data: "pushed through SCM_RIGHTS" });
    const bad = await run(varlinkctl, ["call", path, "org.cfs.Test.Ping", '{"n":"x"}'], {
      allowFail: true,
    });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stdout + bad.stderr, /InvalidParameter|Invalid argument/);
    const missing = await run(varlinkctl, ["call", path, "org.cfs.Test.Nope", "{}"], {
      allowFail: true,
    });
    assert.notEqual(missing.code, 0);
  } finally {
    await server.close();
    await served;
  }
});

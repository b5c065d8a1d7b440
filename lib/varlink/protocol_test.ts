import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeCall,
  decodeReply,
  encodeCall,
  encodeErrorReply,
  encodeMessage,
  encodeReply,
  InvalidCallError,
  MessageSplitter,
  MessageTooLargeError,
  parseJson,
  splitQualifiedName,
  stringifyJson,
  TooManyFdsError,
  VarlinkProtocolError,
} from "./protocol.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const SEED = 0x5eed;

Deno.test("decodeCall() normalizes flags and parameters", async (t) => {
  const cases: { name: string; input: string; expected: unknown }[] = [
    {
      name: "absent parameters and flags",
      input: '{"method":"a.b.C"}',
      expected: { method: "a.b.C", parameters: {}, oneway: false, more: false, upgrade: false },
    },
    {
      name: "null parameters and null flags",
      input: '{"method":"a.b.C","parameters":null,"more":null}',
      expected: { method: "a.b.C", parameters: {}, oneway: false, more: false, upgrade: false },
    },
    {
      name: "all flags set",
      input: '{"method":"a.b.C","parameters":{"x":1},"oneway":true,"more":true,"upgrade":true}',
      expected: { method: "a.b.C", parameters: { x: 1 }, oneway: true, more: true, upgrade: true },
    },
    {
      name: "unknown top-level keys are ignored",
      input: '{"method":"a.b.C","extra":[1]}',
      expected: { method: "a.b.C", parameters: {}, oneway: false, more: false, upgrade: false },
    },
    {
      name: "u64 beyond 2^53 stays exact",
      input: '{"method":"a.b.C","parameters":{"n":18446744073709551615,"f":1.5}}',
      expected: {
        method: "a.b.C",
        parameters: { n: 18446744073709551615n, f: 1.5 },
        oneway: false,
        more: false,
        upgrade: false,
      },
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => assert.deepEqual(decodeCall(enc.encode(c.input)), c.expected));
  }
});

Deno.test("decodeCall() rejects malformed calls with the right error class", async (t) => {
  const cases: { name: string; input: Uint8Array; key?: string }[] = [
    { name: "not JSON", input: enc.encode("{nope") },
    { name: "not UTF-8", input: new Uint8Array([0x7b, 0xff, 0x7d]) },
    { name: "an array", input: enc.encode("[1]") },
    { name: "no method", input: enc.encode('{"parameters":{}}') },
    { name: "method not a string", input: enc.encode('{"method":3}') },
    {
      name: "parameters an array",
      input: enc.encode('{"method":"a.b.C","parameters":[]}'),
      key: "parameters",
    },
    { name: "more a string", input: enc.encode('{"method":"a.b.C","more":"yes"}'), key: "more" },
    { name: "oneway a number", input: enc.encode('{"method":"a.b.C","oneway":1}'), key: "oneway" },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      assert.throws(() => decodeCall(c.input), (e: unknown) => {
        assert.ok(e instanceof VarlinkProtocolError);
        if (c.key) {
          assert.ok(e instanceof InvalidCallError);
          assert.equal(e.key, c.key);
          assert.equal(e.method, "a.b.C");
        } else {
          assert.ok(!(e instanceof InvalidCallError));
        }
        return true;
      });
    });
  }
});

Deno.test("decodeReply() accepts the three parameter forms and rejects foreign keys", async (t) => {
  const ok: { name: string; input: string; expected: unknown }[] = [
    {
      name: "absent",
      input: '{"continues":false}',
      expected: { parameters: {}, continues: false },
    },
    { name: "null", input: '{"parameters":null}', expected: { parameters: {}, continues: false } },
    { name: "empty", input: '{"parameters":{}}', expected: { parameters: {}, continues: false } },
    {
      name: "error",
      input: '{"error":"a.b.E","parameters":{"x":1}}',
      expected: { parameters: { x: 1 }, continues: false, error: "a.b.E" },
    },
    {
      name: "continues",
      input: '{"parameters":{"i":1},"continues":true}',
      expected: { parameters: { i: 1 }, continues: true },
    },
  ];
  for (const c of ok) {
    await t.step(c.name, () => assert.deepEqual(decodeReply(enc.encode(c.input)), c.expected));
  }
  const bad = [
    '{"parameters":{},"method":"x"}',
    '{"parameters":[1]}',
    '{"continues":"no"}',
    '{"error":5}',
    '{"error":"a.b.E","continues":true}',
    "1",
  ];
  for (const b of bad) {
    await t.step(`rejects ${b}`, () => {
      assert.throws(() => decodeReply(enc.encode(b)), VarlinkProtocolError);
    });
  }
});

Deno.test("encode*() writes canonical replies: plain integers, NUL terminator, no undefined keys", () => {
  assert.equal(
    dec.decode(encodeReply({ n: 2n ** 64n }, false)),
    '{"parameters":{"n":18446744073709551616},"continues":false}\0',
  );
  assert.equal(dec.decode(encodeReply(undefined, false)), '{"continues":false}\0');
  assert.equal(dec.decode(encodeErrorReply("a.b.E")), '{"error":"a.b.E","parameters":{}}\0');
  assert.equal(
    dec.decode(encodeCall("a.b.C", {}, { more: true })),
    '{"method":"a.b.C","more":true}\0',
  );
  assert.equal(dec.decode(encodeMessage({ s: "\u0000" })), '{"s":"\\u0000"}\0');
  assert.equal(stringifyJson({ a: 1e21 }), '{"a":1e+21}', "floats keep JSON's own rendering");
});

Deno.test("parseJson() keeps safe integers as numbers and big ones as bigint", () => {
  assert.deepEqual(parseJson("[9007199254740991, 9007199254740993, -9007199254740993, 1e300]"), [
    9007199254740991,
    9007199254740993n,
    -9007199254740993n,
    1e300,
  ]);
});

Deno.test("splitQualifiedName() splits valid names and rejects the rest", () => {
  assert.deepEqual(splitQualifiedName("org.composefs.Oci.GetInfo"), {
    interface: "org.composefs.Oci",
    member: "GetInfo",
  });
  for (
    const bad of ["GetInfo", ".GetInfo", "org.Oci.getInfo", "org..Oci.X", "org.Oci.", "a.b-.C"]
  ) {
    assert.equal(splitQualifiedName(bad), undefined, bad);
  }
});

function messages(...jsons: string[]): Uint8Array {
  return enc.encode(jsons.map((j) => j + "\0").join(""));
}

Deno.test("MessageSplitter reassembles a message split at every byte boundary", () => {
  const data = messages('{"method":"a.b.C","parameters":{"x":"\u00e9"}}', '{"method":"a.b.D"}');
  for (let cut = 0; cut <= data.length; cut++) {
    const s = new MessageSplitter<number>();
    const out = [...s.push(data.subarray(0, cut), [1]), ...s.push(data.subarray(cut), [])];
    assert.deepEqual(out.map((m) => dec.decode(m.bytes)), [
      '{"method":"a.b.C","parameters":{"x":"\u00e9"}}',
      '{"method":"a.b.D"}',
    ]);
    // The first push's fds belong to the first message starting in it (an empty push: the
    // next message that starts), which is the first message either way.
    assert.deepEqual(out.map((m) => m.fds), [[1], []], `cut ${cut}`);
    assert.ok(s.atBoundary);
  }
});

Deno.test("MessageSplitter binds a batch to the first message starting in its receive", async (t) => {
  await t.step("batch arriving with the tail of one message goes to the next message", () => {
    const s = new MessageSplitter<string>();
    assert.deepEqual(s.push(enc.encode('{"a"'), ["A"]), []);
    const out = s.push(enc.encode(':1}\0{"b":2}\0'), ["B"]);
    assert.deepEqual(out.map((m) => m.fds), [["A"], ["B"]]);
  });
  await t.step("batch arriving in the middle of a message waits for the next start", () => {
    const s = new MessageSplitter<string>();
    s.push(enc.encode('{"a"'), []);
    assert.deepEqual(s.push(enc.encode(":1"), ["X"]), []);
    assert.equal(s.heldFds, 1);
    const out = s.push(enc.encode('}\0{"b":2}\0'), []);
    assert.deepEqual(out.map((m) => m.fds), [[], ["X"]]);
  });
  await t.step("two messages in one receive: only the first gets the batch", () => {
    const s = new MessageSplitter<string>();
    const out = s.push(messages("{}", "{}", "{}"), ["F", "G"]);
    assert.deepEqual(out.map((m) => m.fds), [["F", "G"], [], []]);
  });
  await t.step("fds at end of stream are handed back by drainFds()", () => {
    const s = new MessageSplitter<string>();
    s.push(enc.encode("{"), ["Z"]);
    assert.ok(!s.atBoundary);
    assert.deepEqual(s.drainFds(), ["Z"]);
  });
});

Deno.test("MessageSplitter enforces the message size and fd limits, then stays failed", async (t) => {
  await t.step("size", () => {
    const s = new MessageSplitter<number>({ maxMessageSize: 8 });
    assert.equal(s.push(enc.encode("1234567\0"), []).length, 1, "exactly the limit is fine");
    s.push(enc.encode("1234"), []);
    assert.throws(() => s.push(enc.encode("5678"), []), (e: unknown) => {
      assert.ok(e instanceof MessageTooLargeError);
      assert.equal(e.limit, 8);
      assert.equal(e.size, 9);
      return true;
    });
    assert.throws(() => s.push(enc.encode("\0"), []), VarlinkProtocolError);
  });
  await t.step("fds", () => {
    const s = new MessageSplitter<number>({ maxFds: 3 });
    s.push(enc.encode("{"), [1, 2]);
    assert.throws(() => s.push(enc.encode("}"), [3, 4]), (e: unknown) => {
      assert.ok(e instanceof TooManyFdsError);
      assert.equal(e.count, 4);
      assert.equal(e.limit, 3);
      return true;
    });
    assert.deepEqual(s.drainFds().sort(), [1, 2, 3, 4], "held fds come back for closing");
  });
});

Deno.test("MessageSplitter property: any chunking yields the same messages and fd owners", () => {
  const msgArb = fc.record({
    json: fc.json({ maxDepth: 2 }).filter((j) => !j.includes("\0")),
    fds: fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 3 }),
  });
  fc.assert(
    fc.property(
      fc.array(msgArb, { minLength: 1, maxLength: 8 }),
      fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 16 }),
      (msgs, sizes) => {
        // As the kernel delivers them: a receive that carries fds starts at the first byte of
        // the message they rode on; the message's other bytes come in arbitrary chunks.
        const s = new MessageSplitter<number>();
        const got: { json: string; fds: number[] }[] = [];
        let si = 0;
        for (const m of msgs) {
          const bytes = enc.encode(m.json + "\0");
          let off = 0;
          while (off < bytes.length) {
            const n = Math.min(sizes[si++ % sizes.length], bytes.length - off);
            const out = s.push(bytes.subarray(off, off + n), off === 0 ? m.fds : []);
            got.push(...out.map((x) => ({ json: dec.decode(x.bytes), fds: x.fds })));
            off += n;
          }
        }
        assert.deepEqual(got, msgs.map((m) => ({ json: m.json, fds: m.fds })));
        assert.ok(s.atBoundary);
      },
    ),
    { seed: SEED, numRuns: 300 },
  );
});

Deno.test("decodeCall() fuzz: random and mutated bytes only ever throw VarlinkProtocolError", () => {
  const valid = enc.encode(
    '{"method":"org.composefs.Oci.PutLayer","parameters":{"handle":1,"diff_id":"sha256:00","zerocopy":false},"more":false}',
  );
  const mutated = fc.array(
    fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }), del: fc.boolean() }),
    { minLength: 1, maxLength: 6 },
  ).map((muts) => {
    const b = [...valid];
    for (const m of muts) {
      const i = m.at % b.length;
      if (m.del) b.splice(i, 1);
      else b[i] = m.byte;
    }
    return new Uint8Array(b);
  });
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), mutated), (bytes) => {
      try {
        const c = decodeCall(bytes);
        assert.equal(typeof c.method, "string");
        assert.equal(typeof c.parameters, "object");
      } catch (e) {
        assert.ok(e instanceof VarlinkProtocolError, `unexpected ${(e as Error).name}`);
      }
    }),
    { seed: SEED, numRuns: 5000 },
  );
});

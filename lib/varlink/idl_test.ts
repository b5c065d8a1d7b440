import assert from "node:assert/strict";
import fc from "fast-check";
import { IdlSyntaxError, parseIdl, validateValue } from "./idl.ts";
import REPOSITORY_IDL from "./org.composefs.Repository.varlink" with { type: "text" };
import OCI_IDL from "./org.composefs.Oci.varlink" with { type: "text" };
import SERVICE_IDL from "./org.varlink.service.varlink" with { type: "text" };
import { requireCommand, run } from "../../tests/_helpers.ts";

const IDL_FILES = [
  "org.composefs.Repository.varlink",
  "org.composefs.Oci.varlink",
  "org.varlink.service.varlink",
];

Deno.test("parseIdl() reads the composefs interfaces with the spec's methods and errors", () => {
  const repo = parseIdl(REPOSITORY_IDL);
  assert.equal(repo.name, "org.composefs.Repository");
  assert.deepEqual([...repo.methods.keys()], [
    "InitRepository",
    "EnsureRepository",
    "OpenRepository",
    "CloseRepository",
    "Fsck",
    "Gc",
    "ImageObjects",
    "ListImageRefs",
    "Mount",
  ]);
  assert.deepEqual([...repo.errors.keys()], [
    "RepoNotFound",
    "InvalidHandle",
    "InvalidSpec",
    "NoSuchRef",
    "InternalError",
  ]);
  const oci = parseIdl(OCI_IDL);
  assert.equal(oci.name, "org.composefs.Oci");
  assert.deepEqual([...oci.methods.keys()], [
    "ListImages",
    "Check",
    "Inspect",
    "Tag",
    "Untag",
    "ComputeId",
    "Pull",
    "OciMount",
    "GetInfo",
    "HasLayer",
    "GetLayer",
    "PutLayer",
    "FinalizeImage",
  ]);
  assert.deepEqual([...oci.errors.keys()], [
    "RepoNotFound",
    "InvalidHandle",
    "NoSuchImage",
    "InternalError",
    "NoSuchLayer",
    "InvalidDigest",
    "DiffIdMismatch",
    "InvalidRequest",
    "FdLimitExceeded",
    "BootImageMismatch",
  ]);
  assert.deepEqual(oci.methods.get("PutLayer")!.input.fields.map((f) => [f.name, f.type.kind]), [
    ["handle", "int"],
    ["diff_id", "string"],
    ["zerocopy", "bool"],
  ]);
  assert.deepEqual(repo.methods.get("EnsureRepository")!.output.fields[0], {
    name: "status",
    type: { kind: "enum", values: ["Opened", "Created", "Upgraded"] },
  });
  assert.equal(parseIdl(SERVICE_IDL).name, "org.varlink.service");
});

Deno.test("varlinkctl validate-idl accepts every IDL file we serve", async () => {
  const varlinkctl = requireCommand("varlinkctl");
  for (const f of IDL_FILES) {
    const path = new URL(f, import.meta.url).pathname;
    const r = await run(varlinkctl, ["validate-idl", path], { allowFail: true });
    assert.equal(r.code, 0, `${f}: ${r.stderr}`);
  }
});

Deno.test("parseIdl() reports syntax errors with line and column", async (t) => {
  const cases: { name: string; text: string; line: number; message: RegExp }[] = [
    { name: "empty", text: "", line: 1, message: /expected "interface"/ },
    { name: "no members", text: "interface a.b\n", line: 2, message: /at least one member/ },
    {
      name: "bad interface name",
      text: "interface ab\nmethod X()->()",
      line: 1,
      message: /interface name/,
    },
    {
      name: "lowercase method",
      text: "interface a.b\nmethod x() -> ()",
      line: 2,
      message: /member name/,
    },
    { name: "missing arrow", text: "interface a.b\nmethod X() ()", line: 2, message: /"->"/ },
    {
      name: "unknown type",
      text: "interface a.b\nmethod X(a: Foo) -> ()",
      line: 2,
      message: /"Foo" is not declared/,
    },
    {
      name: "double optional",
      text: "interface a.b\nmethod X(a: ??int) -> ()",
      line: 2,
      message: /cannot follow/,
    },
    {
      name: "duplicate member",
      text: "interface a.b\nerror E()\nerror E()",
      line: 3,
      message: /duplicate member/,
    },
    {
      name: "duplicate field",
      text: "interface a.b\nerror E(a: int, a: int)",
      line: 2,
      message: /duplicate name/,
    },
    {
      name: "enum as method input",
      text: "interface a.b\nmethod X(A, B) -> ()",
      line: 2,
      message: /struct/,
    },
    {
      name: "stray character",
      text: "interface a.b\nmethod X(a: int) -> (b: {})",
      line: 2,
      message: /type/,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      assert.throws(() => parseIdl(c.text), (e: unknown) => {
        assert.ok(e instanceof IdlSyntaxError);
        assert.equal(e.line, c.line);
        assert.match(e.message, c.message);
        return true;
      });
    });
  }
});

Deno.test("validateValue() checks types, optionals, enums, nesting and named types", async (t) => {
  const idl = parseIdl(`interface a.b
type T (x: int, tags: [string]bool)
method M(
  s: string, n: int, f: float, b: bool, o: ?string, a: []int, e: (X, Y), t: T, any: object,
  nested: (inner: ?[]T)
) -> ()`);
  const input = idl.methods.get("M")!.input;
  const good = {
    s: "x",
    n: 18446744073709551615n,
    f: 1.5,
    b: true,
    a: [1, 2],
    e: "Y",
    t: { x: 1, tags: { k: false } },
    any: { whatever: [1] },
    nested: { inner: null },
  };
  await t.step("a conforming value (absent optional, bigint int)", () => {
    assert.equal(validateValue(idl, input, good), undefined);
  });
  const bad: { name: string; patch: Record<string, unknown>; path: (string | number)[] }[] = [
    { name: "string as int", patch: { n: "1" }, path: ["n"] },
    { name: "float as int", patch: { n: 1.5 }, path: ["n"] },
    { name: "missing required", patch: { s: undefined }, path: ["s"] },
    { name: "null for required", patch: { b: null }, path: ["b"] },
    { name: "array element", patch: { a: [1, "2"] }, path: ["a", 1] },
    { name: "enum value", patch: { e: "Z" }, path: ["e"] },
    {
      name: "named struct field",
      patch: { t: { x: 1, tags: { k: 1 } } },
      path: ["t", "tags", "k"],
    },
    {
      name: "optional array of named",
      patch: { nested: { inner: [{ x: "no" }] } },
      path: ["nested", "inner", 0, "x"],
    },
    { name: "object missing", patch: { any: undefined }, path: ["any"] },
  ];
  for (const c of bad) {
    await t.step(c.name, () => {
      const v = { ...good, ...c.patch } as Record<string, unknown>;
      for (const k of Object.keys(v)) if (v[k] === undefined) delete v[k];
      assert.deepEqual(validateValue(idl, input, v as never)?.path, c.path);
    });
  }
  await t.step("unknown keys: ignored by default, rejected when strict", () => {
    const v = { ...good, extra: 1 };
    assert.equal(validateValue(idl, input, v), undefined);
    assert.deepEqual(validateValue(idl, input, v, { strict: true })?.path, ["extra"]);
  });
});

Deno.test("parseIdl() fuzz: mutated IDL text parses or throws IdlSyntaxError", () => {
  const alphabet = ["(", ")", ":", ",", "?", "[]", "->", "\n", " ", "int", "X", "method", "#"];
  fc.assert(
    fc.property(
      fc.array(
        fc.record({ at: fc.nat(), ins: fc.constantFrom(...alphabet), del: fc.nat({ max: 3 }) }),
        { minLength: 1, maxLength: 5 },
      ),
      (muts) => {
        let s = OCI_IDL;
        for (const m of muts) {
          const i = m.at % (s.length + 1);
          s = s.slice(0, i) + m.ins + s.slice(i + m.del);
        }
        try {
          parseIdl(s);
        } catch (e) {
          assert.ok(
            e instanceof IdlSyntaxError,
            `unexpected ${(e as Error).name}: ${(e as Error).message}`,
          );
        }
      },
    ),
    { seed: 0x1d1, numRuns: 500 },
  );
});

import assert from "node:assert/strict";
import fc from "fast-check";
import { parseToml, TomlError, type TomlTable } from "./toml.ts";

/** A storage.conf as shipped by containers-common (trimmed), with the constructs it uses. */
const STORAGE_CONF = `
# This file is the configuration file for all tools
[storage]

# Default Storage Driver, Must be set for proper operation.
driver = "overlay"

# Temporary storage location
runroot = "/run/containers/storage"

# Primary Read/Write location of container storage
graphroot = '/var/lib/containers/storage'

rootless_storage_path = "$HOME/.local/share/containers/storage"

[storage.options]
# Storage options to be passed to underlying storage drivers

# AdditionalImageStores is used to pass paths to additional Read/Only image stores
additionalimagestores = [
  "/usr/lib/containers/storage", # a comment inside
  '/opt/store',
]

pull_options = {enable_partial_images = "false", use_hard_links = "false", ostree_repos=""}

[storage.options.overlay]
mountopt = "nodev,metacopy=on"
skip_mount_home = false
size = 0

[storage.options.thinpool]
autoextend_percent = "20"
`;

Deno.test("toml: parses a realistic storage.conf", () => {
  const t = parseToml(STORAGE_CONF);
  assert.deepEqual(t, {
    storage: {
      driver: "overlay",
      runroot: "/run/containers/storage",
      graphroot: "/var/lib/containers/storage",
      rootless_storage_path: "$HOME/.local/share/containers/storage",
      options: {
        additionalimagestores: ["/usr/lib/containers/storage", "/opt/store"],
        pull_options: { enable_partial_images: "false", use_hard_links: "false", ostree_repos: "" },
        overlay: { mountopt: "nodev,metacopy=on", skip_mount_home: false, size: 0 },
        thinpool: { autoextend_percent: "20" },
      },
    },
  });
});

Deno.test("toml: strings, escapes, integers, dotted and quoted keys", () => {
  const t = parseToml(
    [
      `a = "tab\\tq\\"u\\u00e9\\U0001F600"`,
      `b = 'C:\\raw'`,
      `c = """\nline1\nline2 \\\n   joined"""`,
      `d = '''\nraw\\n'''`,
      `e = [1, -2, 0x1F, 0o17, 0b101, 1_000]`,
      `f.g = true`,
      `"quoted key".x = "y"`,
      `h = [[ "n" ], []]`,
      `i = """two""""`,
    ].join("\r\n"),
  );
  assert.deepEqual(t, {
    a: 'tab\tq"u\u00e9\u{1F600}',
    b: "C:\\raw",
    c: "line1\nline2 joined",
    d: "raw\\n",
    e: [1, -2, 31, 15, 5, 1000],
    f: { g: true },
    "quoted key": { x: "y" },
    h: [["n"], []],
    i: 'two"',
  });
});

Deno.test("toml: __proto__ is a plain key", () => {
  const t = parseToml(`__proto__ = "x"\n[a.__proto__]\nb = 1\n`);
  assert.equal(Object.getPrototypeOf(t), Object.prototype);
  assert.equal(Object.getOwnPropertyDescriptor(t, "__proto__")?.value, "x");
  assert.deepEqual(
    Object.getOwnPropertyDescriptor(t.a as TomlTable, "__proto__")?.value,
    { b: 1 },
  );
});

Deno.test("toml: errors are typed with positions", () => {
  const cases: [string, RegExp, number][] = [
    ['a = "x"\na = "y"', /Duplicate key "a"/, 2],
    ["[s]\n[s]", /defined twice/, 2],
    ['a = "unterminated', /Unterminated string/, 1],
    ["a = 1.5", /floats and dates/, 1],
    ["a = 1979-05-27", /floats and dates/, 1],
    ["[[t]]", /Arrays of tables/, 1],
    ["a = [1, 2", /Unterminated array|Expected/, 1],
    ["a = 99999999999999999999", /out of range/, 1],
    ['a = "\\q"', /Invalid escape/, 1],
    ["= 1", /Expected a key|Unexpected/, 1],
    ['a = "x" b = 1', /Expected end of line/, 1],
    ["a = {b = 1}\n[a]", /Cannot extend inline/, 2],
    ["a = 1\n[a.b]", /is not a table/, 2],
    ["a = 01", /Unsupported value/, 1],
  ];
  for (const [src, re, line] of cases) {
    assert.throws(() => parseToml(src), (e) => {
      assert.ok(e instanceof TomlError, `${src}: ${e}`);
      assert.match(e.message, re, src);
      assert.equal(e.line, line, src);
      return true;
    });
  }
});

/** Serialise a value the way a human would write it, to round-trip generated tables. */
function emitValue(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return `[${v.map(emitValue).join(", ")}]`;
  throw new Error("unreachable");
}

const keyArb = fc.stringMatching(/^[a-z_][a-z0-9_-]{0,8}$/);
const scalarArb = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 20 }),
  fc.integer({ min: -1e9, max: 1e9 }),
  fc.boolean(),
);
const valueArb = fc.oneof(scalarArb, fc.array(fc.string({ maxLength: 10 }), { maxLength: 4 }));

Deno.test("toml: generated documents round-trip (fast-check, fixed seed)", () => {
  fc.assert(
    fc.property(
      fc.dictionary(keyArb, valueArb, { maxKeys: 6 }),
      fc.dictionary(keyArb, fc.dictionary(keyArb, valueArb, { maxKeys: 4 }), { maxKeys: 3 }),
      (top, tables) => {
        const lines: string[] = [];
        for (const [k, v] of Object.entries(top)) lines.push(`${k} = ${emitValue(v)} # c`);
        const expected: Record<string, unknown> = { ...top };
        for (const [name, body] of Object.entries(tables)) {
          if (Object.hasOwn(top, name)) continue;
          lines.push(`[section.${name}]`);
          for (const [k, v] of Object.entries(body)) lines.push(`  ${k} = ${emitValue(v)}`);
          expected.section ??= {};
          (expected.section as Record<string, unknown>)[name] = { ...body };
        }
        if (Object.hasOwn(top, "section")) return; // would collide with the table
        assert.deepEqual(parseToml(lines.join("\n")), expected);
      },
    ),
    { seed: 7, numRuns: 400 },
  );
});

Deno.test("toml: arbitrary input either parses or throws TomlError (fast-check, fixed seed)", () => {
  const alphabet = fc.constantFrom(
    ..."[]{}=,.\"'#\\\n\r\t abc019_-xuU+".split(""),
    '"""',
    "'''",
    "true",
    "false",
    "0x",
  );
  fc.assert(
    fc.property(fc.array(alphabet, { maxLength: 60 }).map((a) => a.join("")), (src) => {
      try {
        parseToml(src);
      } catch (e) {
        if (!(e instanceof TomlError)) throw e;
      }
    }),
    { seed: 11, numRuns: 3000 },
  );
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 80 }), (src) => {
      try {
        parseToml(src);
      } catch (e) {
        if (!(e instanceof TomlError)) throw e;
      }
    }),
    { seed: 12, numRuns: 2000 },
  );
});

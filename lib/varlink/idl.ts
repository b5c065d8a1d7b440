/**
 * Varlink interface definitions (IDL, varlink.org "Interface Definition"): a parser to a typed
 * model and a validator that checks call parameters against a method's input struct, so a
 * server can answer `org.varlink.service.InvalidParameter` before a handler runs.
 *
 * Grammar accepted (comments `#…` anywhere whitespace is allowed):
 *
 * ```
 * interface  = "interface" NAME member+
 * member     = "type" NAME (struct | enum)
 *            | "method" NAME struct "->" struct
 *            | "error" NAME struct
 * struct     = "(" [ field { "," field } ] ")"
 * field      = FIELD ":" type
 * enum       = "(" FIELD { "," FIELD } ")"
 * type       = [ "?" ] ( "bool" | "int" | "float" | "string" | "object"
 *                      | "[]" type | "[string]" type | NAME | struct | enum )
 * ```
 *
 * Pure: never touches `Deno` or `ffi/`.
 *
 * @module
 */

import type { JsonObject, JsonValue } from "./protocol.ts";

/** A varlink type. */
export type IdlType =
  | { kind: "bool" | "int" | "float" | "string" | "object" }
  | { kind: "optional"; type: IdlType }
  | { kind: "array"; type: IdlType }
  | { kind: "map"; type: IdlType }
  | { kind: "struct"; fields: IdlField[] }
  | { kind: "enum"; values: string[] }
  | { kind: "named"; name: string };

/** A struct field. */
export interface IdlField {
  /** Field name. */
  name: string;
  /** Field type. */
  type: IdlType;
}

/** A struct type (method inputs/outputs and error parameters are always structs). */
export type IdlStruct = { kind: "struct"; fields: IdlField[] };

/** A method declaration. */
export interface IdlMethod {
  /** Method name, e.g. `GetInfo`. */
  name: string;
  /** Input parameters. */
  input: IdlStruct;
  /** Output parameters. */
  output: IdlStruct;
}

/** An error declaration. */
export interface IdlError {
  /** Error name, e.g. `InvalidHandle`. */
  name: string;
  /** Error parameters. */
  parameters: IdlStruct;
}

/** A parsed interface. */
export interface IdlInterface {
  /** Interface name, e.g. `org.composefs.Oci`. */
  name: string;
  /** Named types. */
  types: Map<string, IdlType>;
  /** Methods by name, in declaration order. */
  methods: Map<string, IdlMethod>;
  /** Errors by name, in declaration order. */
  errors: Map<string, IdlError>;
}

/** IDL text that does not parse, with its 1-based position. */
export class IdlSyntaxError extends SyntaxError {
  /** Error name, for matching without `instanceof`. */
  override name = "IdlSyntaxError";
  /** 1-based line. */
  readonly line: number;
  /** 1-based column. */
  readonly column: number;
  /** Create it. */
  constructor(message: string, line: number, column: number) {
    super(`Cannot parse varlink IDL at ${line}:${column}: ${message}`);
    this.line = line;
    this.column = column;
  }
}

const INTERFACE_NAME = /^[A-Za-z](?:-*[A-Za-z0-9])*(?:\.[A-Za-z0-9](?:-*[A-Za-z0-9])*)+$/;
const MEMBER_NAME = /^[A-Z][A-Za-z0-9]*$/;
const FIELD_NAME = /^[A-Za-z](?:_?[A-Za-z0-9])*$/;
const PRIMITIVES = new Set(["bool", "int", "float", "string", "object"]);

interface Token {
  text: string;
  pos: number;
}

/** Words (names, keywords) and punctuation; `->`, `[]` and `[string]` are single tokens. */
function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  const re = /\s+|#[^\n]*|->|\[\]|\[string\]|[A-Za-z0-9_.-]+|[():,?]|./gy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(src)) !== null) {
    const t = m[0];
    if (/^\s/.test(t) || t.startsWith("#")) continue;
    tokens.push({ text: t, pos: m.index });
  }
  return tokens;
}

class Parser {
  #tokens: Token[];
  #i = 0;
  #src: string;
  constructor(src: string) {
    this.#src = src;
    this.#tokens = tokenize(src);
  }

  fail(message: string, tok: Token | undefined = this.#tokens[this.#i]): never {
    const pos = tok?.pos ?? this.#src.length;
    const before = this.#src.slice(0, pos);
    const line = before.split("\n").length;
    const column = pos - before.lastIndexOf("\n");
    throw new IdlSyntaxError(message, line, column);
  }

  peek(): string | undefined {
    return this.#tokens[this.#i]?.text;
  }

  next(what: string): string {
    const t = this.#tokens[this.#i];
    if (t === undefined) this.fail(`expected ${what}, found end of input`);
    this.#i++;
    return t.text;
  }

  expect(text: string): void {
    const t = this.#tokens[this.#i];
    if (t?.text !== text) {
      this.fail(`expected "${text}", found ${t ? `"${t.text}"` : "end of input"}`);
    }
    this.#i++;
  }

  name(re: RegExp, what: string): string {
    const t = this.#tokens[this.#i];
    if (t === undefined || !re.test(t.text)) {
      this.fail(`expected ${what}, found ${t ? `"${t.text}"` : "end of input"}`);
    }
    this.#i++;
    return t.text;
  }

  get done(): boolean {
    return this.#i >= this.#tokens.length;
  }

  /** `(` already peeked: a struct (fields with `:`) or an enum (bare names). */
  structOrEnum(): IdlStruct | { kind: "enum"; values: string[] } {
    this.expect("(");
    if (this.peek() === ")") {
      this.#i++;
      return { kind: "struct", fields: [] };
    }
    const isStruct = this.#tokens[this.#i + 1]?.text === ":";
    const seen = new Set<string>();
    const fields: IdlField[] = [];
    const values: string[] = [];
    for (;;) {
      const tok = this.#tokens[this.#i];
      const n = this.name(FIELD_NAME, isStruct ? "a field name" : "an enum value");
      if (seen.has(n)) this.fail(`duplicate name "${n}"`, tok);
      seen.add(n);
      if (isStruct) {
        this.expect(":");
        fields.push({ name: n, type: this.type() });
      } else {
        values.push(n);
      }
      const sep = this.next('"," or ")"');
      if (sep === ")") break;
      if (sep !== ",") this.fail(`expected "," or ")", found "${sep}"`, this.#tokens[this.#i - 1]);
    }
    return isStruct ? { kind: "struct", fields } : { kind: "enum", values };
  }

  struct(): IdlStruct {
    const tok = this.#tokens[this.#i];
    const s = this.structOrEnum();
    if (s.kind !== "struct") this.fail("expected a struct, found an enum", tok);
    return s;
  }

  type(optionalAllowed = true): IdlType {
    const t = this.peek();
    if (t === "?") {
      if (!optionalAllowed) this.fail('"?" cannot follow "?"');
      this.#i++;
      return { kind: "optional", type: this.type(false) };
    }
    if (t === "[]") {
      this.#i++;
      return { kind: "array", type: this.type() };
    }
    if (t === "[string]") {
      this.#i++;
      return { kind: "map", type: this.type() };
    }
    if (t === "(") return this.structOrEnum();
    const tok = this.#tokens[this.#i];
    const word = this.next("a type");
    if (PRIMITIVES.has(word)) {
      return { kind: word as "bool" | "int" | "float" | "string" | "object" };
    }
    if (MEMBER_NAME.test(word)) return { kind: "named", name: word };
    this.fail(`expected a type, found "${word}"`, tok);
  }
}

/**
 * Parse varlink IDL text. Checks syntax, duplicate members and that every named type is
 * declared.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseIdl } from "./idl.ts";
 * const idl = parseIdl("interface org.example.Ping\nmethod Ping(n: ?int) -> (n: int)\n");
 * assert.deepEqual([...idl.methods.keys()], ["Ping"]);
 * ```
 */
export function parseIdl(text: string): IdlInterface {
  const p = new Parser(text);
  p.expect("interface");
  const name = p.name(INTERFACE_NAME, "an interface name");
  const iface: IdlInterface = { name, types: new Map(), methods: new Map(), errors: new Map() };
  const members = new Set<string>();
  const named: { name: string; at: () => never }[] = [];
  const collect = (t: IdlType): void => {
    switch (t.kind) {
      case "optional":
      case "array":
      case "map":
        collect(t.type);
        break;
      case "struct":
        t.fields.forEach((f) => collect(f.type));
        break;
      case "named":
        named.push({ name: t.name, at: () => p.fail(`type "${t.name}" is not declared`) });
        break;
    }
  };
  if (p.done) p.fail("an interface needs at least one member");
  while (!p.done) {
    const kw = p.next('"type", "method" or "error"');
    const member = p.name(MEMBER_NAME, "a member name");
    if (members.has(member)) p.fail(`duplicate member "${member}"`);
    members.add(member);
    if (kw === "type") {
      const t = p.structOrEnum();
      collect(t);
      iface.types.set(member, t);
    } else if (kw === "method") {
      const input = p.struct();
      p.expect("->");
      const output = p.struct();
      collect(input);
      collect(output);
      iface.methods.set(member, { name: member, input, output });
    } else if (kw === "error") {
      const parameters = p.struct();
      collect(parameters);
      iface.errors.set(member, { name: member, parameters });
    } else {
      p.fail(`expected "type", "method" or "error", found "${kw}"`);
    }
  }
  for (const n of named) if (!iface.types.has(n.name)) n.at();
  return iface;
}

/** How a value failed validation: the path to the bad value and why. */
export interface ValidationFailure {
  /** Path from the struct root, e.g. `["params", "diff_id"]`. */
  path: (string | number)[];
  /** What was wrong, e.g. `expected string`. */
  reason: string;
}

/** Options for {@link validateValue}. */
export interface ValidateOptions {
  /** Reject object keys the type does not declare (default false: ignore them, spec §1.2). */
  strict?: boolean;
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Check `value` against `type` (resolving named types in `iface`). Returns undefined when it
 * conforms, else the first failure. `null` and absence are the same for optional fields.
 */
export function validateValue(
  iface: IdlInterface,
  type: IdlType,
  value: JsonValue | undefined,
  options: ValidateOptions = {},
): ValidationFailure | undefined {
  const path: (string | number)[] = [];
  const fail = (reason: string): ValidationFailure => ({ path: [...path], reason });
  const walk = (t: IdlType, v: JsonValue | undefined): ValidationFailure | undefined => {
    switch (t.kind) {
      case "optional":
        return v === undefined || v === null ? undefined : walk(t.type, v);
      case "bool":
        return typeof v === "boolean" ? undefined : fail("expected bool");
      case "int":
        return (typeof v === "number" && Number.isInteger(v)) || typeof v === "bigint"
          ? undefined
          : fail("expected int");
      case "float":
        return typeof v === "number" || typeof v === "bigint" ? undefined : fail("expected float");
      case "string":
        return typeof v === "string" ? undefined : fail("expected string");
      case "object":
        return v === undefined ? fail("expected object") : undefined;
      case "array": {
        if (!Array.isArray(v)) return fail("expected array");
        for (let i = 0; i < v.length; i++) {
          path.push(i);
          const r = walk(t.type, v[i]);
          if (r) return r;
          path.pop();
        }
        return undefined;
      }
      case "map": {
        if (!isObject(v)) return fail("expected map");
        for (const [k, x] of Object.entries(v)) {
          path.push(k);
          const r = walk(t.type, x);
          if (r) return r;
          path.pop();
        }
        return undefined;
      }
      case "enum":
        return typeof v === "string" && t.values.includes(v)
          ? undefined
          : fail(`expected one of ${t.values.join(", ")}`);
      case "named": {
        const target = iface.types.get(t.name);
        if (target === undefined) return fail(`unknown type "${t.name}"`);
        return walk(target, v);
      }
      case "struct": {
        if (!isObject(v)) return fail("expected object");
        for (const f of t.fields) {
          path.push(f.name);
          const x = Object.hasOwn(v, f.name) ? v[f.name] : undefined;
          const r = x === undefined && f.type.kind !== "optional"
            ? fail("missing")
            : walk(f.type, x);
          if (r) return r;
          path.pop();
        }
        if (options.strict) {
          const known = new Set(t.fields.map((f) => f.name));
          for (const k of Object.keys(v)) {
            if (!known.has(k)) {
              path.push(k);
              return fail("not declared");
            }
          }
        }
        return undefined;
      }
    }
  };
  return walk(type, value);
}

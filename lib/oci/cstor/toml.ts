/**
 * A small TOML parser for the subset containers-storage's `storage.conf` uses: tables
 * (`[a.b]`), bare / quoted / dotted keys, basic and literal strings (also multi-line),
 * integers, booleans, arrays and inline tables, and comments. Floats, dates and arrays of
 * tables are refused with a {@link TomlError} rather than misread.
 *
 * @module
 */

/** A parsed TOML value (integers are JS numbers; they must be safe integers). */
export type TomlValue = string | number | boolean | TomlValue[] | TomlTable;
/** A TOML table. */
export interface TomlTable {
  [key: string]: TomlValue;
}

/** A syntax error in a TOML document, with its 1-based position. */
export class TomlError extends Error {
  /** The error class name. */
  override name = "TomlError";
  /** 1-based line of the error. */
  readonly line: number;
  /** 1-based column of the error. */
  readonly column: number;
  /** What was wrong, without the position. */
  readonly reason: string;
  /** Build the error from its structured fields. */
  constructor(reason: string, line: number, column: number) {
    super(`Invalid TOML at line ${line}, column ${column}: ${reason}`);
    this.reason = reason;
    this.line = line;
    this.column = column;
  }
}

/** Tables defined by a `[header]` or implicitly by a dotted key; tracked to refuse redefinition. */
type Origin = "header" | "implicit" | "inline" | "dotted";

const BARE_KEY = /^[A-Za-z0-9_-]$/;

class Parser {
  #s: string;
  #i = 0;
  #origins = new WeakMap<TomlTable, Origin>();

  /** Build the error from its structured fields. */
  constructor(s: string) {
    this.#s = s;
  }

  fail(reason: string, at = this.#i): never {
    let line = 1;
    let col = 1;
    for (let k = 0; k < at && k < this.#s.length; k++) {
      if (this.#s[k] === "\n") {
        line++;
        col = 1;
      } else col++;
    }
    throw new TomlError(reason, line, col);
  }

  peek(off = 0): string {
    return this.#s[this.#i + off] ?? "";
  }

  eof(): boolean {
    return this.#i >= this.#s.length;
  }

  /** Skip spaces and tabs. */
  ws(): void {
    while (this.peek() === " " || this.peek() === "\t") this.#i++;
  }

  /** Skip a comment (if any) up to but not including the newline. */
  comment(): void {
    if (this.peek() !== "#") return;
    while (!this.eof() && this.peek() !== "\n") {
      const c = this.#s.charCodeAt(this.#i);
      if ((c < 0x20 && c !== 0x09 && c !== 0x0d) || c === 0x7f) {
        this.fail("Control character in comment");
      }
      this.#i++;
    }
  }

  /** Expect end of line (optional comment), consuming the newline. */
  eol(): void {
    this.ws();
    this.comment();
    if (this.eof()) return;
    if (this.peek() === "\r" && this.peek(1) === "\n") {
      this.#i += 2;
      return;
    }
    if (this.peek() === "\n") {
      this.#i++;
      return;
    }
    this.fail(`Expected end of line, found "${this.peek()}"`);
  }

  /** Skip whitespace, newlines and comments (inside arrays). */
  wsNl(): void {
    for (;;) {
      this.ws();
      this.comment();
      if (this.peek() === "\n") this.#i++;
      else if (this.peek() === "\r" && this.peek(1) === "\n") this.#i += 2;
      else return;
    }
  }

  parse(): TomlTable {
    const root: TomlTable = {};
    this.#origins.set(root, "header");
    let current = root;
    while (!this.eof()) {
      this.ws();
      const c = this.peek();
      if (c === "#" || c === "\n" || c === "\r" || c === "") {
        this.eol();
        continue;
      }
      if (c === "[") {
        if (this.peek(1) === "[") this.fail("Arrays of tables are not supported");
        this.#i++;
        this.ws();
        const keys = this.key();
        this.ws();
        if (this.peek() !== "]") this.fail('Expected "]" after table name');
        this.#i++;
        current = this.defineTable(root, keys);
        this.eol();
        continue;
      }
      this.keyValue(current);
      this.eol();
    }
    return root;
  }

  defineTable(root: TomlTable, keys: string[]): TomlTable {
    let t = root;
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k];
      const last = k === keys.length - 1;
      if (!Object.hasOwn(t, key)) {
        const n: TomlTable = {};
        this.#origins.set(n, last ? "header" : "implicit");
        setKey(t, key, n);
        t = n;
        continue;
      }
      const v = t[key];
      if (!isTable(v)) this.fail(`Key "${keys.slice(0, k + 1).join(".")}" is not a table`);
      const origin = this.#origins.get(v);
      if (origin === "inline") this.fail(`Cannot extend inline table "${key}"`);
      if (last) {
        if (origin === "header" || origin === "dotted") {
          this.fail(`Table "${keys.join(".")}" is defined twice`);
        }
        this.#origins.set(v, "header");
      }
      t = v;
    }
    return t;
  }

  keyValue(table: TomlTable): void {
    const start = this.#i;
    const keys = this.key();
    this.ws();
    if (this.peek() !== "=") this.fail('Expected "=" after key');
    this.#i++;
    this.ws();
    const value = this.value();
    let t = table;
    for (let k = 0; k < keys.length - 1; k++) {
      const key = keys[k];
      if (!Object.hasOwn(t, key)) {
        const n: TomlTable = {};
        this.#origins.set(n, "dotted");
        setKey(t, key, n);
        t = n;
        continue;
      }
      const v = t[key];
      const origin = isTable(v) ? this.#origins.get(v) : undefined;
      if (!isTable(v) || origin === "inline" || origin === "header") {
        this.fail(`Cannot extend key "${keys.slice(0, k + 1).join(".")}"`, start);
      }
      t = v;
    }
    const last = keys[keys.length - 1];
    if (Object.hasOwn(t, last)) this.fail(`Duplicate key "${keys.join(".")}"`, start);
    setKey(t, last, value);
  }

  key(): string[] {
    const keys = [this.simpleKey()];
    for (;;) {
      this.ws();
      if (this.peek() !== ".") return keys;
      this.#i++;
      this.ws();
      keys.push(this.simpleKey());
    }
  }

  simpleKey(): string {
    const c = this.peek();
    if (c === '"') {
      if (this.#s.startsWith('"""', this.#i)) this.fail("Multi-line string used as key");
      return this.basicString();
    }
    if (c === "'") {
      if (this.#s.startsWith("'''", this.#i)) this.fail("Multi-line string used as key");
      return this.literalString();
    }
    const start = this.#i;
    while (BARE_KEY.test(this.peek())) this.#i++;
    if (this.#i === start) this.fail(c === "" ? "Expected a key" : `Unexpected "${c}" in key`);
    return this.#s.slice(start, this.#i);
  }

  value(): TomlValue {
    const c = this.peek();
    if (c === '"') {
      return this.#s.startsWith('"""', this.#i) ? this.multiBasicString() : this.basicString();
    }
    if (c === "'") {
      return this.#s.startsWith("'''", this.#i) ? this.multiLiteralString() : this.literalString();
    }
    if (c === "[") return this.array();
    if (c === "{") return this.inlineTable();
    if (this.#s.startsWith("true", this.#i) && !BARE_KEY.test(this.peek(4))) {
      this.#i += 4;
      return true;
    }
    if (this.#s.startsWith("false", this.#i) && !BARE_KEY.test(this.peek(5))) {
      this.#i += 5;
      return false;
    }
    return this.integer();
  }

  integer(): number {
    const start = this.#i;
    while (/^[0-9A-Za-z_+\-.:]$/.test(this.peek())) this.#i++;
    const tok = this.#s.slice(start, this.#i);
    if (tok === "") this.fail(this.eof() ? "Expected a value" : `Unexpected "${this.peek()}"`);
    let m: RegExpMatchArray | null;
    let n: number;
    if ((m = tok.match(/^([+-]?)(0|[1-9](?:_?[0-9])*)$/))) {
      n = Number(m[2].replaceAll("_", "")) * (m[1] === "-" ? -1 : 1);
    } else if ((m = tok.match(/^0x([0-9A-Fa-f](?:_?[0-9A-Fa-f])*)$/))) {
      n = parseInt(m[1].replaceAll("_", ""), 16);
    } else if ((m = tok.match(/^0o([0-7](?:_?[0-7])*)$/))) {
      n = parseInt(m[1].replaceAll("_", ""), 8);
    } else if ((m = tok.match(/^0b([01](?:_?[01])*)$/))) {
      n = parseInt(m[1].replaceAll("_", ""), 2);
    } else {
      this.fail(`Unsupported value "${tok}" (floats and dates are not supported)`, start);
    }
    if (!Number.isSafeInteger(n)) this.fail(`Integer "${tok}" is out of range`, start);
    return n === 0 ? 0 : n; // no -0
  }

  array(): TomlValue[] {
    this.#i++; // [
    const out: TomlValue[] = [];
    for (;;) {
      this.wsNl();
      if (this.peek() === "]") {
        this.#i++;
        return out;
      }
      out.push(this.value());
      this.wsNl();
      if (this.peek() === ",") {
        this.#i++;
        continue;
      }
      if (this.peek() === "]") {
        this.#i++;
        return out;
      }
      this.fail(this.eof() ? "Unterminated array" : 'Expected "," or "]" in array');
    }
  }

  inlineTable(): TomlTable {
    this.#i++; // {
    const t: TomlTable = {};
    this.#origins.set(t, "inline");
    this.ws();
    if (this.peek() === "}") {
      this.#i++;
      return t;
    }
    for (;;) {
      this.ws();
      this.keyValue(t);
      this.ws();
      if (this.peek() === ",") {
        this.#i++;
        continue;
      }
      if (this.peek() === "}") {
        this.#i++;
        // Tables created by dotted keys inside an inline table are sealed with it.
        sealInline(t, this.#origins);
        return t;
      }
      this.fail(this.eof() ? "Unterminated inline table" : 'Expected "," or "}" in inline table');
    }
  }

  basicString(): string {
    this.#i++; // "
    let out = "";
    for (;;) {
      const c = this.peek();
      if (c === "" || c === "\n" || (c === "\r" && this.peek(1) === "\n")) {
        this.fail("Unterminated string");
      }
      this.#i++;
      if (c === '"') return out;
      if (c === "\\") out += this.escape();
      else {
        this.checkChar(c, false);
        out += c;
      }
    }
  }

  multiBasicString(): string {
    this.#i += 3;
    if (this.peek() === "\n") this.#i++;
    else if (this.peek() === "\r" && this.peek(1) === "\n") this.#i += 2;
    let out = "";
    for (;;) {
      if (this.eof()) this.fail("Unterminated multi-line string");
      if (this.#s.startsWith('"""', this.#i)) {
        // Up to two quotes may directly precede the closing delimiter.
        let extra = 0;
        while (extra < 2 && this.peek(3 + extra) === '"') extra++;
        out += '"'.repeat(extra);
        this.#i += 3 + extra;
        return out;
      }
      const c = this.peek();
      this.#i++;
      if (c === "\\") {
        // Line-ending backslash: trim the newline and following whitespace.
        let j = this.#i;
        while (this.#s[j] === " " || this.#s[j] === "\t") j++;
        if (this.#s[j] === "\n" || (this.#s[j] === "\r" && this.#s[j + 1] === "\n")) {
          this.#i = j;
          while (/^[ \t\r\n]$/.test(this.peek())) this.#i++;
          continue;
        }
        out += this.escape();
      } else {
        this.checkChar(c, true);
        out += c;
      }
    }
  }

  escape(): string {
    const c = this.peek();
    this.#i++;
    switch (c) {
      case "b":
        return "\b";
      case "t":
        return "\t";
      case "n":
        return "\n";
      case "f":
        return "\f";
      case "r":
        return "\r";
      case '"':
        return '"';
      case "\\":
        return "\\";
      case "u":
      case "U": {
        const len = c === "u" ? 4 : 8;
        const hex = this.#s.slice(this.#i, this.#i + len);
        if (!new RegExp(`^[0-9A-Fa-f]{${len}}$`).test(hex)) this.fail("Invalid unicode escape");
        const cp = parseInt(hex, 16);
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
          this.fail("Escape is not a Unicode scalar value");
        }
        this.#i += len;
        return String.fromCodePoint(cp);
      }
      default:
        this.fail(`Invalid escape "\\${c}"`, this.#i - 2);
    }
  }

  checkChar(c: string, multiline: boolean): void {
    const code = c.charCodeAt(0);
    if (code === 0x09) return;
    if (multiline && (code === 0x0a || code === 0x0d)) return;
    if (code < 0x20 || code === 0x7f) this.fail("Control character in string", this.#i - 1);
  }

  literalString(): string {
    this.#i++; // '
    const start = this.#i;
    for (;;) {
      const c = this.peek();
      if (c === "" || c === "\n" || c === "\r") this.fail("Unterminated string");
      this.#i++;
      if (c === "'") return this.#s.slice(start, this.#i - 1);
      this.checkChar(c, false);
    }
  }

  multiLiteralString(): string {
    this.#i += 3;
    if (this.peek() === "\n") this.#i++;
    else if (this.peek() === "\r" && this.peek(1) === "\n") this.#i += 2;
    const start = this.#i;
    for (;;) {
      if (this.eof()) this.fail("Unterminated multi-line string");
      if (this.#s.startsWith("'''", this.#i)) {
        let extra = 0;
        while (extra < 2 && this.peek(3 + extra) === "'") extra++;
        const out = this.#s.slice(start, this.#i + extra);
        this.#i += 3 + extra;
        return out;
      }
      this.checkChar(this.peek(), true);
      this.#i++;
    }
  }
}

/** Define an own property, so keys such as `__proto__` are plain data, never a prototype. */
function setKey(t: TomlTable, key: string, value: TomlValue): void {
  Object.defineProperty(t, key, { value, enumerable: true, writable: true, configurable: true });
}

function isTable(v: TomlValue | undefined): v is TomlTable {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function sealInline(t: TomlTable, origins: WeakMap<TomlTable, Origin>): void {
  for (const v of Object.values(t)) {
    if (isTable(v) && origins.get(v) === "dotted") {
      origins.set(v, "inline");
      sealInline(v, origins);
    }
  }
}

/**
 * Parse a TOML document (the storage.conf subset; see the module doc).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseToml } from "./toml.ts";
 * const t = parseToml('[storage]\ndriver = "overlay" # comment\n[storage.options]\nadditionalimagestores = ["/a", "/b",]\n');
 * assert.deepEqual(t, { storage: { driver: "overlay", options: { additionalimagestores: ["/a", "/b"] } } });
 * ```
 */
export function parseToml(text: string): TomlTable {
  return new Parser(text.startsWith("\uFEFF") ? text.slice(1) : text).parse();
}

/** True if `v` is a table (not an array, not a scalar). */
export function isTomlTable(v: TomlValue | undefined): v is TomlTable {
  return isTable(v);
}

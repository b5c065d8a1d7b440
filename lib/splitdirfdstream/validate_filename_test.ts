import assert from "node:assert/strict";
import { validateFilename } from "./validate_filename.ts";
import { FilenameTooLongError, InvalidFilenameError } from "./errors.ts";
import { MAX_FILENAME_LEN } from "./constants.ts";

Deno.test("validateFilename: table of accepted and refused names", () => {
  const cases: [string | Uint8Array, string | null][] = [
    ["a", null],
    ["ab/cdef0123", null],
    ["./a", null],
    ["a//b", null],
    ["a/./b", null],
    ["...", null],
    ["..a", null],
    ["a..", null],
    ["a/..b/c", null],
    ["é/日本", null],
    ["a".repeat(MAX_FILENAME_LEN), null],
    ["", "empty"],
    ["..", '".." component'],
    ["../a", '".." component'],
    ["a/..", '".." component'],
    ["a/../b", '".." component'],
    ["a//../b", '".." component'],
    ["/a", "absolute path"],
    ["/", "absolute path"],
    ["a\0b", "embedded NUL"],
    ["\0", "embedded NUL"],
    ["\udc00x", "not UTF-8"],
    [new Uint8Array([0x61, 0xff]), "not UTF-8"],
    [new Uint8Array([0xc3]), "not UTF-8"],
    [new Uint8Array([0x2e, 0x2e]), '".." component'],
  ];
  for (const [name, reason] of cases) {
    const shown = JSON.stringify(typeof name === "string" ? name.slice(0, 20) : Array.from(name));
    if (reason === null) {
      const bytes = validateFilename(name);
      assert.deepEqual(
        bytes,
        typeof name === "string" ? new TextEncoder().encode(name) : name,
        shown,
      );
    } else {
      assert.throws(
        () => validateFilename(name),
        (e) => e instanceof InvalidFilenameError && e.reason === reason,
        `${shown} → ${reason}`,
      );
    }
  }
});

Deno.test("validateFilename: length is counted in UTF-8 bytes; 4097 is too long", () => {
  assert.throws(
    () => validateFilename("a".repeat(MAX_FILENAME_LEN + 1)),
    (e) => e instanceof FilenameTooLongError && e.length === 4097 && e.max === 4096,
  );
  // 2049 two-byte characters = 4098 bytes.
  assert.throws(() => validateFilename("é".repeat(2049)), FilenameTooLongError);
  validateFilename("é".repeat(2048));
});

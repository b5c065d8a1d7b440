/**
 * The path-safety predicate every consumer of a FileBackedData filename must apply.
 *
 * @module
 */

import { MAX_FILENAME_LEN } from "./constants.ts";
import { FilenameTooLongError, InvalidFilenameError } from "./errors.ts";

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });
const utf8Lossy = new TextDecoder("utf-8");

/** ASCII `/`. */
const SLASH = 0x2f;
/** ASCII `.`. */
const DOT = 0x2e;

/**
 * Check that `filename` may be opened beneath a directory fd, and return its UTF-8 bytes.
 *
 * Checks, in this order (as composefs-rs `validate_filename`): not empty; at most
 * `MAX_FILENAME_LEN` bytes; no NUL; not absolute; no `..` component; valid UTF-8 (our
 * {@link Chunk} carries names as strings). `.` components and `//` are allowed: the kernel
 * resolves them harmlessly.
 *
 * @throws {InvalidFilenameError} with `reason` `"empty"`, `"embedded NUL"`, `"absolute path"`,
 *   `"\"..\" component"` or `"not UTF-8"`.
 * @throws {FilenameTooLongError} when longer than `MAX_FILENAME_LEN` bytes.
 *
 * @example
 * ```ts
 * import { validateFilename } from "./validate_filename.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(validateFilename("ab/cdef"), new TextEncoder().encode("ab/cdef"));
 * assert.throws(() => validateFilename("a/../b"), { name: "InvalidFilenameError" });
 * ```
 */
export function validateFilename(filename: string | Uint8Array): Uint8Array {
  let bytes: Uint8Array;
  let wellFormed: boolean;
  if (typeof filename === "string") {
    wellFormed = filename.isWellFormed();
    bytes = utf8.encode(filename);
  } else {
    bytes = filename;
    wellFormed = true;
  }
  const shown = () => typeof filename === "string" ? filename : utf8Lossy.decode(filename);
  if (bytes.length === 0) throw new InvalidFilenameError("", "empty");
  if (bytes.length > MAX_FILENAME_LEN) {
    throw new FilenameTooLongError(bytes.length, MAX_FILENAME_LEN);
  }
  if (bytes.includes(0)) throw new InvalidFilenameError(shown(), "embedded NUL");
  if (bytes[0] === SLASH) throw new InvalidFilenameError(shown(), "absolute path");
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === SLASH) {
      if (i - start === 2 && bytes[start] === DOT && bytes[start + 1] === DOT) {
        throw new InvalidFilenameError(shown(), '".." component');
      }
      start = i + 1;
    }
  }
  if (typeof filename !== "string") {
    try {
      utf8Strict.decode(bytes);
    } catch (e) {
      throw new InvalidFilenameError(shown(), "not UTF-8", { cause: e });
    }
  } else if (!wellFormed) {
    throw new InvalidFilenameError(shown(), "not UTF-8");
  }
  return bytes;
}

import assert from "node:assert/strict";
import fc from "fast-check";
import { Crc64, crc64 } from "./crc64.ts";

const enc = new TextEncoder();

/** Bit-at-a-time reference with BigInt, straight from the definition (Go's crc64.update). */
function reference(data: Uint8Array): bigint {
  const poly = 0xd800000000000000n;
  let crc = 0xffffffffffffffffn;
  for (const b of data) {
    crc ^= BigInt(b);
    for (let k = 0; k < 8; k++) crc = crc & 1n ? (crc >> 1n) ^ poly : crc >> 1n;
  }
  return crc ^ 0xffffffffffffffffn;
}

Deno.test("crc64: known vectors (Go hash/crc64 ISO)", () => {
  // CRC-64/GO-ISO check value, and Go's crc64_test.go golden values for the ISO table.
  assert.equal(new Crc64().update(enc.encode("123456789")).hex(), "b90956c775a41001");
  assert.equal(new Crc64().hex(), "0000000000000000");
  assert.equal(new Crc64().update(enc.encode("a")).hex(), "3420000000000000");
  assert.equal(new Crc64().update(enc.encode("ab")).hex(), "36c4200000000000");
  assert.equal(new Crc64().update(enc.encode("abc")).hex(), "3776c42000000000");
  assert.equal(
    new Crc64().update(enc.encode("abcdefghijklmnopqrstuvwxyz")).hex(),
    reference(enc.encode("abcdefghijklmnopqrstuvwxyz")).toString(16).padStart(16, "0"),
  );
});

Deno.test("crc64: tar-split payload of a real file", () => {
  // Recorded from a store made by skopeo 1.9 / c/storage 1.43: the entry for etc/hostname
  // containing "changed\n" has payload "DUNi0b2EGCc=".
  assert.equal(btoa(String.fromCharCode(...crc64(enc.encode("changed\n")))), "DUNi0b2EGCc=");
});

Deno.test("crc64: slicing-by-8 equals the bitwise reference, in any split (fast-check)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat({ max: 300 }), (data, cut) => {
      const c = Math.min(cut, data.length);
      const inc = new Crc64().update(data.subarray(0, c)).update(data.subarray(c)).hex();
      assert.equal(inc, reference(data).toString(16).padStart(16, "0"));
    }),
    { seed: 5, numRuns: 500 },
  );
});

Deno.test("crc64: word loads give the reference at every buffer alignment (fast-check)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat({ max: 7 }), (data, shift) => {
      // The same bytes at byteOffset 0..7 of a larger buffer: the aligned-word path must not
      // depend on where the view starts.
      const buf = new Uint8Array(data.length + 8);
      buf.set(data, shift);
      const view = buf.subarray(shift, shift + data.length);
      assert.equal(new Crc64().update(view).hex(), reference(data).toString(16).padStart(16, "0"));
    }),
    { seed: 11, numRuns: 500 },
  );
});

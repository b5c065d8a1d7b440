import assert from "node:assert/strict";
import {
  isTarExtension,
  isZeroBlock,
  MAX_TAR_EXTENSION_SIZE,
  parsePaxRecords,
  parseTarHeader,
  parseTarNumber,
  TAR_BLOCK_SIZE,
  type TarEntry,
  TarEntryResolver,
  type TarHeader,
  TarHeaderError,
  tarPaddedSize,
} from "./tar_header.ts";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const te = new TextEncoder();
const td = new TextDecoder();

interface HeaderSpec {
  name?: string;
  size?: number;
  sizeField?: Uint8Array;
  typeflag?: string;
  linkname?: string;
  prefix?: string;
  magic?: "ustar" | "gnu" | "v7";
  mode?: number;
  badChecksum?: boolean;
}

/** Build a header block the way tar writers do (octal fields, checksum last). */
function header(s: HeaderSpec): Uint8Array {
  const b = new Uint8Array(TAR_BLOCK_SIZE);
  const put = (off: number, v: string | Uint8Array) =>
    b.set(typeof v === "string" ? te.encode(v) : v, off);
  const oct = (v: number, width: number) => v.toString(8).padStart(width - 1, "0") + "\0";
  put(0, s.name ?? "file");
  put(100, oct(s.mode ?? 0o644, 8));
  put(108, oct(0, 8));
  put(116, oct(0, 8));
  put(124, s.sizeField ?? oct(s.size ?? 0, 12));
  put(136, oct(0, 12));
  put(156, s.typeflag ?? "0");
  put(157, s.linkname ?? "");
  const magic = s.magic ?? "ustar";
  if (magic === "ustar") put(257, "ustar\x0000");
  if (magic === "gnu") put(257, "ustar  \0");
  if (s.prefix) put(345, s.prefix);
  put(148, "        ");
  const sum = b.reduce((a, x) => a + x, 0) + (s.badChecksum ? 1 : 0);
  put(148, sum.toString(8).padStart(6, "0") + "\0 ");
  return b;
}

function hdr(s: HeaderSpec): TarHeader {
  return parseTarHeader(header(s))!;
}

function pax(records: Record<string, string>): Uint8Array {
  let out = "";
  for (const [k, v] of Object.entries(records)) {
    const body = ` ${k}=${v}\n`;
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len++;
    out += `${len}${body}`;
  }
  return te.encode(out);
}

/** Walk a whole in-memory tar, applying extensions; returns the entries. */
function walk(tar: Uint8Array): TarEntry[] {
  const r = new TarEntryResolver();
  const out: TarEntry[] = [];
  let off = 0;
  while (off + TAR_BLOCK_SIZE <= tar.length) {
    const h = parseTarHeader(tar.subarray(off, off + TAR_BLOCK_SIZE));
    off += TAR_BLOCK_SIZE;
    if (h === null) break;
    if (isTarExtension(h.typeflag)) {
      r.addExtension(h, tar.subarray(off, off + h.size));
      off += tarPaddedSize(h.size);
      continue;
    }
    const e = r.resolve(h);
    out.push(e);
    off += tarPaddedSize(e.contentSize);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Numbers, checksums, formats
// ---------------------------------------------------------------------------------------------

Deno.test("parseTarNumber: octal variants and GNU base-256", () => {
  const cases: [Uint8Array, number][] = [
    [te.encode("00000000012\0"), 10],
    [te.encode("     12 \0\0\0\0"), 10],
    [te.encode("\0\0\0\0"), 0],
    [te.encode("77777777777\0"), 8 ** 11 - 1],
    [new Uint8Array([0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]), 5],
    [new Uint8Array([0x80, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0]), 2 ** 33],
    [new Uint8Array([0x80, 0, 0, 0, 0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), 2 ** 53 - 1],
  ];
  for (const [field, want] of cases) assert.equal(parseTarNumber(field), want, td.decode(field));
  const bad: Uint8Array[] = [
    te.encode("0000000001a\0"),
    te.encode("00000000089\0"),
    new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]),
    new Uint8Array([0x80, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0]),
    te.encode("7777777777777777777777\0"),
  ];
  for (const field of bad) assert.throws(() => parseTarNumber(field), TarHeaderError);
});

Deno.test("parseTarHeader: ustar prefix, GNU, v7, zero block, checksum", () => {
  const u = parseTarHeader(header({ name: "name.txt", prefix: "a/b", size: 5 }))!;
  assert.equal(td.decode(u.name), "a/b/name.txt");
  assert.equal(u.format, "ustar");
  assert.equal(u.size, 5);
  assert.equal(u.mode, 0o644);
  const g = parseTarHeader(header({ name: "n", magic: "gnu", typeflag: "5" }))!;
  assert.equal(g.format, "gnu");
  assert.equal(g.typeflag, "5");
  const v = parseTarHeader(header({ name: "old", magic: "v7", typeflag: "\0", size: 3 }))!;
  assert.equal(v.format, "v7");
  assert.equal(v.typeflag, "\0");
  const big = new Uint8Array(12);
  big[0] = 0x80;
  big[7] = 2; // 2^33 bytes: beyond the octal field
  assert.equal(parseTarHeader(header({ sizeField: big, magic: "gnu" }))!.size, 2 ** 33);
  assert.equal(parseTarHeader(new Uint8Array(TAR_BLOCK_SIZE)), null);
  assert.ok(isZeroBlock(new Uint8Array(TAR_BLOCK_SIZE)));
  assert.throws(() => parseTarHeader(header({ badChecksum: true })), /checksum mismatch/);
  assert.throws(() => parseTarHeader(new Uint8Array(100)), TarHeaderError);
  // Old tars summed signed chars.
  const signed = header({ name: "\u00e9" });
  const sum = signed.reduce((a, x, i) => a + (i >= 148 && i < 156 ? 32 : x > 127 ? x - 256 : x), 0);
  signed.set(te.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  assert.equal(td.decode(parseTarHeader(signed)!.name), "\u00e9");
});

Deno.test("parsePaxRecords: records, duplicates, malformed", () => {
  const recs = parsePaxRecords(pax({ path: "a/b", size: "99", "SCHILY.xattr.x": "=v" }));
  assert.equal(td.decode(recs.get("path")), "a/b");
  assert.equal(td.decode(recs.get("size")), "99");
  assert.equal(td.decode(recs.get("SCHILY.xattr.x")), "=v");
  assert.equal(parsePaxRecords(te.encode("9 path=a\n9 path=b\n")).get("path")![0], 0x62);
  assert.equal(parsePaxRecords(new Uint8Array([0, 0, 0])).size, 0);
  for (const bad of ["9 path=a", "x path=a\n", "99 path=a\n", "5 =a\n", "6 path\n", "nospace"]) {
    assert.throws(() => parsePaxRecords(te.encode(bad)), TarHeaderError, bad);
  }
});

Deno.test("TarEntryResolver: PAX size/path override, GNU long names, global records", () => {
  const r = new TarEntryResolver();
  r.addExtension(hdr({ typeflag: "x", size: 0 }), pax({ size: "12345678901", path: "p/x" }));
  const e = r.resolve(hdr({ name: "short", size: 0o77777777777 }));
  assert.equal(e.size, 12345678901);
  assert.equal(e.contentSize, 12345678901);
  assert.equal(td.decode(e.path), "p/x");
  // Local records apply to one entry only.
  const next = r.resolve(hdr({ name: "n2", size: 4 }));
  assert.equal(td.decode(next.path), "n2");
  assert.equal(next.size, 4);
  r.addExtension(hdr({ typeflag: "L", magic: "gnu" }), te.encode("long/".repeat(30) + "\0"));
  r.addExtension(hdr({ typeflag: "K", magic: "gnu" }), te.encode("target\0"));
  const l = r.resolve(hdr({ name: "trunc", typeflag: "2", size: 7 }));
  assert.equal(td.decode(l.path), "long/".repeat(30));
  assert.equal(td.decode(l.linkpath), "target");
  assert.equal(l.contentSize, 0, "symlinks have no content");
  r.addExtension(hdr({ typeflag: "g" }), pax({ uname: "x", path: "glob" }));
  assert.equal(td.decode(r.resolve(hdr({ name: "a" })).path), "glob");
  assert.throws(() => r.addExtension(hdr({ typeflag: "0" }), new Uint8Array()), TarHeaderError);
  assert.throws(
    () =>
      r.addExtension(hdr({ typeflag: "x" }), pax({ size: "-1" })) ??
        r.resolve(hdr({})),
    TarHeaderError,
  );
  assert.equal(MAX_TAR_EXTENSION_SIZE, 1 << 20);
});

Deno.test("header-only types have no content even with a size field", () => {
  const r = new TarEntryResolver();
  for (const t of ["1", "2", "3", "4", "5", "6"]) {
    assert.equal(r.resolve(hdr({ typeflag: t, size: 100 })).contentSize, 0, t);
  }
  for (const t of ["0", "\0", "7", "S", "Z"]) {
    assert.equal(r.resolve(hdr({ typeflag: t, size: 100 })).contentSize, 100, t);
  }
});

// ---------------------------------------------------------------------------------------------
// Real archives from GNU tar
// ---------------------------------------------------------------------------------------------

Deno.test("walks GNU tar archives in gnu, posix, ustar and v7 formats", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tar-header-" });
  try {
    const long = "d".repeat(60) + "/" + "f".repeat(80) + ".txt"; // > 100 bytes, splittable
    await Deno.mkdir(`${dir}/t/${"d".repeat(60)}`, { recursive: true });
    await Deno.writeTextFile(`${dir}/t/small`, "hello");
    await Deno.writeFile(`${dir}/t/big`, new Uint8Array(70000).fill(1));
    await Deno.writeTextFile(`${dir}/t/${long}`, "long");
    await Deno.symlink("small", `${dir}/t/sym`);
    await Deno.link(`${dir}/t/small`, `${dir}/t/hard`);
    const want = new Map([
      ["./", 0],
      ["./big", 70000],
      ["./d" + "d".repeat(59) + "/", 0],
      [`./${long}`, 4],
      ["./hard", 5], // sorted first: stored with content
      ["./small", 0], // then a hardlink to ./hard
      ["./sym", 0],
    ]);
    for (const format of ["gnu", "posix", "ustar", "v7"]) {
      if (format === "v7") continue; // v7 cannot store the long name; checked separately below
      const out = await new Deno.Command("tar", {
        args: [`--format=${format}`, "--sort=name", "-C", `${dir}/t`, "-cf", "-", "."],
        stdout: "piped",
      }).output();
      assert.ok(out.success, `tar --format=${format}`);
      const entries = walk(out.stdout);
      const got = new Map(entries.map((e) => [td.decode(e.path), e.contentSize]));
      assert.deepEqual(got, want, format);
      const hard = entries.find((e) =>
        td.decode(e.path) === "./hard" || td.decode(e.path) === "./small"
      )!;
      assert.ok(hard);
    }
    const v7 = await new Deno.Command("tar", {
      args: ["--format=v7", "--sort=name", "-C", `${dir}/t`, "-cf", "-", "small", "big"],
      stdout: "piped",
    }).output();
    assert.ok(v7.success);
    assert.deepEqual(walk(v7.stdout).map((e) => [td.decode(e.path), e.size]), [["small", 5], [
      "big",
      70000,
    ]]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fuzz: random header blocks and PAX bodies only give TarHeaderError", async () => {
  const fc = (await import("fast-check")).default;
  const valid = header({ name: "a/b", size: 1234, magic: "gnu" });
  const block = fc.oneof(
    fc.uint8Array({ minLength: 512, maxLength: 512 }),
    fc.tuple(
      fc.array(fc.tuple(fc.nat({ max: 511 }), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
      fc.boolean(),
    ).map(([edits, fixSum]) => {
      const b = valid.slice();
      for (const [at, v] of edits) b[at] = v;
      if (fixSum) {
        // Re-sign the mutated block so the parser gets past the checksum.
        b.set(te.encode("        "), 148);
        b.set(te.encode(b.reduce((a, x) => a + x, 0).toString(8).padStart(6, "0") + "\0 "), 148);
      }
      return b;
    }),
  );
  const typed = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      if (!(e instanceof TarHeaderError)) throw e;
    }
  };
  fc.assert(
    fc.property(block, fc.uint8Array({ maxLength: 200 }), (b, paxBody) => {
      typed(() => {
        const h = parseTarHeader(b);
        if (h) {
          assert.ok(Number.isSafeInteger(h.size) && h.size >= 0);
          new TarEntryResolver().resolve(h);
        }
      });
      typed(() => parsePaxRecords(paxBody));
      typed(() => parsePaxRecords(new Uint8Array([...te.encode("30 path="), ...paxBody])));
    }),
    { seed: 0x7a2, numRuns: 2000 },
  );
});

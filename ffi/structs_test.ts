import assert from "node:assert/strict";
import fc from "fast-check";
import {
  CmsgDecodeError,
  cmsgLen,
  cmsgSpace,
  decodeCmsgs,
  decodeEpollEvents,
  decodeMsghdr,
  decodeUcred,
  encodeEpollEvent,
  encodeIovec,
  encodeMsghdr,
  encodeOpenHow,
  encodeScmRights,
  encodeSockaddrUn,
  scmRightsFds,
  SocketPathError,
} from "./structs.ts";

/** Little-endian hex of bytes, for comparing with hand-written layouts. */
function hex(b: Uint8Array): string {
  return b.toHex();
}

Deno.test("structs: msghdr layout (56 bytes) matches the hand-computed bytes", () => {
  const b = encodeMsghdr({
    name: 0n,
    namelen: 0,
    iov: 0x1122334455667788n,
    iovlen: 1,
    control: 0x0000_7f00_0000_1000n,
    controllen: 24,
    flags: 0x40000008,
  });
  assert.equal(
    hex(b),
    "0000000000000000" + // msg_name @0
      "00000000" + "00000000" + // msg_namelen @8, padding @12
      "8877665544332211" + // msg_iov @16
      "0100000000000000" + // msg_iovlen @24
      "00100000007f0000" + // msg_control @32
      "1800000000000000" + // msg_controllen @40
      "08000040" + "00000000", // msg_flags @48, padding @52
  );
  assert.deepEqual(decodeMsghdr(b), {
    name: 0n,
    namelen: 0,
    iov: 0x1122334455667788n,
    iovlen: 1,
    control: 0x7f0000001000n,
    controllen: 24,
    flags: 0x40000008,
  });
});

Deno.test("structs: iovec layout (16 bytes)", () => {
  assert.equal(
    hex(encodeIovec(0xdeadbeefn, 100)),
    "efbeadde00000000" + "6400000000000000",
  );
  const two = new Uint8Array(32);
  encodeIovec(1n, 2, two, 16);
  assert.equal(hex(two.subarray(16)), "0100000000000000" + "0200000000000000");
});

Deno.test("structs: SCM_RIGHTS cmsghdr layout and CMSG_SPACE/CMSG_LEN", () => {
  assert.equal(cmsgLen(4), 20);
  assert.equal(cmsgSpace(4), 24);
  assert.equal(cmsgSpace(8), 24);
  assert.equal(cmsgSpace(12), 32);
  assert.equal(cmsgSpace(4 * 253), 1032);
  const out = new Uint8Array(64).fill(0xaa);
  const used = encodeScmRights([3, 0x102], out);
  assert.equal(used, 24);
  assert.equal(
    hex(out.subarray(0, 24)),
    "1800000000000000" + // cmsg_len = CMSG_LEN(8) = 24
      "01000000" + // cmsg_level SOL_SOCKET
      "01000000" + // cmsg_type SCM_RIGHTS
      "03000000" + "02010000", // fds
  );
  const three = new Uint8Array(32).fill(0xaa);
  assert.equal(encodeScmRights([5, 6, 7], three), 32);
  assert.equal(
    hex(three),
    "1c00000000000000" + "01000000" + "01000000" + "05000000" + "06000000" + "07000000" +
      "00000000", // alignment padding is zeroed
  );
  assert.deepEqual(scmRightsFds(decodeCmsgs(three, 32)), [5, 6, 7]);
  assert.equal(encodeScmRights([]), 0);
  assert.throws(() => encodeScmRights(new Array(254).fill(0)), RangeError);
});

Deno.test("structs: open_how layout (24 bytes)", () => {
  assert.equal(
    hex(encodeOpenHow(0o2100101, 0o644, 0x0e)),
    "4180080000000000" + // flags O_CLOEXEC|O_CREAT|O_WRONLY = 0x88041
      "a401000000000000" + // mode 0644
      "0e00000000000000", // resolve BENEATH|NO_SYMLINKS|NO_MAGICLINKS
  );
});

Deno.test("structs: epoll_event is packed (12 bytes)", () => {
  assert.equal(hex(encodeEpollEvent(0x2005, 0x0102030405060708n)), "05200000" + "0807060504030201");
  const buf = new Uint8Array(24);
  buf.set(encodeEpollEvent(1, 7n), 0);
  buf.set(encodeEpollEvent(4, 0xffffffffn), 12);
  assert.deepEqual(decodeEpollEvents(buf, 2), [
    { events: 1, data: 7n },
    { events: 4, data: 0xffffffffn },
  ]);
});

Deno.test("structs: ucred and sockaddr_un", () => {
  const u = new Uint8Array([0x39, 0x30, 0, 0, 0xe8, 0x03, 0, 0, 0x64, 0, 0, 0]);
  assert.deepEqual(decodeUcred(u), { pid: 12345, uid: 1000, gid: 100 });
  const { addr, len } = encodeSockaddrUn("/run/x");
  assert.equal(len, 2 + 6 + 1);
  assert.equal(hex(addr.subarray(0, 9)), "0100" + hex(new TextEncoder().encode("/run/x")) + "00");
  const abs = encodeSockaddrUn("\0abc");
  assert.equal(abs.len, 2 + 4);
  assert.throws(() => encodeSockaddrUn("/" + "x".repeat(107)), SocketPathError);
  assert.equal(encodeSockaddrUn("/" + "x".repeat(106)).len, 110);
  assert.throws(() => encodeSockaddrUn(""), SocketPathError);
});

Deno.test("structs: cmsg decoder rejects or parses any bytes without overrunning (fuzz)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(220), (bytes, len) => {
      try {
        const msgs = decodeCmsgs(bytes, len);
        let total = 0;
        for (const m of msgs) total += cmsgSpace(m.data.length);
        assert.ok(total <= cmsgSpace(Math.min(len, bytes.length)) + 16 * msgs.length);
        const fds = scmRightsFds(msgs);
        for (const fd of fds) assert.ok(Number.isInteger(fd));
      } catch (e) {
        if (!(e instanceof CmsgDecodeError)) throw e;
      }
    }),
    { seed: 20261128, numRuns: 2000 },
  );
});

Deno.test("structs: SCM_RIGHTS encode → decode round-trips (property)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 0x7fffffff }), { minLength: 1, maxLength: 253 }),
      (fds) => {
        const buf = new Uint8Array(cmsgSpace(4 * fds.length));
        const used = encodeScmRights(fds, buf);
        assert.equal(used, buf.length);
        assert.deepEqual(scmRightsFds(decodeCmsgs(buf, used)), fds);
      },
    ),
    { seed: 42, numRuns: 300 },
  );
});

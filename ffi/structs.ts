/**
 * Byte layouts of the C structs the bindings pass to the kernel (Linux x86_64, little endian):
 * `struct msghdr`, `struct iovec`, `struct cmsghdr` (SCM_RIGHTS), `struct open_how`,
 * `struct epoll_event` (packed), `struct ucred`, `struct sockaddr_un`.
 *
 * Pure encoders/decoders: no syscalls here, so every layout is testable against hand-computed
 * bytes.
 *
 * @module
 */

export { encodeOpenHow } from "./fs.ts";

/** sizeof(struct open_how): u64 flags @0, u64 mode @8, u64 resolve @16. */
export const OPEN_HOW_SIZE = 24;

/** sizeof(struct msghdr) on x86_64. */
export const MSGHDR_SIZE = 56;
/** sizeof(struct iovec): void *iov_base @0, size_t iov_len @8. */
export const IOVEC_SIZE = 16;
/** sizeof(struct cmsghdr) header: size_t cmsg_len @0, int cmsg_level @8, int cmsg_type @12. */
export const CMSG_HDR_SIZE = 16;
/** sizeof(struct epoll_event): packed on x86_64, u32 events @0, u64 data @4. */
export const EPOLL_EVENT_SIZE = 12;
/** sizeof(struct ucred): pid_t pid @0, uid_t uid @4, gid_t gid @8. */
export const UCRED_SIZE = 12;
/** sizeof(struct sockaddr_un): sa_family_t @0 (u16), char sun_path[108] @2. */
export const SOCKADDR_UN_SIZE = 110;
/** Room for the path in sockaddr_un, including its terminating NUL. */
export const SUN_PATH_MAX = 108;

/** SOL_SOCKET level and SCM_RIGHTS type (asm-generic/socket.h, linux/socket.h). */
export const SOL_SOCKET = 1;
/** Control message type carrying fds. */
export const SCM_RIGHTS = 1;
/** SCM_MAX_FD: the kernel refuses more fds than this in one message (EINVAL). */
export const SCM_MAX_FD = 253;
/** AF_UNIX address family. */
export const AF_UNIX = 1;

/** CMSG_ALIGN: control messages are aligned to sizeof(size_t). */
export function cmsgAlign(n: number): number {
  return (n + 7) & ~7;
}

/** CMSG_SPACE(n): bytes a control message with `n` payload bytes occupies. */
export function cmsgSpace(n: number): number {
  return CMSG_HDR_SIZE + cmsgAlign(n);
}

/** CMSG_LEN(n): value of cmsg_len for `n` payload bytes. */
export function cmsgLen(n: number): number {
  return CMSG_HDR_SIZE + n;
}

/** Fields of `struct msghdr`; pointers as raw addresses (bigint, 0n = NULL). */
export interface Msghdr {
  /** msg_name: address buffer (0n for connected sockets). */
  name: bigint;
  /** msg_namelen. */
  namelen: number;
  /** msg_iov: address of the iovec array. */
  iov: bigint;
  /** msg_iovlen: number of iovecs. */
  iovlen: number;
  /** msg_control: address of the control buffer. */
  control: bigint;
  /** msg_controllen: bytes of control data (in: room; out: used). */
  controllen: number;
  /** msg_flags (out: MSG_CTRUNC, MSG_TRUNC, echoes MSG_CMSG_CLOEXEC). */
  flags: number;
}

/** Write a `struct msghdr` into `out` (at least {@link MSGHDR_SIZE} bytes). */
export function encodeMsghdr(h: Msghdr, out: Uint8Array = new Uint8Array(MSGHDR_SIZE)): Uint8Array {
  const dv = view(out, MSGHDR_SIZE);
  dv.setBigUint64(0, h.name, true);
  dv.setUint32(8, h.namelen, true);
  dv.setUint32(12, 0, true); // padding
  dv.setBigUint64(16, h.iov, true);
  dv.setBigUint64(24, BigInt(h.iovlen), true);
  dv.setBigUint64(32, h.control, true);
  dv.setBigUint64(40, BigInt(h.controllen), true);
  dv.setInt32(48, h.flags, true);
  dv.setInt32(52, 0, true); // padding
  return out;
}

/** Read a `struct msghdr` back (after recvmsg the kernel updated controllen and flags). */
export function decodeMsghdr(b: Uint8Array): Msghdr {
  const dv = view(b, MSGHDR_SIZE);
  return {
    name: dv.getBigUint64(0, true),
    namelen: dv.getUint32(8, true),
    iov: dv.getBigUint64(16, true),
    iovlen: Number(dv.getBigUint64(24, true)),
    control: dv.getBigUint64(32, true),
    controllen: Number(dv.getBigUint64(40, true)),
    flags: dv.getInt32(48, true),
  };
}

/** Write one `struct iovec` at `offset` of `out`. */
export function encodeIovec(
  base: bigint,
  len: number,
  out: Uint8Array = new Uint8Array(IOVEC_SIZE),
  offset = 0,
): Uint8Array {
  const dv = view(out, offset + IOVEC_SIZE);
  dv.setBigUint64(offset, base, true);
  dv.setBigUint64(offset + 8, BigInt(len), true);
  return out;
}

/**
 * Write one SCM_RIGHTS control message carrying `fds` into `out` (at least
 * `cmsgSpace(4 * fds.length)` bytes); returns the number of bytes used (the msg_controllen).
 */
export function encodeScmRights(fds: readonly number[], out?: Uint8Array): number {
  if (fds.length === 0) return 0;
  if (fds.length > SCM_MAX_FD) {
    throw new RangeError(
      `Too many fds for one message: ${fds.length} (the kernel allows ${SCM_MAX_FD})`,
    );
  }
  const space = cmsgSpace(4 * fds.length);
  const buf = out ?? new Uint8Array(space);
  const dv = view(buf, space);
  buf.fill(0, 0, space);
  dv.setBigUint64(0, BigInt(cmsgLen(4 * fds.length)), true);
  dv.setInt32(8, SOL_SOCKET, true);
  dv.setInt32(12, SCM_RIGHTS, true);
  for (let i = 0; i < fds.length; i++) dv.setInt32(CMSG_HDR_SIZE + 4 * i, fds[i], true);
  return space;
}

/** One control message found by {@link decodeCmsgs}. */
export interface Cmsg {
  /** cmsg_level (SOL_SOCKET). */
  level: number;
  /** cmsg_type (SCM_RIGHTS). */
  type: number;
  /** Payload (a view into the control buffer). */
  data: Uint8Array;
}

/** A control buffer the kernel filled that does not parse (a kernel or caller bug). */
export class CmsgDecodeError extends Error {
  /** Error name. */
  override name = "CmsgDecodeError";
  /** Offset of the bad header. */
  readonly offset: number;
  /** A bad header at `offset`, and why. */
  constructor(offset: number, reason: string) {
    super(`Malformed control message at offset ${offset}: ${reason}`);
    this.offset = offset;
  }
}

/** Walk the control messages in the first `len` bytes of `buf` (CMSG_FIRSTHDR/CMSG_NXTHDR). */
export function decodeCmsgs(buf: Uint8Array, len: number): Cmsg[] {
  const out: Cmsg[] = [];
  const dv = new DataView(buf.buffer, buf.byteOffset, Math.min(len, buf.byteLength));
  let off = 0;
  while (off + CMSG_HDR_SIZE <= dv.byteLength) {
    const clen = Number(dv.getBigUint64(off, true));
    if (clen < CMSG_HDR_SIZE || off + clen > dv.byteLength) {
      throw new CmsgDecodeError(off, `cmsg_len ${clen} does not fit in ${dv.byteLength} bytes`);
    }
    out.push({
      level: dv.getInt32(off + 8, true),
      type: dv.getInt32(off + 12, true),
      data: buf.subarray(off + CMSG_HDR_SIZE, off + clen),
    });
    off += cmsgAlign(clen);
  }
  return out;
}

/** The fds of every SCM_RIGHTS message among `cmsgs` (whole 4-byte ints only). */
export function scmRightsFds(cmsgs: readonly Cmsg[]): number[] {
  const fds: number[] = [];
  for (const m of cmsgs) {
    if (m.level !== SOL_SOCKET || m.type !== SCM_RIGHTS) continue;
    const dv = new DataView(m.data.buffer, m.data.byteOffset, m.data.byteLength);
    for (let i = 0; i + 4 <= m.data.byteLength; i += 4) fds.push(dv.getInt32(i, true));
  }
  return fds;
}

/** Encode a packed `struct epoll_event`. */
export function encodeEpollEvent(events: number, data: bigint): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(EPOLL_EVENT_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, events >>> 0, true);
  dv.setBigUint64(4, data, true);
  return b;
}

/** Decode the first `n` packed `struct epoll_event`s of `buf`. */
export function decodeEpollEvents(
  buf: Uint8Array,
  n: number,
): Array<{ events: number; data: bigint }> {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out = [];
  for (let i = 0; i < n; i++) {
    const off = i * EPOLL_EVENT_SIZE;
    out.push({ events: dv.getUint32(off, true), data: dv.getBigUint64(off + 4, true) });
  }
  return out;
}

/** Credentials of a unix socket peer (SO_PEERCRED). */
export interface Ucred {
  /** Peer process id. */
  pid: number;
  /** Peer effective uid. */
  uid: number;
  /** Peer effective gid. */
  gid: number;
}

/** Decode `struct ucred`. */
export function decodeUcred(b: Uint8Array): Ucred {
  const dv = view(b, UCRED_SIZE);
  return { pid: dv.getInt32(0, true), uid: dv.getUint32(4, true), gid: dv.getUint32(8, true) };
}

/** A socket path that does not fit in sockaddr_un. */
export class SocketPathError extends Error {
  /** Error name. */
  override name = "SocketPathError";
  /** The path. */
  readonly path: string;
  /** `path` and why it cannot be used. */
  constructor(path: string, reason: string) {
    super(`Invalid unix socket path "${path}": ${reason}`);
    this.path = path;
  }
}

/**
 * Encode `struct sockaddr_un` for `path`; returns the buffer and the addrlen to pass.
 * A path starting with NUL names an abstract socket (no trailing NUL counted).
 */
export function encodeSockaddrUn(path: string): { addr: Uint8Array<ArrayBuffer>; len: number } {
  const p = new TextEncoder().encode(path);
  const abstract = p.length > 0 && p[0] === 0;
  if (p.length === 0) throw new SocketPathError(path, "empty");
  if (!abstract && p.includes(0)) throw new SocketPathError(path, "contains NUL");
  if (p.length > (abstract ? SUN_PATH_MAX : SUN_PATH_MAX - 1)) {
    throw new SocketPathError(path, `longer than ${SUN_PATH_MAX - 1} bytes`);
  }
  const addr = new Uint8Array(SOCKADDR_UN_SIZE);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(p, 2);
  return { addr, len: 2 + p.length + (abstract ? 0 : 1) };
}

function view(b: Uint8Array, need: number): DataView {
  if (b.byteLength < need) {
    throw new RangeError(`Buffer of ${b.byteLength} bytes is too small for ${need}`);
  }
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * systemd socket activation (sd_listen_fds(3)): the fds a service manager or `varlinkctl exec:`
 * passed from fd 3 on, announced by `LISTEN_PID`/`LISTEN_FDS` (and `LISTEN_FDNAMES`), plus the
 * `SO_ACCEPTCONN` probe that tells a listening socket from an already connected one.
 *
 * @module
 */

import { libc } from "./libc.ts";
import { check } from "./errno.ts";
import { OwnedFd } from "./owned_fd.ts";
import { setCloexec } from "./fs.ts";
import { SOL_SOCKET } from "./structs.ts";

/** The first passed fd (SD_LISTEN_FDS_START). */
const LISTEN_FDS_START = 3;
/** getsockopt(SOL_SOCKET, SO_ACCEPTCONN): 1 for a listening socket. */
const SO_ACCEPTCONN = 30;
/** Sanity bound on LISTEN_FDS: a service manager never passes more than a handful. */
const MAX_LISTEN_FDS = 1024;

/** Fds passed by socket activation, with their names. */
export interface ActivationFds {
  /** fds 3, 4, … now owned by the caller (close-on-exec set). */
  fds: OwnedFd[];
  /** `LISTEN_FDNAMES` split on `:`, or `unknown` per fd when absent. */
  names: string[];
}

/**
 * Take the socket-activation fds if `LISTEN_PID` is this process and `LISTEN_FDS` ≥ 1; returns
 * undefined otherwise. The variables are removed from the environment either way (so children
 * do not inherit them), as sd_listen_fds(unset_environment=1) does.
 */
export function takeActivationFds(): ActivationFds | undefined {
  const pid = Deno.env.get("LISTEN_PID");
  const count = Deno.env.get("LISTEN_FDS");
  const names = Deno.env.get("LISTEN_FDNAMES");
  for (const k of ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"]) Deno.env.delete(k);
  if (pid === undefined || count === undefined) return undefined;
  if (!/^[0-9]+$/.test(pid) || Number(pid) !== libc().getpid()) return undefined;
  if (!/^[0-9]+$/.test(count)) return undefined;
  const n = Number(count);
  if (n < 1 || n > MAX_LISTEN_FDS) return undefined;
  const fds: OwnedFd[] = [];
  for (let i = 0; i < n; i++) {
    const fd = new OwnedFd(LISTEN_FDS_START + i);
    setCloexec(fd, true);
    fds.push(fd);
  }
  const nameList = names?.split(":") ?? [];
  return { fds, names: fds.map((_, i) => nameList[i] ?? "unknown") };
}

/** True when `fd` is a listening socket (SO_ACCEPTCONN), false for a connected one. */
export function isListeningSocket(fd: OwnedFd): boolean {
  const val = new Int32Array(1);
  const len = new Uint32Array([4]);
  check(
    libc().getsockopt(
      fd.fd,
      SOL_SOCKET,
      SO_ACCEPTCONN,
      new Uint8Array(val.buffer),
      new Uint8Array(len.buffer),
    ),
    "getsockopt(SO_ACCEPTCONN)",
  );
  return val[0] !== 0;
}

/** The effective uid of this process. */
export function effectiveUid(): number {
  return libc().geteuid();
}

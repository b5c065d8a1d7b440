/**
 * Shared test helpers: temp dirs, loop-mounted filesystems (root), peer-tool lookup, fd-leak
 * checks. Everything here cleans up after itself via `await using`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { HashAlgorithm } from "../lib/fsverity/mod.ts";
import { ErrnoError } from "../ffi/errno.ts";
import { openFdCount } from "../ffi/owned_fd.ts";
import { startEventLoop } from "../ffi/event_loop.ts";

/** Where the sid tools (varlinkctl, mkcomposefs, composefs-info) are installed by CI. */
export const SID_TOOLS_BIN = "/var/tmp/cfs-sid-tools/bin";

/** A temporary directory removed (recursively) on dispose. */
export interface TempDir extends AsyncDisposable {
  /** Absolute path of the directory. */
  readonly path: string;
}

/** Create a temporary directory, removed on `await using` dispose. */
export async function tempDir(prefix = "cfs-test-"): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true }).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
    },
  };
}

function isExecutable(path: string): boolean {
  try {
    const st = Deno.statSync(path);
    return st.isFile && ((st.mode ?? 0o111) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/**
 * Absolute path of peer tool `name`, searched on PATH, the sid tools dir and the sbin dirs.
 * Throws (fails the test loudly) when absent: CI installs every peer.
 */
export function requireCommand(name: string): string {
  const dirs = [
    ...(Deno.env.get("PATH") ?? "").split(":").filter((d) => d.length > 0),
    SID_TOOLS_BIN,
    "/usr/local/sbin",
    "/usr/sbin",
    "/sbin",
  ];
  for (const d of dirs) {
    const p = `${d}/${name}`;
    if (isExecutable(p)) return p;
  }
  throw new Error(`Required peer tool ${name} not found: install it (CI installs it)`);
}

/** Result of {@link run}. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command to completion; throws with its stderr when it exits non-zero (unless `allowFail`). */
export async function run(
  cmd: string,
  args: string[],
  opts: { allowFail?: boolean; stdin?: Uint8Array; cwd?: string } = {},
): Promise<RunResult> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    stdin: opts.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin) {
    const w = child.stdin.getWriter();
    await w.write(opts.stdin);
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  const res = { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  if (res.code !== 0 && !opts.allowFail) {
    throw new Error(`Command "${cmd} ${args.join(" ")}" exited ${res.code}: ${res.stderr.trim()}`);
  }
  return res;
}

/** A loop-mounted filesystem, unmounted and deleted on dispose. */
export interface LoopMount extends AsyncDisposable {
  /** Mount point. */
  readonly path: string;
  /** Filesystem type. */
  readonly fstype: "xfs" | "btrfs" | "ext4";
}

/** Where loop images go: /var/tmp is disk-backed (tmpfs /tmp could hold a 300 MiB sparse file, too). */
const LOOP_IMAGE_DIR = "/var/tmp";

/**
 * Make a sparse image in /var/tmp, mkfs it (xfs with `-m reflink=1`), and `mount -o loop` it on a
 * temp dir. Needs root. Dispose = umount + remove mount point and image.
 * xfsprogs refuses filesystems under 300 MiB, hence the default size (sparse: costs no disk).
 */
export async function loopMount(
  fstype: "xfs" | "btrfs" | "ext4",
  sizeMiB = 300,
): Promise<LoopMount> {
  const mkfsArgs: Record<typeof fstype, [string, string[]]> = {
    xfs: ["mkfs.xfs", ["-q", "-f", "-m", "reflink=1"]],
    btrfs: ["mkfs.btrfs", ["-q", "-f"]],
    ext4: ["mkfs.ext4", ["-q", "-F"]],
  };
  const [mkfsName, args] = mkfsArgs[fstype];
  const mkfs = requireCommand(mkfsName);
  const mount = requireCommand("mount");
  const umount = requireCommand("umount");
  const image = await Deno.makeTempFile({
    dir: LOOP_IMAGE_DIR,
    prefix: `cfs-${fstype}-`,
    suffix: ".img",
  });
  let mountPoint: string | undefined;
  try {
    await Deno.truncate(image, sizeMiB * 1024 * 1024);
    await run(mkfs, [...args, image]);
    mountPoint = await Deno.makeTempDir({ prefix: `cfs-mnt-${fstype}-` });
    await run(mount, ["-o", "loop", image, mountPoint]);
  } catch (e) {
    if (mountPoint) await Deno.remove(mountPoint).catch(() => {});
    await Deno.remove(image);
    throw e;
  }
  const path = mountPoint;
  return {
    path,
    fstype,
    async [Symbol.asyncDispose]() {
      // A just-closed fd can keep the mount busy for a moment; retry briefly before failing.
      for (let attempt = 0;; attempt++) {
        const r = await run(umount, [path], { allowFail: true });
        if (r.code === 0) break;
        if (attempt >= 20) throw new Error(`Cannot unmount "${path}": ${r.stderr.trim()}`);
        await new Promise((res) => setTimeout(res, 100));
      }
      await Deno.remove(path);
      await Deno.remove(image);
    },
  };
}

/** `len` pseudo-random bytes from `seed` (an LCG: the same seed gives the same bytes). */
export function pattern(len: number, seed: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(len);
  let x = seed >>> 0;
  for (let i = 0; i < len; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/**
 * The errno name `fn` fails with, or "OK" (a Disposable result is disposed). Other errors
 * propagate.
 */
export function errnoOf(fn: () => unknown): string {
  try {
    const r = fn();
    if (r && typeof r === "object" && Symbol.dispose in r) (r as Disposable)[Symbol.dispose]();
    return "OK";
  } catch (e) {
    if (e instanceof ErrnoError) return e.code;
    throw e;
  }
}

/**
 * Run `fn` and assert it leaves this process with exactly as many open fds as before.
 * Starts the process-wide event loop first: its epoll fd and eventfd live for the whole process.
 */
export async function assertNoFdLeak<T>(fn: () => T | Promise<T>): Promise<T> {
  startEventLoop();
  const before = openFdCount();
  const result = await fn();
  const after = openFdCount();
  assert.equal(after, before, `fd leak: ${before} open before, ${after} after`);
  return result;
}

/** `fsverity digest` (the oracle) agrees with the name of every object in `repo`. */
export async function assertObjectsMatchFsverity(
  repoPath: string,
  alg: HashAlgorithm,
): Promise<number> {
  const fsverity = requireCommand("fsverity");
  const files: string[] = [];
  for await (const d of Deno.readDir(join(repoPath, "objects"))) {
    if (!d.isDirectory) continue;
    for await (const f of Deno.readDir(join(repoPath, "objects", d.name))) {
      files.push(join(repoPath, "objects", d.name, f.name));
    }
  }
  assert.ok(files.length > 0, "repository has no objects");
  for (let i = 0; i < files.length; i += 200) {
    const batch = files.slice(i, i + 200);
    const out = await run(fsverity, ["digest", `--hash-alg=${alg}`, ...batch]);
    for (const line of out.stdout.trim().split("\n")) {
      const [digest, path] = line.split(" ");
      const parts = path.split("/");
      assert.equal(digest, `${alg}:${parts.at(-2)}${parts.at(-1)}`, `object ${path}`);
    }
  }
  return files.length;
}

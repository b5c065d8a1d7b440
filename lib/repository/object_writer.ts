/**
 * Streaming object writer (repository-format §1.5, DESIGN 8): bytes go into an unnamed
 * O_TMPFILE in `objects/` (or a named `.tmp-object-*` file where O_TMPFILE is unsupported),
 * hashed while written; `finish()` reopens it read-only, enables fs-verity where possible and
 * links it as `objects/XX/<rest>`. An existing name means "already stored" (EEXIST).
 *
 * @module
 */

import * as C from "../../ffi/constants.ts";
import { ErrnoError } from "../../ffi/errno.ts";
import {
  linkFd,
  openBeneath,
  openTmpfile,
  renameAt,
  reopenFd,
  unlinkAt,
  writeAll,
} from "../../ffi/fs.ts";
import type { OwnedFd } from "../../ffi/owned_fd.ts";
import type { HashAlgorithm } from "../fsverity/algorithm.ts";
import { FsVerityHasher } from "../fsverity/hasher.ts";
import { toHex } from "./object_id.ts";

/** Mode of objects written by the streaming path (composefs-rs paths 2/3). */
const OBJECT_MODE = 0o644;
/** Mode of `objects/XX` made by the streaming path. */
const SUBDIR_MODE = 0o755;
/** In-memory objects (`ensure_object`, path 1): file 0666 and `objects/XX` 0777 (§1.6). */
export const IN_MEMORY_MODES = { file: 0o666, dir: 0o777 } as const;
/** Attempts at a fresh `.tmp-object-*` name (composefs-rs tries 16 times). */
const TMP_NAME_ATTEMPTS = 16;
/** Length of the random suffix of temporary names (composefs-rs: 12 alphanumerics). */
const TMP_SUFFIX_LEN = 12;
const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** 12 random alphanumerics, as composefs-rs's temporary names. */
export function randomSuffix(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(TMP_SUFFIX_LEN));
  let s = "";
  for (const b of bytes) s += ALNUM[b % ALNUM.length];
  return s;
}

/** What an {@link ObjectWriter} needs from its repository (internal). */
export interface ObjectSink {
  /** The repository's algorithm. */
  readonly algorithm: HashAlgorithm;
  /** `objects/`, created when missing (borrowed). */
  objectsDir(): OwnedFd;
  /** `objects/XX`, created with `mode` when missing (borrowed). */
  objectSubdir(first: number, mode?: number): OwnedFd;
  /** Enable/check fs-verity on a read-only fd per the repository's policy; throws on mismatch. */
  sealObject(ro: OwnedFd, id: Uint8Array, path: string): void;
  /**
   * False once the repository knows fs-verity is unavailable and not required: then there is
   * nothing to seal and the writable fd is linked directly (saves a /proc reopen per object).
   */
  needsSeal(): boolean;
  /** Use the named-tmpfile fallback even where O_TMPFILE works (tests). */
  readonly forceNamedTmpfile: boolean;
}

/** Result of {@link ObjectWriter.finish}. */
export interface ObjectWriteResult {
  /** The object's ID (fs-verity digest). */
  id: Uint8Array;
  /** True when an object with this ID already existed (nothing new was linked). */
  present: boolean;
}

/** Whether an error means "this filesystem has no O_TMPFILE". */
function noTmpfile(e: unknown): boolean {
  return e instanceof ErrnoError &&
    (e.is("EOPNOTSUPP") || e.is("EISDIR") || e.is("EINVAL") || e.is("ENOSYS"));
}

/**
 * Writes one object. Use with `using`: disposing an unfinished writer discards the data.
 *
 * Created by `Repository.createObjectWriter()`.
 */
export class ObjectWriter implements Disposable {
  #sink: ObjectSink;
  #fd: OwnedFd | undefined;
  #tmpName: string | undefined;
  #hasher: FsVerityHasher | undefined;
  #expected: Uint8Array | undefined;
  #done = false;
  #dirMode: number;

  /** @internal Use `Repository.createObjectWriter()`. `expectedId` skips hashing (caller hashed). */
  constructor(
    sink: ObjectSink,
    opts: { expectedId?: Uint8Array; fd?: OwnedFd; modes?: { file: number; dir: number } } = {},
  ) {
    this.#sink = sink;
    const fileMode = opts.modes?.file ?? OBJECT_MODE;
    this.#dirMode = opts.modes?.dir ?? SUBDIR_MODE;
    this.#expected = opts.expectedId;
    if (!this.#expected) this.#hasher = new FsVerityHasher(sink.algorithm);
    if (opts.fd) {
      this.#fd = opts.fd;
      return;
    }
    const dir = sink.objectsDir();
    if (!sink.forceNamedTmpfile) {
      try {
        this.#fd = openTmpfile(dir, ".", fileMode);
        return;
      } catch (e) {
        if (!noTmpfile(e)) throw e;
      }
    }
    for (let i = 0; i < TMP_NAME_ATTEMPTS && !this.#fd; i++) {
      const name = `.tmp-object-${randomSuffix()}`;
      try {
        this.#fd = openBeneath(dir, name, {
          flags: C.O_RDWR | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW,
          mode: fileMode,
        });
        this.#tmpName = name;
      } catch (e) {
        if (!(e instanceof ErrnoError && e.is("EEXIST"))) throw e;
      }
    }
    if (!this.#fd) throw new Error("Cannot create a temporary object file: every name was taken");
  }

  /** Bytes written so far (only tracked when hashing). */
  get size(): number {
    return this.#hasher?.size ?? 0;
  }

  /** Append bytes. */
  write(chunk: Uint8Array): void {
    if (this.#done || !this.#fd) throw new TypeError("ObjectWriter is already finished");
    this.#hasher?.update(chunk);
    writeAll(this.#fd, chunk as Uint8Array<ArrayBuffer>);
  }

  /** Make the object visible under its digest; returns the ID and whether it already existed. */
  finish(): ObjectWriteResult {
    if (this.#done || !this.#fd) throw new TypeError("ObjectWriter is already finished");
    this.#done = true;
    const rw = this.#fd;
    this.#fd = undefined;
    const id = this.#expected ?? this.#hasher!.digest();
    const hex = toHex(id);
    const path = `${hex.slice(0, 2)}/${hex.slice(2)}`;
    const rest = hex.slice(2);
    const tmpName = this.#tmpName;
    try {
      // fs-verity can only be enabled with no writable fd open on the inode.
      let ro: OwnedFd = rw;
      if (this.#sink.needsSeal()) {
        ro = tmpName === undefined
          ? reopenFd(rw, C.O_RDONLY)
          : openBeneath(this.#sink.objectsDir(), tmpName, { flags: C.O_RDONLY });
        rw.close();
      }
      using _ro = ro;
      if (ro !== rw) this.#sink.sealObject(ro, id, path);
      const sub = this.#sink.objectSubdir(id[0], this.#dirMode);
      try {
        if (tmpName === undefined) linkFd(ro, sub, rest);
        else {
          renameAt(this.#sink.objectsDir(), tmpName, sub, rest, C.RENAME_NOREPLACE);
          this.#tmpName = undefined;
        }
      } catch (e) {
        if (e instanceof ErrnoError && e.is("EEXIST")) return { id, present: true };
        throw e;
      }
      return { id, present: false };
    } finally {
      rw.close();
      this.#discardTmp();
    }
  }

  #discardTmp(): void {
    if (this.#tmpName !== undefined) {
      const name = this.#tmpName;
      this.#tmpName = undefined;
      unlinkAt(this.#sink.objectsDir(), name);
    }
  }

  /** Abort: close and drop the temporary file if `finish()` was not called. */
  [Symbol.dispose](): void {
    this.#done = true;
    this.#fd?.close();
    this.#fd = undefined;
    this.#discardTmp();
  }
}

/**
 * The one object writer (repository-format §1.5, DESIGN 8): bytes go into a {@link TmpObject}
 * in `objects/` (an unnamed O_TMPFILE, or a named `.tmp-object-*` file where O_TMPFILE is
 * unsupported), hashed while written — or cloned in with FICLONE; `finish()` reopens it
 * read-only, enables fs-verity where possible and links it as `objects/XX/<rest>`. An existing
 * name means "already stored" (EEXIST).
 *
 * @module
 */

import { isErrno } from "../../ffi/errno.ts";
import { ficlone, writeAll } from "../../ffi/fs.ts";
import type { BorrowedFd } from "../../ffi/owned_fd.ts";
import { TmpObject } from "../../ffi/tmp_object.ts";
import type { HashAlgorithm } from "../fsverity/algorithm.ts";
import { FsVerityHasher } from "../fsverity/hasher.ts";
import { TMP_OBJECT_PREFIX } from "./names.ts";
import { toHex } from "./object_id.ts";

/** Mode of objects written by the streaming path (composefs-rs paths 2/3). */
const OBJECT_MODE = 0o644;
/** Mode of `objects/XX` made by the streaming path. */
const SUBDIR_MODE = 0o755;
/** In-memory objects (`ensure_object`, path 1): file 0666 and `objects/XX` 0777 (§1.6). */
export const IN_MEMORY_MODES = { file: 0o666, dir: 0o777 } as const;

/** What an {@link ObjectWriter} needs from its object store (internal). */
export interface ObjectSink {
  /** The repository's algorithm. */
  readonly algorithm: HashAlgorithm;
  /** `objects/`, created when missing. */
  objectsDir(): BorrowedFd;
  /** `objects/XX`, created with `mode` when missing. */
  objectSubdir(first: number, mode: number): BorrowedFd;
  /** Enable/check fs-verity on a read-only fd per the repository's policy; throws on mismatch. */
  sealObject(ro: BorrowedFd, id: Uint8Array, path: string): void;
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

/** Options of the {@link ObjectWriter} constructor (internal). */
export interface ObjectWriterOptions {
  /** The object's ID, known beforehand: written bytes are then not hashed. */
  expectedId?: Uint8Array;
  /** File and `objects/XX` modes (default: the streaming path's 0644 / 0755). */
  modes?: { file: number; dir: number };
}

/**
 * Writes one object. Use with `using`: disposing an unfinished writer discards the data.
 *
 * Created by `Repository.createObjectWriter()`.
 */
export class ObjectWriter implements Disposable {
  #sink: ObjectSink;
  #tmp: TmpObject;
  #hasher: FsVerityHasher | undefined;
  #expected: Uint8Array | undefined;
  #done = false;
  #dirMode: number;

  /** @internal Use `Repository.createObjectWriter()`. */
  constructor(sink: ObjectSink, opts: ObjectWriterOptions = {}) {
    this.#sink = sink;
    this.#dirMode = opts.modes?.dir ?? SUBDIR_MODE;
    this.#expected = opts.expectedId;
    this.#tmp = TmpObject.create(sink.objectsDir(), {
      mode: opts.modes?.file ?? OBJECT_MODE,
      forceNamed: sink.forceNamedTmpfile,
      prefix: TMP_OBJECT_PREFIX,
    });
  }

  /** Bytes written so far (only tracked when hashing). */
  get size(): number {
    return this.#hasher?.size ?? 0;
  }

  /** The file being written (owned by the writer), e.g. to hash a clone. @internal */
  get fd(): BorrowedFd {
    return this.#tmp.fd;
  }

  /** Append bytes. */
  write(chunk: Uint8Array): void {
    if (this.#done) throw new TypeError("ObjectWriter is already finished");
    if (!this.#expected) (this.#hasher ??= new FsVerityHasher(this.#sink.algorithm)).update(chunk);
    writeAll(this.#tmp.fd, chunk as Uint8Array<ArrayBuffer>);
  }

  /**
   * Make the (still empty) object a reflink of `src` (FICLONE): its bytes are then not hashed
   * here, so `finish` needs the ID. Throws the ioctl's ErrnoError when this pair of files
   * cannot share extents. @internal
   */
  cloneFrom(src: BorrowedFd): void {
    if (this.#done) throw new TypeError("ObjectWriter is already finished");
    ficlone(this.#tmp.fd, src);
  }

  /**
   * Make the object visible under its digest (`id` when the caller computed it, e.g. after
   * {@link cloneFrom}); returns the ID and whether it already existed.
   */
  finish(id?: Uint8Array): ObjectWriteResult {
    if (this.#done) throw new TypeError("ObjectWriter is already finished");
    this.#done = true;
    const tmp = this.#tmp;
    try {
      const oid = id ?? this.#expected ??
        (this.#hasher ?? new FsVerityHasher(this.#sink.algorithm)).digest();
      const hex = toHex(oid);
      // fs-verity can only be enabled with no writable fd open on the inode.
      if (this.#sink.needsSeal()) {
        this.#sink.sealObject(tmp.reopenReadOnly(), oid, `${hex.slice(0, 2)}/${hex.slice(2)}`);
      }
      try {
        tmp.link(hex.slice(2), this.#sink.objectSubdir(oid[0], this.#dirMode));
      } catch (e) {
        if (isErrno(e, "EEXIST")) return { id: oid, present: true };
        throw e;
      }
      return { id: oid, present: false };
    } finally {
      tmp[Symbol.dispose]();
    }
  }

  /** Abort: close and drop the temporary file if `finish()` was not called. */
  [Symbol.dispose](): void {
    this.#done = true;
    this.#tmp[Symbol.dispose]();
  }
}

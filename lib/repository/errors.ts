/**
 * Typed errors of the repository layer.
 *
 * @module
 */

/** The process lacks Deno's write (or read) permission for the repository (DESIGN 7). */
export class RepositoryPermissionError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "RepositoryPermissionError";
  /** The repository path that was checked. */
  readonly path: string;
  /** `read` or `write`. */
  readonly access: "read" | "write";
  /** The Deno flag that would grant it, e.g. `--allow-write=/srv/repo`. */
  readonly flag: string;
  /** Create the error from its structured fields. */
  constructor(path: string, access: "read" | "write") {
    const flag = `--allow-${access}=${path}`;
    super(
      `${
        access === "write" ? "Write" : "Read"
      } access to repository "${path}" is not granted: run with ${flag} (--allow-ffi does not grant it)`,
    );
    this.path = path;
    this.access = access;
    this.flag = flag;
  }
}

/** No `meta.json` and no `objects/`: not a composefs repository. */
export class MetadataMissingError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "MetadataMissingError";
  /** Repository path. */
  readonly path: string;
  /** Create the error from its structured fields. */
  constructor(path: string) {
    super(`No composefs repository at "${path}": meta.json is missing (run init first)`);
    this.path = path;
  }
}

/** A pre-`meta.json` repository opened with upgrades disabled or read-only. */
export class OldFormatRepositoryError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "OldFormatRepositoryError";
  /** Repository path. */
  readonly path: string;
  /** Create the error from its structured fields. */
  constructor(path: string, why: string) {
    super(`Repository "${path}" has no meta.json (old format): ${why}`);
    this.path = path;
  }
}

/** Opening with `--hash` or init with an algorithm that differs from `meta.json`. */
export class AlgorithmMismatchError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "AlgorithmMismatchError";
  /** Algorithm in `meta.json`. */
  readonly configured: string;
  /** Algorithm requested. */
  readonly requested: string;
  /** Create the error from its structured fields. */
  constructor(configured: string, requested: string) {
    super(`Repository is configured for "${configured}" but "${requested}" was requested`);
    this.configured = configured;
    this.requested = requested;
  }
}

/** `init` found a `meta.json` with a different configuration. */
export class RepositoryExistsError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "RepositoryExistsError";
  /** Repository path. */
  readonly path: string;
  /** Create the error from its structured fields. */
  constructor(path: string) {
    super(
      `Repository "${path}" is already initialized with a different configuration (use --reset-metadata to change it)`,
    );
    this.path = path;
  }
}

/** A write on a repository opened read-only (or made read-only by a feature flag). */
export class RepositoryReadOnlyError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "RepositoryReadOnlyError";
  /** Repository path. */
  readonly path: string;
  /** Create the error from its structured fields. */
  constructor(path: string, why: string) {
    super(`Repository "${path}" is read-only: ${why}`);
    this.path = path;
  }
}

/** fs-verity is required (secure repository) but the filesystem does not support it. */
export class VerityUnsupportedError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "VerityUnsupportedError";
  /** What was being written or checked. */
  readonly path: string;
  /** Create the error from its structured fields. */
  constructor(path: string, hint = "") {
    super(`The filesystem holding "${path}" does not support fs-verity${hint}`);
    this.path = path;
  }
}

/** An object's fs-verity digest is missing in a secure repository. */
export class VerityMissingError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "VerityMissingError";
  /** Object path below `objects/`. */
  readonly path: string;
  /** Create the error from its structured fields. */
  constructor(path: string) {
    super(`Object "${path}" has no fs-verity enabled, but the repository requires it`);
    this.path = path;
  }
}

/** An object's content (or measured digest) does not match its name. */
export class ObjectDigestMismatchError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "ObjectDigestMismatchError";
  /** Object path below `objects/`. */
  readonly path: string;
  /** Hex digest actually measured. */
  readonly measured: string;
  /** Create the error from its structured fields. */
  constructor(path: string, measured: string) {
    super(`Object "${path}" has digest "${measured}"`);
    this.path = path;
    this.measured = measured;
  }
}

/** An object that was asked for is not in the repository. */
export class ObjectNotFoundError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "ObjectNotFoundError";
  /** Object path below `objects/`. */
  readonly path: string;
  /** Create the error from its structured fields. */
  constructor(path: string, options?: ErrorOptions) {
    super(`Object "${path}" is not in the repository`, options);
    this.path = path;
  }
}

/** A stream, image or ref name that does not exist. */
export class NotFoundError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "NotFoundError";
  /** `stream`, `image` or `ref`. */
  readonly kind: string;
  /** The name looked up. */
  readonly lookup: string;
  /** Create the error from its structured fields. */
  constructor(kind: string, lookup: string, options?: ErrorOptions) {
    super(`No ${kind} named "${lookup}"`, options);
    this.kind = kind;
    this.lookup = lookup;
  }
}

/** A stream/image/ref name that would leave its directory or is otherwise unsafe. */
export class InvalidNameError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "InvalidNameError";
  /** The rejected name. */
  readonly value: string;
  /** Create the error from its structured fields. */
  constructor(value: string, why: string) {
    super(`Invalid name "${value}": ${why}`);
    this.value = value;
  }
}

/** On-disk structure that violates the format (bad symlink target, unexpected file type, …). */
export class RepositoryCorruptError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "RepositoryCorruptError";
  /** Path relative to the repository root. */
  readonly path: string;
  /** Create the error from its structured fields. */
  constructor(path: string, detail: string, options?: ErrorOptions) {
    super(`Repository entry "${path}" is invalid: ${detail}`, options);
    this.path = path;
  }
}

/** A repository directory is a symlink or not a directory: refused, never followed (DESIGN 7). */
export class UnsafeRepositoryEntryError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "UnsafeRepositoryEntryError";
  /** Path relative to the repository root. */
  readonly path: string;
  /** Create the error from its structured fields. */
  constructor(path: string, options?: ErrorOptions) {
    super(`Refusing repository entry "${path}": it is a symlink or not a directory`, options);
    this.path = path;
  }
}

/** GC needs the exclusive lock but another user holds the repository open. */
export class RepositoryBusyError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "RepositoryBusyError";
  /** Repository path. */
  readonly path: string;
  /** Create the error from its structured fields. */
  constructor(path: string) {
    super(
      `Repository "${path}" is in use by another process or handle; garbage collection needs it exclusively`,
    );
    this.path = path;
  }
}

/** A splitstream object whose header or content type is not what the caller expects. */
export class StreamMismatchError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "StreamMismatchError";
  /** The stream name. */
  readonly stream: string;
  /** Create the error from its structured fields. */
  constructor(stream: string, detail: string, options?: ErrorOptions) {
    super(`Stream "${stream}": ${detail}`, options);
    this.stream = stream;
  }
}

/** `storeObjectFromFile` with copying forbidden, where neither a reflink nor a hardlink worked. */
export class CopyNotAllowedError extends Error {
  /** Error name, for matching without `instanceof`. */
  override name = "CopyNotAllowedError";
  /** Create the error. */
  constructor() {
    super(
      "Cannot store the file without copying: reflinks are unsupported here and no hardlink was possible",
    );
  }
}

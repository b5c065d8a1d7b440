/**
 * Chunk type bytes and limits of the splitdirfdstream wire format (composefs-rs
 * `composefs-splitdirfdstream`, release 0.9.0).
 *
 * @module
 */

/** Type byte of a Metadata chunk: tar headers and padding, copied verbatim. */
export const CHUNK_METADATA = 0x00;
/** Type byte of an InlineData chunk: file content sent inline (files the consumer could not open). */
export const CHUNK_INLINE_DATA = 0x01;
/** Type byte of a FileBackedData chunk: `content_len` bytes of a file beneath one of the dirfds. */
export const CHUNK_FILE_BACKED_DATA = 0x02;

/**
 * Largest Metadata or InlineData body, in bytes (256 MiB).
 *
 * Such a body is buffered whole in memory, so this bounds what one chunk of a hostile
 * stream can make the reader allocate. Same value as composefs-rs.
 *
 * @example
 * ```ts
 * import { MAX_INLINE_CHUNK_SIZE } from "./constants.ts";
 * import assert from "node:assert/strict";
 * assert.equal(MAX_INLINE_CHUNK_SIZE, 256 * 1024 * 1024);
 * ```
 */
export const MAX_INLINE_CHUNK_SIZE = 256 * 1024 * 1024;

/**
 * Longest FileBackedData filename, in bytes (4096 = Linux `PATH_MAX`).
 *
 * The reader rejects a longer `name_len` before buffering the name.
 *
 * @example
 * ```ts
 * import { MAX_FILENAME_LEN } from "./constants.ts";
 * import assert from "node:assert/strict";
 * assert.equal(MAX_FILENAME_LEN, 4096);
 * ```
 */
export const MAX_FILENAME_LEN = 4096;

/**
 * Most file descriptors sent in one varlink frame (240).
 *
 * Safely below the kernel's hard limit of 253 fds per `sendmsg(SCM_RIGHTS)` (`SCM_MAX_FD`).
 *
 * @example
 * ```ts
 * import { MAX_FDS_PER_FRAME } from "./constants.ts";
 * import assert from "node:assert/strict";
 * assert.equal(MAX_FDS_PER_FRAME, 240);
 * ```
 */
export const MAX_FDS_PER_FRAME = 240;

/** Linux `SCM_MAX_FD`: the kernel refuses a `sendmsg` carrying more fds (EINVAL). */
export const SCM_MAX_FD = 253;

/** Size of a Metadata / InlineData chunk header: type byte + u32 length. */
export const INLINE_HEADER_SIZE = 1 + 4;

/** Size of a FileBackedData chunk header: type byte + u64 content_len + u32 dirfd_index + u32 name_len. */
export const FILE_BACKED_HEADER_SIZE = 1 + 8 + 4 + 4;

/**
 * cfs-deno: composefs's OCI storage stack for Deno — composefs repositories, OCI images,
 * the splitdirfdstream layer transport and the varlink APIs, byte-compatible with composefs-rs.
 *
 * ```ts
 * import { ErrnoError } from "@cfs-deno/cfs";
 * ```
 *
 * @module
 */

export { ErrnoError } from "./ffi/errno.ts";
export { OwnedFd } from "./ffi/owned_fd.ts";
export {
  buildLayerFdLayout,
  type Chunk,
  ChunkDecoder,
  ContentLengthTooLargeError,
  decodeChunks,
  DirfdIndexOutOfRangeError,
  encodeChunk,
  encodeChunks,
  FdLimitExceededError,
  FilenameTooLongError,
  FileOpenError,
  FileShorterThanDeclaredError,
  InlineTooLargeError,
  InvalidFdLayoutError,
  InvalidFilenameError,
  type LayerFdLayout,
  type LayerFdLayoutInput,
  MAX_FDS_PER_FRAME,
  MAX_FILENAME_LEN,
  MAX_INLINE_CHUNK_SIZE,
  openChunkFile,
  produceFromTar,
  type ProduceFromTarOptions,
  ProducerFileError,
  type ReceivedLayerFds,
  reconstruct,
  seedFromId,
  SplitdirfdstreamDecoderStream,
  SplitdirfdstreamEncoderStream,
  SplitdirfdstreamError,
  splitFdsIntoFrames,
  splitLayerFds,
  TruncatedError,
  UnknownChunkTypeError,
  validateFilename,
} from "./lib/splitdirfdstream/mod.ts";

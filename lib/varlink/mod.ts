/**
 * Varlink for cfs: the protocol, a server and a client that pass file descriptors the way
 * sd-varlink and zlink do, and composefs-rs's `org.composefs.Repository` and
 * `org.composefs.Oci` interfaces (spec `varlink-api.md`).
 *
 * | File | What |
 * | --- | --- |
 * | `protocol.ts` | NUL-terminated JSON messages, call/reply objects, the fd-binding splitter, limits |
 * | `idl.ts` | IDL parser and parameter validation (→ `InvalidParameter`) |
 * | `errors.ts` | {@link VarlinkError} (error replies) and {@link VarlinkTransportError} |
 * | `connection.ts` | one connection: fds ride on the first byte of each message |
 * | `service.ts` | interfaces + handlers, `org.varlink.service`, the dispatcher |
 * | `server.ts` | {@link VarlinkServer}: path socket, socket activation, `exec:` connected fd |
 * | `client.ts` | {@link VarlinkClient}: `call`, `callMore` (async iterable), fds both ways |
 * | `composefs_service.ts` | both composefs interfaces over one handle table |
 * | `composefs_client.ts` | typed {@link ComposefsClient}; {@link VarlinkRepositoryEndpoint} for `oci copy` |
 *
 * Limits: messages up to {@link MAX_MESSAGE_SIZE} bytes and {@link MAX_FDS_PER_CONNECTION}
 * received fds held per connection; beyond either the connection is closed. Methods that
 * write are refused (`PermissionDenied`) to peers whose uid is neither ours nor root.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { VarlinkClient, VarlinkServer, VarlinkService } from "./mod.ts";
 *
 * const service = new VarlinkService({ vendor: "example", product: "ping", version: "1", url: "" });
 * service.add({
 *   idl: "interface org.example.Ping\nmethod Ping(n: int) -> (n: int)\n",
 *   methods: { Ping: (p) => Promise.resolve({ parameters: { n: p.n } }) },
 * });
 * const dir = await Deno.makeTempDir();
 * const server = new VarlinkServer(service);
 * const { served } = server.listen(`${dir}/ping.sock`);
 * {
 *   using client = await VarlinkClient.connect(`${dir}/ping.sock`);
 *   const reply = await client.call("org.example.Ping.Ping", { n: 42 });
 *   assert.deepEqual(reply.parameters, { n: 42 });
 * }
 * await server.close();
 * await served;
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

export {
  type Call,
  decodeCall,
  decodeReply,
  encodeCall,
  encodeErrorReply,
  encodeMessage,
  encodeReply,
  type FramedMessage,
  InvalidCallError,
  type JsonObject,
  type JsonValue,
  MAX_FDS_PER_CONNECTION,
  MAX_MESSAGE_SIZE,
  MessageSplitter,
  MessageTooLargeError,
  parseJson,
  type Reply,
  splitQualifiedName,
  type SplitterLimits,
  stringifyJson,
  TooManyFdsError,
  VarlinkProtocolError,
} from "./protocol.ts";
export {
  type IdlError,
  type IdlField,
  type IdlInterface,
  type IdlMethod,
  type IdlStruct,
  IdlSyntaxError,
  type IdlType,
  parseIdl,
  type ValidateOptions,
  validateValue,
  type ValidationFailure,
} from "./idl.ts";
export {
  errorFromReply,
  OCI_ERROR_KINDS,
  OCI_INTERFACE,
  OciError,
  type OciErrorKind,
  REPOSITORY_ERROR_KINDS,
  REPOSITORY_INTERFACE,
  RepositoryError,
  type RepositoryErrorKind,
  type TransportFailure,
  VARLINK_SERVICE,
  VarlinkError,
  VarlinkServiceError,
  VarlinkTransportError,
} from "./errors.ts";
export {
  type ConnectionLimits,
  type MessageSocket,
  type ReceivedVarlinkMessage,
  VarlinkConnection,
} from "./connection.ts";
export {
  type CallContext,
  type DispatchContext,
  type InterfaceDefinition,
  InterfaceDefinitionError,
  type MethodHandler,
  type MethodReply,
  type MethodSpec,
  type PeerCredentials,
  type ReplyFrame,
  type ServiceInfo,
  VarlinkInterface,
  VarlinkService,
  type VarlinkServiceOptions,
} from "./service.ts";
export {
  type ActivationMode,
  type ServableListener,
  type ServableSocket,
  serveActivated,
  serveFd,
  VarlinkServer,
  type VarlinkServerOptions,
} from "./server.ts";
export { type CallOptions, type CallReply, parseAddress, VarlinkClient } from "./client.ts";
export { HandleTable } from "./handles.ts";
export {
  COMPOSEFS_SERVICE_INFO,
  type ComposefsServiceOptions,
  createComposefsService,
} from "./composefs_service.ts";
export { repositoryInterface, type RepositoryOpenDefaults } from "./repository_service.ts";
export {
  MAX_PRODUCERS,
  OCI_FEATURES,
  ociInterface,
  type OciServiceOptions,
} from "./oci_service.ts";
export { ProducerPool } from "./producer_pool.ts";
export {
  type CheckReply,
  ComposefsClient,
  type FinalizeImageReply,
  type FsckReply,
  type GcReply,
  type InspectReply,
  type OciImageEntry,
  type OpenRepositoryReply,
  type PullFrame,
  type PutLayerReply,
  type ReceivedLayer,
  VarlinkRepositoryEndpoint,
} from "./composefs_client.ts";

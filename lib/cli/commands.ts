/**
 * The command tree, in help order: every command's words, help and options, and where its
 * implementation lives. This module is data only (it imports nothing but types), so `--help`
 * and argument parsing cost no library load; each `load` imports one implementation module
 * when its command runs. A command appears here only once it works.
 *
 * @module
 */

import type { CommandRun, CommandSpec, OptionSpec } from "./command.ts";

/**
 * Import `specifier` (relative to this module) and return its export `name`, a command's
 * implementation. The specifier is deliberately not a string literal: Deno pre-reads every
 * literal `import()` target (and its whole graph) at start-up, which cost `cfs --help` ~20 ms
 * of its ~120 (paired runs, see the bench). `deno task compile` includes lib/cli/ explicitly
 * for the same reason, and a test loads every command so a wrong name fails there.
 */
async function loadRun(specifier: string, name: string): Promise<CommandRun> {
  const m: Record<string, unknown> = await import(new URL(specifier, import.meta.url).href);
  const run = m[name];
  if (typeof run !== "function") {
    throw new TypeError(`Command module ${specifier} has no function export ${name}`);
  }
  return run as CommandRun;
}

const JSON_OPTION: OptionSpec = { type: "boolean", description: "Print the result as JSON" };

const init: CommandSpec = {
  words: ["init"],
  summary: "Create a repository (or check an existing one)",
  synopsis: "[PATH]",
  help: "Creates the directory and its parents and writes meta.json. Running it again with the " +
    "same configuration is a no-op; a different configuration is an error.",
  positionals: { min: 0, max: 1 },
  options: {
    algorithm: {
      type: "string",
      valueName: "ALG",
      description: `fs-verity algorithm: fsverity-sha512-12 (default) or fsverity-sha256-12`,
    },
    insecure: { type: "boolean", description: "Do not require fs-verity" },
    "erofs-version": {
      type: "string",
      valueName: "0|1|2",
      description: "Default EROFS format stored in meta.json (default 1)",
    },
    "reset-metadata": {
      type: "boolean",
      description: "Delete streams/, images/ and meta.json first (objects/ is kept)",
    },
    ensure: { type: "boolean", description: "Open an existing repository as it is" },
  },
  load: () => loadRun("./cmd_init.ts", "runInit"),
};

const cat: CommandSpec = {
  words: ["cat"],
  summary: "Write a stream's reassembled bytes to stdout",
  synopsis: "NAME",
  help: "NAME is a stream content id (streams/<NAME>) or refs/<ref>.",
  positionals: { min: 1, max: 1 },
  load: () => loadRun("./cmd_repo_read.ts", "runCat"),
};

const gc: CommandSpec = {
  words: ["gc"],
  summary: "Remove objects no ref reaches (mark and sweep)",
  positionals: { min: 0, max: 0 },
  options: {
    "dry-run": { type: "boolean", short: "n", description: "Report only; delete nothing" },
    root: {
      type: "string",
      short: "r",
      multiple: true,
      valueName: "NAME",
      description: "Also keep this streams/ or images/ entry (repeatable)",
    },
    json: JSON_OPTION,
  },
  load: () => loadRun("./cmd_gc.ts", "runGc"),
};

const images: CommandSpec = {
  words: ["images"],
  summary: "List named EROFS images",
  positionals: { min: 0, max: 0 },
  options: {
    json: { type: "boolean", description: "Print as JSON" },
    "no-trunc": { type: "boolean", description: "Show full digests" },
  },
  load: () => loadRun("./cmd_repo_read.ts", "runImages"),
};

const imageObjects: CommandSpec = {
  words: ["image-objects"],
  summary: "List the objects an image references",
  synopsis: "NAME",
  positionals: { min: 1, max: 1 },
  load: () => loadRun("./cmd_repo_read.ts", "runImageObjects"),
};

const fsck: CommandSpec = {
  words: ["fsck"],
  summary: "Check object digests, streams, images and links",
  help: "Exits non-zero on corruption unless --json is given.",
  positionals: { min: 0, max: 0 },
  options: {
    json: { type: "boolean", description: "Print the report as JSON" },
    "metadata-only": { type: "boolean", description: "Skip the per-object digest check" },
  },
  load: () => loadRun("./cmd_fsck.ts", "runFsck"),
};

/** Options of the directory-tree commands (`compute-id`, `create-dumpfile`, `create-image`). */
const FS_OPTIONS: Record<string, OptionSpec> = {
  bootable: {
    type: "boolean",
    description: "Transform for boot (not supported yet: needs the SELinux relabel)",
  },
  "no-propagate-usr-to-root": {
    type: "boolean",
    description: "Keep the root's own metadata instead of copying /usr's",
  },
  xattrs: {
    type: "string",
    valueName: "MODE",
    description: "allowlist-only (default) or keep-user-xattrs",
  },
};

const createImage: CommandSpec = {
  words: ["create-image"],
  summary: "Store a directory tree's files and its EROFS image in the repository",
  synopsis: "PATH [IMAGE_NAME]",
  positionals: { min: 1, max: 2 },
  options: FS_OPTIONS,
  load: () => loadRun("./cmd_erofs.ts", "runCreateImage"),
};

const computeId: CommandSpec = {
  words: ["compute-id"],
  summary: "Compute the composefs image id of a directory tree",
  synopsis: "PATH",
  positionals: { min: 1, max: 1 },
  options: FS_OPTIONS,
  load: () => loadRun("./cmd_erofs.ts", "runComputeId"),
};

const createDumpfile: CommandSpec = {
  words: ["create-dumpfile"],
  summary: "Print the composefs dumpfile of a directory tree",
  synopsis: "PATH",
  positionals: { min: 1, max: 1 },
  options: FS_OPTIONS,
  load: () => loadRun("./cmd_erofs.ts", "runCreateDumpfile"),
};

const ociPull: CommandSpec = {
  words: ["oci", "pull"],
  summary: "Import an OCI image from an oci: layout, an oci-archive: or containers-storage:",
  synopsis: "SOURCE [NAME]",
  help: "SOURCE is oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG] or " +
    "containers-storage:[DRIVER@ROOT+RUN]NAME[:TAG]|@ID (store from storage.conf). NAME (the tag to set) " +
    "defaults to SOURCE. Every blob digest and every layer's diff_id is verified.",
  positionals: { min: 1, max: 2 },
  options: {
    platform: {
      type: "string",
      valueName: "OS/ARCH[/VARIANT]",
      description: "Platform to select from an image index (default: this machine's)",
    },
    "local-fetch": {
      type: "string",
      valueName: "auto|zerocopy|disabled",
      description: "containers-storage: import natively; zerocopy = reflink or hardlink only " +
        "(default auto)",
    },
    zerocopy: {
      type: "boolean",
      description: "Same as --local-fetch zerocopy: fail rather than copy file contents",
    },
    json: JSON_OPTION,
  },
  load: () => loadRun("./oci_commands.ts", "runOciPull"),
};

const ociImages: CommandSpec = {
  words: ["oci", "images"],
  summary: "List tagged OCI images",
  positionals: { min: 0, max: 0 },
  options: { json: { type: "boolean", description: "Print as JSON" } },
  load: () => loadRun("./oci_commands.ts", "runOciImages"),
};

const ociInspect: CommandSpec = {
  words: ["oci", "inspect"],
  summary: "Show an image's manifest and config",
  synopsis: "IMAGE",
  help: "IMAGE is a tag or @sha256:<manifest digest>.",
  positionals: { min: 1, max: 1 },
  options: {
    manifest: { type: "boolean", description: "Print the stored manifest bytes" },
    config: { type: "boolean", description: "Print the stored config bytes" },
  },
  load: () => loadRun("./oci_commands.ts", "runOciInspect"),
};

const ociTag: CommandSpec = {
  words: ["oci", "tag"],
  summary: "Tag a manifest",
  synopsis: "MANIFEST_DIGEST NAME",
  positionals: { min: 2, max: 2 },
  load: () => loadRun("./oci_commands.ts", "runOciTag"),
};

const ociUntag: CommandSpec = {
  words: ["oci", "untag"],
  summary: "Remove a tag (the image becomes eligible for GC)",
  synopsis: "NAME",
  positionals: { min: 1, max: 1 },
  load: () => loadRun("./oci_commands.ts", "runOciUntag"),
};

const ociLayer: CommandSpec = {
  words: ["oci", "layer"],
  summary: "Write a layer's tar to stdout, or describe it with --json",
  synopsis: "DIFF_ID",
  positionals: { min: 1, max: 1 },
  options: { json: { type: "boolean", description: "Describe the layer as JSON" } },
  load: () => loadRun("./oci_commands.ts", "runOciLayer"),
};

const ociFsck: CommandSpec = {
  words: ["oci", "fsck"],
  summary: "Check the repository and OCI images",
  synopsis: "[IMAGE]",
  positionals: { min: 0, max: 1 },
  options: { json: { type: "boolean", description: "Print the report as JSON" } },
  load: () => loadRun("./oci_commands.ts", "runOciFsck"),
};

/** Options of `mount` and `oci mount`. */
const MOUNT_OPTIONS: Record<string, OptionSpec> = {
  upperdir: {
    type: "string",
    valueName: "DIR",
    description: "Overlay upper directory for a writable mount (needs --workdir)",
  },
  workdir: {
    type: "string",
    valueName: "DIR",
    description: "Overlay work directory (same filesystem as --upperdir)",
  },
  "read-write": {
    type: "boolean",
    description: "Mount read-write (needs --upperdir; implied by --upperdir)",
  },
  fuse: {
    type: "string",
    valueName: "auto|yes|no",
    description: "FUSE fallback (only the kernel mount is implemented: auto and no)",
  },
};

const mount: CommandSpec = {
  words: ["mount"],
  summary: "Mount an EROFS image of the repository (composefs over objects/)",
  synopsis: "NAME MOUNTPOINT",
  help: "NAME is an image id (images/<hex>) or a ref (images/refs/<name>). Needs root. " +
    "verity=require is used unless the repository is insecure.",
  positionals: { min: 2, max: 2 },
  options: MOUNT_OPTIONS,
  load: () => loadRun("./cmd_mount.ts", "runMount"),
};

const ociMount: CommandSpec = {
  words: ["oci", "mount"],
  summary: "Mount the composefs image of an OCI image",
  synopsis: "IMAGE MOUNTPOINT",
  help: "IMAGE is a tag, @sha256:<manifest digest> or sha256:<manifest digest>. The image " +
    "linked for the repository's EROFS format (or --erofs-version) is mounted.",
  positionals: { min: 2, max: 2 },
  options: MOUNT_OPTIONS,
  load: () => loadRun("./cmd_mount.ts", "runOciMount"),
};

const XATTRS_OPTION: OptionSpec = {
  type: "string",
  valueName: "allowlist-only|keep-user-xattrs",
  description: "Xattrs to keep (default allowlist-only: security.capability only)",
};

const ociComputeId: CommandSpec = {
  words: ["oci", "compute-id"],
  summary: "Compute the composefs image id of an OCI image",
  synopsis: "IMAGE",
  help: "IMAGE is a tag, @sha256:<config digest> or @sha256:<manifest digest>. Prints the " +
    "bare hex id for the repository's EROFS format (or --erofs-version).",
  positionals: { min: 1, max: 1 },
  options: { xattrs: XATTRS_OPTION },
  load: () => loadRun("./cmd_mount.ts", "runOciComputeId"),
};

const ociDump: CommandSpec = {
  words: ["oci", "dump"],
  summary: "Print the merged filesystem of an OCI image as a composefs dumpfile",
  synopsis: "IMAGE",
  help: "IMAGE is a tag, @sha256:<config digest> or @sha256:<manifest digest>.",
  positionals: { min: 1, max: 1 },
  options: { xattrs: XATTRS_OPTION },
  load: () => loadRun("./cmd_mount.ts", "runOciDump"),
};

const ociCopy: CommandSpec = {
  words: ["oci", "copy"],
  summary: "Copy an image from another repository (the global repository is the destination)",
  synopsis: "IMAGE",
  help: "IMAGE is a tag in the source repository or @sha256:<manifest digest>. Each layer " +
    "travels as a splitdirfdstream and is re-hashed; between two local repositories of one " +
    "algorithm each layer's stream, its objects and the composefs image are linked under " +
    "the names they have instead (--verify: stream and re-hash anyway). Objects are " +
    "reflinked, else hardlinked (same algorithm and filesystem), else copied. --name " +
    "defaults to the source's tag.",
  positionals: { min: 1, max: 1 },
  options: {
    from: { type: "string", valueName: "PATH", description: "Source repository (required)" },
    "from-varlink": {
      type: "string",
      valueName: "ADDRESS",
      description:
        "Open --from through the varlink server at ADDRESS (global --varlink: the destination)",
    },
    name: { type: "string", valueName: "NAME", description: "Tag in the destination" },
    zerocopy: {
      type: "boolean",
      description: "Reflink or hardlink only; refuse when that is impossible",
    },
    verify: {
      type: "boolean",
      description:
        "Stream every layer, re-hash every object and check diff_ids even between local repositories",
    },
    json: { type: "boolean", description: "Print the summary as JSON" },
  },
  load: () => loadRun("./cmd_oci_copy.ts", "runOciCopy"),
};

const VARLINK_OPTIONS: Record<string, OptionSpec> = {
  address: {
    type: "string",
    valueName: "PATH",
    description: "Listen on a new unix socket at PATH (default: the socket-activation fd)",
  },
  "trust-any-uid": {
    type: "boolean",
    description: "Let peers of any uid call methods that write (default: our uid and root)",
  },
};

const varlink: CommandSpec = {
  words: ["varlink"],
  summary: "Serve the org.composefs.Repository and org.composefs.Oci varlink interfaces",
  help: "With no arguments at all and LISTEN_FDS set (varlinkctl exec:, systemd units), cfs " +
    "serves the activation socket as if run as `cfs varlink`.",
  positionals: { min: 0, max: 0 },
  options: VARLINK_OPTIONS,
  load: () => loadRun("./cmd_varlink.ts", "runVarlink"),
};

/** cfsctl's alias of `varlink`. */
const ociVarlink: CommandSpec = { ...varlink, words: ["oci", "varlink"] };

const demo: CommandSpec = {
  words: ["demo"],
  summary: "Build a small OCI image, pull it, copy it sha256 -> sha512 -> sha256 and --zerocopy",
  help: "Runs on generated data; needs nothing but Deno. Every layer's diff_id is verified " +
    "and fsck runs after each step. With --dir the repositories are kept for inspection.",
  positionals: { min: 0, max: 0 },
  options: {
    dir: { type: "string", valueName: "DIR", description: "Work directory to keep" },
    json: { type: "boolean", description: "Print the report as JSON" },
  },
  load: () => loadRun("./cmd_demo.ts", "runDemoCommand"),
};

/** The registered commands, in help order. */
export const COMMANDS: CommandSpec[] = [
  init,
  cat,
  gc,
  images,
  imageObjects,
  fsck,
  createImage,
  computeId,
  createDumpfile,
  ociPull,
  ociImages,
  ociInspect,
  ociTag,
  ociUntag,
  ociLayer,
  ociFsck,
  mount,
  ociMount,
  ociComputeId,
  ociDump,
  ociCopy,
  ociVarlink,
  varlink,
  demo,
];

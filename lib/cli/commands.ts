/**
 * Every CLI command, in help order. A command appears here only once it works.
 *
 * @module
 */

import type { CommandSpec } from "./command.ts";
import { initCommand } from "./cmd_init.ts";
import { fsckCommand } from "./cmd_fsck.ts";
import { gcCommand } from "./cmd_gc.ts";
import { catCommand, imageObjectsCommand, imagesCommand } from "./cmd_repo_read.ts";
import { ociCopyCommand } from "./cmd_oci_copy.ts";
import { demoCommand } from "./cmd_demo.ts";
import { ociVarlinkCommand, varlinkCommand } from "./cmd_varlink.ts";
import { OCI_COMMANDS } from "./oci_commands.ts";
import { MOUNT_COMMANDS } from "./cmd_mount.ts";
import { computeIdCommand, createDumpfileCommand, createImageCommand } from "./cmd_erofs.ts";

/** The registered commands. */
export const COMMANDS: CommandSpec[] = [
  initCommand,
  catCommand,
  gcCommand,
  imagesCommand,
  imageObjectsCommand,
  fsckCommand,
  createImageCommand,
  computeIdCommand,
  createDumpfileCommand,
  ...OCI_COMMANDS,
  ...MOUNT_COMMANDS,
  ociCopyCommand,
  ociVarlinkCommand,
  varlinkCommand,
  demoCommand,
];

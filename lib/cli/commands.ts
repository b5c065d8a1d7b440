/**
 * Every CLI command, in help order. A command appears here only once it works.
 *
 * @module
 */

import type { CommandSpec } from "./command.ts";
import { ociCopyCommand } from "./cmd_oci_copy.ts";
import { demoCommand } from "./cmd_demo.ts";

/** The registered commands. */
export const COMMANDS: CommandSpec[] = [
  ociCopyCommand,
  demoCommand,
];

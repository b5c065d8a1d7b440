/**
 * Every CLI command, in help order. A command appears here only once it works.
 *
 * @module
 */

import type { CommandSpec } from "./command.ts";

/** The registered commands. */
export const COMMANDS: CommandSpec[] = [];

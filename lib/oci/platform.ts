/**
 * Platform selection in image indexes: the running platform by default, or `--platform
 * os/arch[/variant]`.
 *
 * @module
 */

import { InvalidSourceError } from "./errors.ts";
import type { Platform } from "./manifest.ts";

/** Deno's architecture names → OCI (GOARCH) names. */
const ARCH_TO_OCI: Readonly<Record<string, string>> = {
  x86_64: "amd64",
  aarch64: "arm64",
};

/** The platform this process runs on, in OCI terms. */
export function hostPlatform(): Platform {
  const architecture = ARCH_TO_OCI[Deno.build.arch] ?? Deno.build.arch;
  return { os: Deno.build.os === "darwin" ? "darwin" : Deno.build.os, architecture };
}

/** Parse `os/arch[/variant]` (as given to `--platform`). */
export function parsePlatform(s: string): Platform {
  const parts = s.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === "")) {
    throw new InvalidSourceError(s, "platform must be os/arch[/variant]");
  }
  const p: Platform = { os: parts[0], architecture: parts[1] };
  if (parts[2] !== undefined) p.variant = parts[2];
  return p;
}

/** `os/arch[/variant]`. */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? "/" + p.variant : ""}`;
}

/**
 * Does `candidate` satisfy `wanted`? os and architecture must be equal; a wanted variant must
 * match exactly, an unspecified one accepts any variant.
 */
export function platformMatches(wanted: Platform, candidate: Platform): boolean {
  if (wanted.os !== candidate.os || wanted.architecture !== candidate.architecture) return false;
  if (wanted.variant !== undefined && candidate.variant !== wanted.variant) return false;
  return true;
}

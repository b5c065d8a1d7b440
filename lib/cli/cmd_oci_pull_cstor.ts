/**
 * The `containers-storage:` branch of `oci pull` (cfsctl's native importer, `--local-fetch
 * auto|zerocopy`). cfsctl sends `containers-storage:` without `--local-fetch` through the skopeo
 * proxy; we have no proxy, so the native importer is the default (`auto`), and
 * `--local-fetch disabled` is refused with a usage error.
 *
 * @module
 */

import type { FormatVersion } from "../erofs/format.ts";
import type { Repository } from "../repository/repository.ts";
import { toHex } from "../repository/object_id.ts";
import type { PullEvent } from "../oci/pull.ts";
import { pullFromContainersStorage } from "../oci/cstor/pull.ts";
import { CSTOR_TRANSPORT } from "../oci/cstor/reference.ts";
import type { CommandContext } from "./command.ts";
import { UsageError } from "./errors.ts";
import { formatBytes } from "./output.ts";

/** True if `source` names the containers-storage transport. */
export function isCstorSource(source: string): boolean {
  return source.startsWith(CSTOR_TRANSPORT);
}

/** `--local-fetch` / `--zerocopy` → the mode; a usage error for other values. */
export function localFetchMode(
  values: CommandContext["values"],
): "auto" | "zerocopy" | "disabled" {
  const v = values["local-fetch"];
  if (values.zerocopy === true) {
    if (v !== undefined && v !== "zerocopy") {
      throw new UsageError(`--zerocopy conflicts with --local-fetch "${v}"`, "oci pull");
    }
    return "zerocopy";
  }
  if (v === undefined) return "auto";
  if (v === "auto" || v === "zerocopy" || v === "disabled") return v;
  throw new UsageError(
    `Invalid --local-fetch "${String(v)}" (expected auto, zerocopy or disabled)`,
    "oci pull",
  );
}

/** Run `oci pull containers-storage:… [NAME]`. */
export async function runCstorPull(
  ctx: CommandContext,
  source: string,
  name: string | undefined,
  openRepo: () => Promise<Repository>,
  onEvent: (e: PullEvent) => void,
): Promise<void> {
  const mode = localFetchMode(ctx.values);
  if (mode === "disabled") {
    throw new UsageError(
      "containers-storage: without --local-fetch needs the skopeo image proxy, which is not " +
        'implemented: use "--local-fetch auto"',
      "oci pull",
    );
  }
  using repo = await openRepo();
  const r = await pullFromContainersStorage(repo, source, {
    tag: name ?? source,
    zeroCopy: mode === "zerocopy",
    onEvent,
    ...(ctx.global.erofsVersion !== undefined
      ? { erofsVersion: ctx.global.erofsVersion as FormatVersion }
      : {}),
  });
  ctx.out.progressDone();
  const s = r.stats;
  ctx.out.line(`manifest ${r.manifestDigest}`);
  ctx.out.line(`config   ${r.configDigest}`);
  ctx.out.line(`verity   ${toHex(r.manifestVerity)}`);
  ctx.out.line(`tagged   ${r.tag}`);
  ctx.out.line(
    `objects  ${s.objectsReflinked} reflinked + ${s.objectsHardlinked} hardlinked + ` +
      `${s.objectsCopied} copied + ${s.objectsAlreadyPresent} already present objects; ` +
      `${r.layers.filter((l) => l.skipped).length} layers skipped ` +
      `(${formatBytes(s.externalBytes)} external, ${formatBytes(s.inlineBytes)} inline)`,
  );
  ctx.out.result({
    manifest_digest: r.manifestDigest,
    config_digest: r.configDigest,
    manifest_verity: toHex(r.manifestVerity),
    config_verity: toHex(r.configVerity),
    tag: r.tag ?? null,
    image_id: r.imageId,
    images: r.images.map((i) => ({ version: i.version, id: toHex(i.id) })),
    store: r.store,
    layers: r.layers.map((l) => ({
      diff_id: l.diffId,
      verity: toHex(l.verity),
      skipped: l.skipped,
    })),
    stats: r.stats,
  });
}

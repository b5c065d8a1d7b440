/**
 * The demo job: build the embedded image, pull it into a sha256 repository, copy it to a
 * sha512 repository and back, then copy sha256 → sha256 with --zerocopy, verifying every
 * layer's diff_id and fsck after each step.
 *
 * @module
 */

import { join } from "node:path";
import { Repository } from "../repository/repository.ts";
import { pullImage } from "../oci/pull.ts";
import { copyImage, type CopySummary, ZeroCopyUnavailableError } from "../oci/copy.ts";
import { LocalRepositoryEndpoint } from "../oci/copy_endpoint.ts";
import { DigestHasher } from "../oci/digest.ts";
import { resolveImage } from "../oci/image_store.ts";
import { layerStreamName } from "../oci/names.ts";
import { writeDemoImage } from "./demo_image.ts";

/** Something the demo did (the CLI prints these). */
export type DemoStep =
  | { type: "built"; layout: string; manifestDigest: string; layers: number }
  | { type: "pulled"; repo: string; algorithm: string; seconds: number }
  | { type: "copied"; from: string; to: string; summary: CopySummary }
  | { type: "zerocopy-unavailable"; reason: string }
  | { type: "verified"; repo: string; layers: number; objects: number };

/** What the demo found. */
export interface DemoReport {
  /** Work directory (kept when given). */
  dir: string;
  /** Manifest digest of the image in every repository. */
  manifestDigest: string;
  /** True when the sha256 → sha512 → sha256 round trip reproduced the original streams. */
  roundTripIdentical: boolean;
  /** Every step, in order. */
  steps: DemoStep[];
}

/** A layer did not reconstruct to its diff_id or fsck failed: the demo must say so. */
export class DemoVerificationError extends Error {
  override name = "DemoVerificationError";
  /** Repository that failed. */
  readonly repo: string;
  constructor(repo: string, detail: string) {
    super(`Verification failed in "${repo}": ${detail}`);
    this.repo = repo;
  }
}

async function verify(repo: Repository, path: string, tag: string): Promise<DemoStep> {
  const img = resolveImage(repo, tag);
  const diffIds = img.config?.diffIds ?? [];
  for (const d of diffIds) {
    using h = new DigestHasher();
    for await (const c of repo.catStream(layerStreamName(d))) h.update(c);
    const actual = h.digest();
    if (actual !== d) throw new DemoVerificationError(path, `layer ${d} reconstructs to ${actual}`);
  }
  const report = repo.fsck();
  if (!report.ok) throw new DemoVerificationError(path, `fsck: ${JSON.stringify(report.errors)}`);
  return { type: "verified", repo: path, layers: diffIds.length, objects: report.objectsChecked };
}

/** Run the demo in `dir` (a fresh temporary directory when omitted, removed afterwards). */
export async function runDemo(
  opts: { dir?: string; onStep?: (s: DemoStep) => void } = {},
): Promise<DemoReport> {
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "cfs-demo-" });
  await Deno.mkdir(dir, { recursive: true });
  const steps: DemoStep[] = [];
  const step = (s: DemoStep) => {
    steps.push(s);
    opts.onStep?.(s);
  };
  try {
    const tag = "demo";
    const layout = join(dir, "layout");
    const built = await writeDemoImage(layout, tag);
    step({
      type: "built",
      layout,
      manifestDigest: built.manifestDigest,
      layers: built.diffIds.length,
    });

    const p256 = join(dir, "repo-sha256");
    using r256 = await Repository.init(p256, { algorithm: "sha256", insecure: true });
    const t0 = performance.now();
    await pullImage(r256, `oci:${layout}:${tag}`, { tag });
    step({
      type: "pulled",
      repo: p256,
      algorithm: "sha256",
      seconds: (performance.now() - t0) / 1000,
    });
    step(await verify(r256, p256, tag));

    const hops: [Repository, string, string, "sha256" | "sha512", boolean][] = [];
    const p512 = join(dir, "repo-sha512");
    using r512 = await Repository.init(p512, { algorithm: "sha512", insecure: true });
    hops.push([r256, p256, p512, "sha512", false]);
    const pBack = join(dir, "repo-sha256-back");
    using rBack = await Repository.init(pBack, { algorithm: "sha256", insecure: true });
    const pZero = join(dir, "repo-sha256-zerocopy");
    using rZero = await Repository.init(pZero, { algorithm: "sha256", insecure: true });
    const byPath = new Map<string, Repository>([[p512, r512], [pBack, rBack], [pZero, rZero]]);
    hops.push([r512, p512, pBack, "sha256", false]);
    hops.push([r256, p256, pZero, "sha256", true]);
    for (const [from, fromPath, toPath, , zerocopy] of hops) {
      const to = byPath.get(toPath)!;
      let summary: CopySummary;
      try {
        summary = await copyImage(
          new LocalRepositoryEndpoint(from),
          new LocalRepositoryEndpoint(to),
          tag,
          { zerocopy },
        );
      } catch (e) {
        if (!(e instanceof ZeroCopyUnavailableError)) throw e;
        step({ type: "zerocopy-unavailable", reason: e.message });
        summary = await copyImage(
          new LocalRepositoryEndpoint(from),
          new LocalRepositoryEndpoint(to),
          tag,
        );
      }
      step({ type: "copied", from: fromPath, to: toPath, summary });
      step(await verify(to, toPath, tag));
    }
    const a = resolveImage(r256, tag);
    const b = resolveImage(rBack, tag);
    return {
      dir,
      manifestDigest: built.manifestDigest,
      roundTripIdentical: a.manifestVerity.toHex() === b.manifestVerity.toHex() &&
        a.configVerity.toHex() === b.configVerity.toHex(),
      steps,
    };
  } finally {
    if (opts.dir === undefined) await Deno.remove(dir, { recursive: true });
  }
}

/**
 * containers-storage source: the chunks produced from tar-split plus the layer directories
 * rebuild each layer's exact tar (sha256 == diff_id), for overlay and vfs stores made by
 * `skopeo copy`; a non-root consumer gets 0600 files inline.
 */

import assert from "node:assert/strict";
import { DigestHasher } from "../lib/oci/digest.ts";
import { reconstruct } from "../lib/splitdirfdstream/reconstruct.ts";
import type { Chunk } from "../lib/splitdirfdstream/chunk.ts";
import { CstorImageSource } from "../lib/oci/cstor/source.ts";
import { ContainersStore } from "../lib/oci/cstor/store.ts";
import { assertNoFdLeak, tempDir } from "./_helpers.ts";
import { buildUmociLayout, copyToStore, FIXTURE_NAME } from "./_cstor_fixture.ts";

async function sha256Of(s: ReadableStream<Uint8Array>): Promise<string> {
  using h = new DigestHasher();
  for await (const c of s) h.update(c);
  return h.digest();
}

Deno.test("cstor source: chunks rebuild every layer's tar exactly (overlay, vfs)", async (t) => {
  await using tmp = await tempDir("cfs-cstor-src-");
  const layout = await buildUmociLayout(tmp.path);
  for (const driver of ["overlay", "vfs"] as const) {
    await t.step(driver, async () => {
      const root = `${tmp.path}/${driver}`;
      await copyToStore(layout, "v3", driver, `${root}/root`, `${root}/run`);
      {
        using store = ContainersStore.open(`${root}/root`, null);
        assert.equal(store.driver, driver);
      }
      await assertNoFdLeak(async () => {
        using src = CstorImageSource.open(
          `containers-storage:[${driver}@${root}/root+${root}/run]${FIXTURE_NAME}:v3`,
          { env: { HOME: "/nonexistent" } },
        );
        assert.equal(src.layers.length, 3);
        for (let i = 0; i < src.layers.length; i++) {
          for (const bypass of [true, false]) {
            using layer = src.openLayer(i, { consumerBypassesDac: bypass });
            const seen: Chunk["type"][] = [];
            const chunks = (async function* () {
              for await (const c of layer.chunks) {
                seen.push(c.type);
                yield c;
              }
            })();
            const digest = await sha256Of(reconstruct(chunks, layer.dirfds));
            assert.equal(digest, src.layers[i].diffId, `layer ${i}, bypass ${bypass}`);
            assert.ok(seen.includes("metadata"));
            if (i === 0) {
              // etc/hostname and etc/secret are 0600: inline for a consumer without DAC bypass.
              assert.equal(layer.stats.inlined, bypass ? 0 : 2);
              // big, usr/lib/small, var/gone/sub/f (+ the two 0600 files); the hardlink has no data.
              assert.equal(layer.stats.fileBacked, bypass ? 5 : 3);
            }
          }
        }
      });
    });
  }
});

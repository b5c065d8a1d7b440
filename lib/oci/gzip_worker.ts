/**
 * Worker side of {@link ../oci/gzip_offload.ts}: gunzips the compressed chunks the main thread
 * hands over and posts the output back, so decompression runs on the other core while the
 * main thread splits, hashes and stores the tar (DESIGN "Later": both cores).
 *
 * Protocol (all buffers transferred, never copied):
 * - main → worker: `{ type: "data", chunk }`, `{ type: "end" }`, `{ type: "consumed", bytes }`;
 * - worker → main: `{ type: "want" }` (send the next input chunk), `{ type: "out", chunk }`,
 *   `{ type: "done" }`, `{ type: "error", message }`.
 *
 * Flow control: the worker asks for input only when DecompressionStream pulls it, and stops
 * reading output while more than {@link MAX_AHEAD} bytes are posted but not consumed, so
 * memory stays bounded whatever the consumer's speed.
 *
 * @module
 */

/// <reference lib="deno.worker" />

/** Output bytes the worker may run ahead of the consumer (a few tar entries' worth). */
const MAX_AHEAD = 4 * 1024 * 1024;
/**
 * Largest compressed piece handed to DecompressionStream at once: it emits a piece's whole
 * output in one go and deflate expands up to ~1032:1, so 16 KiB bounds one output to ~16 MiB
 * (as the in-thread path in decompress.ts).
 */
const GZIP_INPUT_CHUNK = 16 * 1024;

/** Messages from the main thread. */
type InMsg =
  | { type: "data"; chunk: Uint8Array<ArrayBuffer> }
  | { type: "end" }
  | { type: "consumed"; bytes: number };

const inputs: (Uint8Array<ArrayBuffer> | null)[] = [];
let inputWaiter: (() => void) | null = null;
let ahead = 0;
let aheadWaiter: (() => void) | null = null;

self.onmessage = (ev: MessageEvent<InMsg>) => {
  const m = ev.data;
  if (m.type === "consumed") {
    ahead -= m.bytes;
    if (ahead < MAX_AHEAD && aheadWaiter) {
      const w = aheadWaiter;
      aheadWaiter = null;
      w();
    }
    return;
  }
  inputs.push(m.type === "data" ? m.chunk : null);
  if (inputWaiter) {
    const w = inputWaiter;
    inputWaiter = null;
    w();
  }
};

/** The input chunk being fed to DecompressionStream and how far it got. */
let cur: Uint8Array | null = null;
let curOff = 0;

const source = new ReadableStream<Uint8Array>({
  async pull(controller) {
    if (cur === null) {
      if (inputs.length === 0) {
        self.postMessage({ type: "want" });
        await new Promise<void>((r) => (inputWaiter = r));
      }
      const c = inputs.shift()!;
      if (c === null) {
        controller.close();
        return;
      }
      cur = c;
      curOff = 0;
    }
    const end = Math.min(curOff + GZIP_INPUT_CHUNK, cur.length);
    controller.enqueue(cur.subarray(curOff, end));
    curOff = end;
    if (curOff >= cur.length) cur = null;
  },
}, { highWaterMark: 0 });

try {
  const out = source.pipeThrough(
    new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
  );
  for await (const chunk of out) {
    if (chunk.length === 0) continue;
    ahead += chunk.length;
    self.postMessage({ type: "out", chunk }, [chunk.buffer as ArrayBuffer]);
    if (ahead >= MAX_AHEAD) await new Promise<void>((r) => (aheadWaiter = r));
  }
  self.postMessage({ type: "done" });
} catch (e) {
  self.postMessage({ type: "error", message: e instanceof Error ? e.message : String(e) });
}

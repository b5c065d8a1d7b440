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
/** Output is posted in chunks of about this size (see {@link flush}). */
const OUTPUT_BATCH = 256 * 1024;
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
/** A "want" is outstanding (its answer has not arrived yet). */
let wanted = false;
/** The end of the input was seen. */
let ended = false;

/** Ask for the next input chunk unless already asked. */
function want(): void {
  if (wanted || ended) return;
  wanted = true;
  self.postMessage({ type: "want" });
}

const source = new ReadableStream<Uint8Array>({
  async pull(controller) {
    if (cur === null) {
      if (inputs.length === 0) {
        // Waiting for input: hand over what is decoded so far first.
        flush();
        want();
        await new Promise<void>((r) => (inputWaiter = r));
      }
      const c = inputs.shift()!;
      wanted = false;
      if (c === null) {
        ended = true;
        controller.close();
        return;
      }
      cur = c;
      curOff = 0;
      // Read ahead: the main thread answers only between its own work, so ask now for the
      // chunk after this one.
      want();
    }
    const end = Math.min(curOff + GZIP_INPUT_CHUNK, cur.length);
    controller.enqueue(cur.subarray(curOff, end));
    curOff = end;
    if (curOff >= cur.length) cur = null;
  },
}, { highWaterMark: 0 });

/** Decoded pieces not posted yet, and their size. */
let batch: Uint8Array[] = [];
let batchBytes = 0;

/**
 * Post the pending output as one chunk: every message and every chunk costs the consumer a
 * turn of the streams machinery (tens of µs), so ~50 KiB pieces are merged up to
 * {@link OUTPUT_BATCH} here, on the worker's core.
 */
function flush(): void {
  if (batchBytes === 0) return;
  let out: Uint8Array;
  if (batch.length === 1) out = batch[0];
  else {
    out = new Uint8Array(batchBytes);
    let o = 0;
    for (const c of batch) {
      out.set(c, o);
      o += c.length;
    }
  }
  batch = [];
  batchBytes = 0;
  ahead += out.length;
  self.postMessage({ type: "out", chunk: out }, [out.buffer as ArrayBuffer]);
}

try {
  const out = source.pipeThrough(
    new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
  );
  for await (const chunk of out) {
    if (chunk.length === 0) continue;
    batch.push(chunk);
    batchBytes += chunk.length;
    if (batchBytes < OUTPUT_BATCH) continue;
    flush();
    if (ahead >= MAX_AHEAD) await new Promise<void>((r) => (aheadWaiter = r));
  }
  flush();
  self.postMessage({ type: "done" });
} catch (e) {
  self.postMessage({ type: "error", message: e instanceof Error ? e.message : String(e) });
}

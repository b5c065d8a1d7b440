/**
 * Output discipline (DESIGN 10): results on stdout (text or `--json`), progress and errors on
 * stderr; a redrawn bar on a TTY, plain periodic lines otherwise.
 *
 * @module
 */

/** A sink for text; the CLI uses Deno's stdout/stderr, tests use buffers. */
export interface TextSink {
  /** Write text as is. */
  write(text: string): void;
  /** True when this is a terminal. */
  isTerminal(): boolean;
  /** Write raw bytes (binary output such as `oci layer`'s tar); absent on text-only sinks. */
  writeBytes?(bytes: Uint8Array): void;
}

/** A TextSink over a Deno stream with a synchronous `writeSync`. */
export function denoSink(f: { writeSync(p: Uint8Array): number; isTerminal(): boolean }): TextSink {
  const enc = new TextEncoder();
  return {
    write(text: string) {
      const b = enc.encode(text);
      let off = 0;
      while (off < b.length) off += f.writeSync(b.subarray(off));
    },
    isTerminal: () => f.isTerminal(),
    writeBytes(b: Uint8Array) {
      let off = 0;
      while (off < b.length) off += f.writeSync(b.subarray(off));
    },
  };
}

/** Minimum interval between plain (non-TTY) progress lines, so logs stay readable. */
const PLAIN_PROGRESS_INTERVAL_MS = 2000;
/** Minimum interval between TTY bar redraws: smooth enough, cheap enough. */
const TTY_REDRAW_INTERVAL_MS = 100;

/** Results, JSON and progress for one CLI invocation. */
export class Output {
  readonly stdout: TextSink;
  readonly stderr: TextSink;
  /** `--json` was given: results are JSON on stdout. */
  json = false;
  #lastProgress = 0;
  #barShown = false;
  #now: () => number;

  constructor(stdout: TextSink, stderr: TextSink, now: () => number = Date.now) {
    this.stdout = stdout;
    this.stderr = stderr;
    this.#now = now;
  }

  /** Print a text result line (ignored in `--json` mode). */
  line(text = ""): void {
    if (!this.json) {
      this.#clearBar();
      this.stdout.write(text + "\n");
    }
  }

  /** Print the JSON result (only in `--json` mode). BigInts are emitted as plain integers. */
  result(value: unknown): void {
    if (this.json) this.stdout.write(stringifyJson(value) + "\n");
  }

  /** Raw bytes-as-text to stdout regardless of mode (e.g. dumpfiles). */
  raw(text: string): void {
    this.stdout.write(text);
  }

  /** Copy a byte stream to stdout (binary results, e.g. a layer tar); needs `writeBytes`. */
  async writeStream(stream: ReadableStream<Uint8Array>): Promise<void> {
    const write = this.stdout.writeBytes;
    if (!write) throw new TypeError("This output cannot take binary data");
    for await (const chunk of stream) write.call(this.stdout, chunk);
  }

  /** A warning on stderr. */
  warn(text: string): void {
    this.#clearBar();
    this.stderr.write(`warning: ${text}\n`);
  }

  /**
   * Progress: `text` is the current state. On a TTY the line is redrawn in place; otherwise a
   * plain line is printed at most every few seconds (and always when `force`).
   */
  progress(text: string, force = false): void {
    const now = this.#now();
    if (this.stderr.isTerminal()) {
      if (!force && now - this.#lastProgress < TTY_REDRAW_INTERVAL_MS) return;
      this.#lastProgress = now;
      this.stderr.write(`\r\x1b[2K${text}`);
      this.#barShown = true;
    } else {
      if (!force && now - this.#lastProgress < PLAIN_PROGRESS_INTERVAL_MS) return;
      this.#lastProgress = now;
      this.stderr.write(text + "\n");
    }
  }

  /** End a progress display (clears the TTY bar). */
  progressDone(): void {
    this.#clearBar();
  }

  #clearBar(): void {
    if (this.#barShown) {
      this.stderr.write("\r\x1b[2K");
      this.#barShown = false;
    }
  }
}

/** JSON.stringify with BigInt support (as bare integers) and 2-space indent. */
export function stringifyJson(value: unknown, indent = 2): string {
  const marker = "\u0000bigint:";
  const s = JSON.stringify(
    value,
    (_k, v) => (typeof v === "bigint" ? marker + v.toString() : v),
    indent,
  );
  return s.replace(new RegExp(`"${marker}(-?\\d+)"`, "g"), "$1");
}

/** Human-readable byte count, e.g. `12.3 MiB`. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

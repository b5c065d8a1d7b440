/**
 * Where containers-storage lives: the same resolution containers/storage (1.43, `types/options.go`)
 * performs. composefs-rs never reads storage.conf (spec §4.4.1, §8.5); we do, so
 * `oci pull containers-storage:NAME` finds what `podman images` shows.
 *
 * Parsing is pure ({@link storeOptionsFromConf}, {@link parseStorageOpts}); the one function that
 * touches the filesystem, {@link resolveStoreOptions}, takes its file reader and environment as
 * arguments so tests can drive every branch.
 *
 * @module
 */

import { isTomlTable, parseToml, TomlError, type TomlTable, type TomlValue } from "./toml.ts";

/** Graph drivers whose on-disk layout we can read. */
export const SUPPORTED_DRIVERS = ["overlay", "vfs"] as const;

/** Root defaults (c/storage `types/options_linux.go`). */
const ROOT_GRAPHROOT = "/var/lib/containers/storage";
const ROOT_RUNROOT = "/run/containers/storage";
/** System configuration files, in preference order (the first that exists wins). */
const SYSTEM_CONF_FILES = ["/etc/containers/storage.conf", "/usr/share/containers/storage.conf"];
/** Rootless drivers c/storage keeps from the system configuration; others become vfs. */
const ROOTLESS_DRIVERS = ["overlay", "vfs", "btrfs"];

/** The resolved location of a containers-storage store and its read-only companions. */
export interface StoreOptions {
  /** Graph driver name; `null` means "detect from the graphroot's contents" (as c/storage does). */
  driver: string | null;
  /** The read-write store (absolute). */
  graphRoot: string;
  /** Run-time state directory (absolute; not needed for reading, kept for error messages). */
  runRoot: string;
  /** Additional read-only image stores, searched after `graphRoot`, in order. */
  imageStores: string[];
  /** The configuration file that was read, or `null` if none existed. */
  configFile: string | null;
  /** True when resolved with rootless defaults. */
  rootless: boolean;
}

/** A storage.conf (or STORAGE_OPTS, or a transport store spec) that cannot be used. */
export class StorageConfError extends Error {
  /** The error class name. */
  override name = "StorageConfError";
  /** The file (or `STORAGE_OPTS`, or the reference) the problem is in. */
  readonly source: string;
  /** Build the error from its structured fields. */
  constructor(message: string, source: string, options?: ErrorOptions) {
    super(message, options);
    this.source = source;
  }
}

/** What {@link storeOptionsFromConf} extracted from the `[storage]` table. */
export interface ConfFields {
  driver?: string;
  graphRoot?: string;
  runRoot?: string;
  rootlessStoragePath?: string;
  imageStores: string[];
}

function str(t: TomlTable, key: string, source: string): string | undefined {
  const v: TomlValue | undefined = t[key];
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new StorageConfError(`Key "${key}" must be a string`, source);
  return v;
}

/**
 * Extract the keys that matter for reading from a storage.conf text: `[storage] driver`,
 * `graphroot`, `runroot`, `rootless_storage_path` and `[storage.options] additionalimagestores`.
 * Unknown keys are ignored, as c/storage ignores them.
 */
export function storeOptionsFromConf(text: string, source: string): ConfFields {
  let doc: TomlTable;
  try {
    doc = parseToml(text);
  } catch (e) {
    if (e instanceof TomlError) {
      throw new StorageConfError(`Cannot parse "${source}": ${e.message}`, source, { cause: e });
    }
    throw e;
  }
  const storage = doc.storage;
  if (storage === undefined) return { imageStores: [] };
  if (!isTomlTable(storage)) throw new StorageConfError(`"storage" must be a table`, source);
  const options = storage.options;
  let imageStores: string[] = [];
  if (options !== undefined) {
    if (!isTomlTable(options)) {
      throw new StorageConfError(`"storage.options" must be a table`, source);
    }
    const a = options.additionalimagestores;
    if (a !== undefined) {
      if (!Array.isArray(a) || !a.every((s) => typeof s === "string")) {
        throw new StorageConfError(`"additionalimagestores" must be an array of strings`, source);
      }
      imageStores = a as string[];
    }
  }
  const out: ConfFields = { imageStores };
  const driver = str(storage, "driver", source);
  if (driver) out.driver = driver;
  const graphRoot = str(storage, "graphroot", source);
  if (graphRoot) out.graphRoot = graphRoot;
  const runRoot = str(storage, "runroot", source);
  if (runRoot) out.runRoot = runRoot;
  const rsp = str(storage, "rootless_storage_path", source);
  if (rsp) out.rootlessStoragePath = rsp;
  return out;
}

/** Keys naming a read-only store in driver options, after stripping the driver prefix. */
const IMAGESTORE_KEYS = new Set(["imagestore", "additionalimagestore"]);

/**
 * Parse driver options (`STORAGE_OPTS`, or the `:options` of a store spec) for additional image
 * stores. c/storage normalises keys by stripping `overlay.` / `overlay2.` / `vfs.` / a leading
 * `.` and lower-casing; `imagestore` and `additionalimagestore` both name a read-only store, whose
 * path must be absolute.
 */
export function parseStorageOpts(opts: string[], source: string): string[] {
  const stores: string[] = [];
  for (const raw of opts) {
    const opt = raw.trim();
    if (opt === "") continue;
    const eq = opt.indexOf("=");
    if (eq < 0) continue; // flag-like options (e.g. "overlay.ignore_chown_errors") do not matter here
    let key = opt.slice(0, eq).trim().toLowerCase();
    const value = opt.slice(eq + 1).trim();
    key = key.replace(/^(overlay2?|vfs)\./, "").replace(/^\./, "");
    if (!IMAGESTORE_KEYS.has(key)) continue;
    if (!value.startsWith("/")) {
      throw new StorageConfError(`Image store "${value}" is not an absolute path`, source);
    }
    stores.push(value);
  }
  return stores;
}

/** Expand `$UID`, then `$VAR` / `${VAR}` from the environment (Go's os.ExpandEnv: unset → ""). */
export function expandEnvPath(
  path: string,
  uid: number,
  env: Record<string, string | undefined>,
): string {
  return path.replaceAll("$UID", String(uid)).replace(
    /\$\{([^}]*)\}|\$([A-Za-z0-9_]+)/g,
    (_, a: string | undefined, b: string | undefined) => env[a ?? b ?? ""] ?? "",
  );
}

/** Inputs of {@link resolveStoreOptions}; every field defaults to the real process. */
export interface ResolveContext {
  /** Environment variables (default `Deno.env.toObject()`). */
  env?: Record<string, string | undefined>;
  /** Effective uid (default `Deno.uid()`). */
  uid?: number;
  /** Read a text file; `null` when it does not exist (default: the real filesystem). */
  readFile?: (path: string) => string | null;
}

function readFileOrNull(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

function xdgConfigHome(env: Record<string, string | undefined>): string | null {
  if (env.XDG_CONFIG_HOME) return env.XDG_CONFIG_HOME;
  return env.HOME ? `${env.HOME}/.config` : null;
}

/**
 * Resolve the store exactly as containers-storage does (see spec §4.4.1):
 *
 * 1. The configuration file: `$CONTAINERS_STORAGE_CONF` alone if set (it must exist — unlike
 *    c/storage we do not silently ignore a file the user named); else a per-user
 *    `$XDG_CONFIG_HOME/containers/storage.conf` (or `~/.config/...`) if it exists, even for
 *    root; else `/etc/containers/storage.conf`, else `/usr/share/containers/storage.conf`.
 * 2. Root: graphroot/runroot from the file or `/var/lib/containers/storage` and
 *    `/run/containers/storage`. Rootless (uid ≠ 0, or `_CONTAINERS_ROOTLESS_UID` under
 *    `podman unshare`): the per-user file's graphroot, else `rootless_storage_path` (with `$UID`
 *    and env expansion), else `$XDG_DATA_HOME/containers/storage` or
 *    `~/.local/share/containers/storage`; the driver is kept only if it is overlay, vfs or btrfs.
 * 3. `STORAGE_DRIVER` overrides the driver; `STORAGE_OPTS` replaces the driver options, and with
 *    them the additional image stores.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveStoreOptions } from "./storage_conf.ts";
 * const o = resolveStoreOptions({
 *   env: { CONTAINERS_STORAGE_CONF: "/my.conf", STORAGE_OPTS: "additionalimagestore=/ro" },
 *   uid: 0,
 *   readFile: (p) => p === "/my.conf" ? '[storage]\ngraphroot = "/srv/store"\n' : null,
 * });
 * assert.equal(o.graphRoot, "/srv/store");
 * assert.deepEqual(o.imageStores, ["/ro"]);
 * ```
 */
export function resolveStoreOptions(ctx: ResolveContext = {}): StoreOptions {
  const env = ctx.env ?? Deno.env.toObject();
  const readFile = ctx.readFile ?? readFileOrNull;
  const euid = ctx.uid ?? Deno.uid() ?? 0;
  const rootlessUid = env._CONTAINERS_ROOTLESS_UID !== undefined
    ? Number(env._CONTAINERS_ROOTLESS_UID)
    : euid;
  const rootless = Number.isInteger(rootlessUid) && rootlessUid !== 0;

  // 1. Which configuration file.
  let configFile: string | null = null;
  let text: string | null = null;
  let userFile = false;
  const explicit = env.CONTAINERS_STORAGE_CONF;
  if (explicit !== undefined && explicit !== "") {
    text = readFile(explicit);
    if (text === null) {
      throw new StorageConfError(
        `Storage configuration "${explicit}" (from CONTAINERS_STORAGE_CONF) does not exist`,
        explicit,
      );
    }
    configFile = explicit;
  } else {
    const cfgHome = xdgConfigHome(env);
    const candidates: [string, boolean][] = [];
    if (cfgHome) candidates.push([`${cfgHome}/containers/storage.conf`, true]);
    for (const f of SYSTEM_CONF_FILES) candidates.push([f, false]);
    for (const [f, isUser] of candidates) {
      const t = readFile(f);
      if (t !== null) {
        text = t;
        configFile = f;
        userFile = isUser;
        break;
      }
    }
  }
  const conf: ConfFields = text !== null && configFile !== null
    ? storeOptionsFromConf(text, configFile)
    : { imageStores: [] };

  // 2. Roots and driver.
  let graphRoot: string;
  let runRoot: string;
  let driver: string | null = conf.driver ?? null;
  if (!rootless) {
    graphRoot = conf.graphRoot ?? ROOT_GRAPHROOT;
    runRoot = conf.runRoot ?? ROOT_RUNROOT;
  } else {
    const dataHome = env.XDG_DATA_HOME ?? (env.HOME ? `${env.HOME}/.local/share` : null);
    if ((userFile || explicit) && conf.graphRoot) graphRoot = conf.graphRoot;
    else if (conf.rootlessStoragePath) graphRoot = conf.rootlessStoragePath;
    else if (dataHome) graphRoot = `${dataHome}/containers/storage`;
    else {
      throw new StorageConfError(
        "Cannot find the rootless store: neither XDG_DATA_HOME nor HOME is set",
        "environment",
      );
    }
    if ((userFile || explicit) && conf.runRoot) runRoot = conf.runRoot;
    else if (env.XDG_RUNTIME_DIR) runRoot = `${env.XDG_RUNTIME_DIR}/containers`;
    else runRoot = `/run/user/${rootlessUid}/containers`;
    if (driver !== null && !ROOTLESS_DRIVERS.includes(driver)) driver = "vfs";
  }
  graphRoot = expandEnvPath(graphRoot, rootlessUid, env);
  runRoot = expandEnvPath(runRoot, rootlessUid, env);
  if (!graphRoot.startsWith("/")) {
    throw new StorageConfError(
      `Graph root "${graphRoot}" is not an absolute path`,
      configFile ?? "defaults",
    );
  }

  // 3. Environment overrides.
  if (env.STORAGE_DRIVER) driver = env.STORAGE_DRIVER;
  let imageStores = conf.imageStores;
  if (env.STORAGE_OPTS !== undefined && env.STORAGE_OPTS !== "") {
    imageStores = parseStorageOpts(env.STORAGE_OPTS.split(","), "STORAGE_OPTS");
  }
  for (const s of imageStores) {
    if (!s.startsWith("/")) {
      throw new StorageConfError(
        `Image store "${s}" is not an absolute path`,
        configFile ?? "defaults",
      );
    }
  }
  return { driver, graphRoot, runRoot, imageStores, configFile, rootless };
}

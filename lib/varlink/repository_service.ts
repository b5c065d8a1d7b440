/**
 * `org.composefs.Repository` (spec §2.2/§2.3) over {@link Repository}: open repositories into
 * server-wide handles, init/ensure, fsck, gc, image objects and refs. Error names, parameter
 * names and check order follow composefs-rs's `cfsctl varlink`.
 *
 * @module
 */

import { Repository } from "../repository/repository.ts";
import { fsckReportJson } from "../repository/fsck.ts";
import { toHex, toIdString } from "../repository/object_id.ts";
import { NotFoundError } from "../repository/errors.ts";
import { parseAlgorithmName } from "../fsverity/mod.ts";
import type { HashAlgorithm } from "../fsverity/mod.ts";
import { RepositoryError } from "./errors.ts";
import type { HandleTable } from "./handles.ts";
import type { CallContext, InterfaceDefinition, MethodReply } from "./service.ts";
import type { OwnedFd } from "../../ffi/owned_fd.ts";
import { composefsMountFd } from "../mount/composefs_mount.ts";
import type { JsonObject, JsonValue } from "./protocol.ts";
import REPOSITORY_IDL from "./org.composefs.Repository.varlink" with { type: "text" };

/** `cfs varlink` flags applied to every OpenRepository (spec §2.1). */
export interface RepositoryOpenDefaults {
  /** Do not require fs-verity. */
  insecure?: boolean;
  /** Fail unless the repository requires fs-verity. */
  requireVerity?: boolean;
  /** Never upgrade a repository without meta.json. */
  noUpgrade?: boolean;
}

/** Default algorithm of InitRepository/EnsureRepository (composefs-rs `Algorithm::default`). */
const DEFAULT_ALGORITHM = "fsverity-sha512-12";
/** `--user` repository, relative to `$HOME`. */
const USER_REPO = ".var/lib/composefs";
/** `--system` repository. */
const SYSTEM_REPO = "/sysroot/composefs";

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function parseAlgorithm(p: JsonObject): HashAlgorithm {
  const name = (p.algorithm as string | null | undefined) ?? DEFAULT_ALGORITHM;
  try {
    return parseAlgorithmName(name);
  } catch (e) {
    throw RepositoryError.invalidSpec(`invalid algorithm: ${message(e)}`, { cause: e });
  }
}

/** A JSON integer for a u64 that may exceed 2^53 (`st_dev`). */
function u64(v: bigint): JsonValue {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** The repository behind `handle`, or `InvalidHandle`. */
export function repositoryFor(handles: HandleTable, handle: JsonValue | undefined): Repository {
  const repo = handles.get(handle);
  if (repo === undefined) {
    throw RepositoryError.invalidHandle(typeof handle === "number" ? handle : -1);
  }
  return repo;
}

/** Open a repository for a handle: writable when we may write there, else read-only. */
export async function openForHandle(
  path: string,
  defaults: RepositoryOpenDefaults,
): Promise<Repository> {
  const opts = {
    insecure: defaults.insecure,
    requireVerity: defaults.requireVerity,
    noUpgrade: defaults.noUpgrade,
  };
  try {
    return await Repository.open(path, { ...opts, write: true });
  } catch (writeError) {
    // A repository we may only read (permissions, read-only mount) still serves reads.
    try {
      return await Repository.open(path, { ...opts, write: false });
    } catch {
      throw writeError;
    }
  }
}

/** Image ref names may not escape `images/` (spec §5, reference gap §9.7). */
function checkImageName(name: string): void {
  if (name.startsWith("/") || name.split("/").some((c) => c === ".." || c === "")) {
    throw RepositoryError.noSuchRef(name);
  }
}

/**
 * The fds of a Mount call: exactly `[upperdir, workdir]` with `overlay`, else none (spec
 * §2.3); `error` builds the interface's error for a wrong count.
 */
export function takeMountFds(
  options: JsonObject,
  ctx: CallContext,
  error: (message: string) => Error,
): OwnedFd[] {
  const overlay = options.overlay === true;
  const want = overlay ? 2 : 0;
  if (ctx.fdCount !== want) {
    throw error(
      `Mount expects ${want} fds (${overlay ? "upperdir, workdir" : "none"}), got ${ctx.fdCount}`,
    );
  }
  return ctx.takeFds();
}

/** Mount `image` detached and return the reply: `{fd_index: 0}` with the mount fd. */
export function mountReply(
  repo: Repository,
  image: OwnedFd,
  name: string,
  options: JsonObject,
  fds: OwnedFd[],
): MethodReply {
  const [upper, work] = fds;
  const mnt = composefsMountFd(image, repo.objectsDirFd(), {
    name,
    verity: repo.insecure ? "off" : "require",
    readWrite: options.read_write === true,
    ...(upper && work ? { upperdirFd: upper, workdirFd: work } : {}),
  });
  return { parameters: { fd_index: 0 }, fds: [mnt] };
}

/** The interface definition, sharing `handles` with `org.composefs.Oci`. */
export function repositoryInterface(
  handles: HandleTable,
  defaults: RepositoryOpenDefaults = {},
): InterfaceDefinition {
  return {
    idl: REPOSITORY_IDL,
    internalError: (e) => RepositoryError.internal(message(e), { cause: e }),
    methods: {
      InitRepository: {
        writes: true,
        async handler(p): Promise<MethodReply> {
          const algorithm = parseAlgorithm(p);
          const insecure = (p.insecure as boolean | null | undefined) ?? !!defaults.insecure;
          try {
            const r = await Repository.initDetailed(p.path as string, { algorithm, insecure });
            r.repository.close();
            return { parameters: { created: r.created } };
          } catch (e) {
            throw RepositoryError.internal(message(e), { cause: e });
          }
        },
      },
      EnsureRepository: {
        writes: true,
        async handler(p): Promise<MethodReply> {
          const algorithm = parseAlgorithm(p);
          const insecure = (p.insecure as boolean | null | undefined) ?? !!defaults.insecure;
          const path = p.path as string;
          try {
            if (await exists(`${path}/meta.json`)) {
              (await Repository.open(path, { write: false, insecure })).close();
              return { parameters: { status: "Opened" } };
            }
            if (await exists(`${path}/objects`)) {
              const r = await Repository.openDetailed(path, { write: true, insecure });
              r.repository.close();
              return { parameters: { status: r.upgraded ? "Upgraded" : "Opened" } };
            }
            const r = await Repository.initDetailed(path, { algorithm, insecure });
            r.repository.close();
            return { parameters: { status: r.created ? "Created" : "Opened" } };
          } catch (e) {
            throw RepositoryError.internal(message(e), { cause: e });
          }
        },
      },
      async OpenRepository(p): Promise<MethodReply> {
        const selectors = [p.path != null, p.user === true, p.system === true];
        if (selectors.filter(Boolean).length !== 1) {
          throw RepositoryError.invalidSpec("exactly one of `path`, `user`, `system` must be set");
        }
        let path: string;
        if (p.path != null) path = p.path as string;
        else if (p.user === true) {
          const home = Deno.env.get("HOME");
          if (!home) throw RepositoryError.invalidSpec("$HOME is not set");
          path = `${home}/${USER_REPO}`;
        } else path = SYSTEM_REPO;
        let repo: Repository;
        try {
          repo = await openForHandle(path, defaults);
        } catch (e) {
          throw RepositoryError.repoNotFound(message(e), { cause: e });
        }
        const params: JsonObject = { handle: 0, hash_algorithm: repo.algorithm };
        try {
          params.objects_device_id = u64(repo.objectsDevice());
        } catch (e) {
          repo.close();
          throw RepositoryError.repoNotFound(message(e), { cause: e });
        }
        params.handle = handles.add(repo);
        return { parameters: params };
      },
      CloseRepository(p): Promise<MethodReply> {
        if (!handles.close(p.handle)) throw RepositoryError.invalidHandle(p.handle as number);
        return Promise.resolve({});
      },
      Fsck(p): Promise<MethodReply> {
        const repo = repositoryFor(handles, p.handle);
        const report = repo.fsck({ metadataOnly: p.metadata_only === true });
        return Promise.resolve({ parameters: fsckReportJson(report) as JsonObject });
      },
      Gc: {
        writes: true,
        handler(p): Promise<MethodReply> {
          const repo = repositoryFor(handles, p.handle);
          const r = repo.gc({ dryRun: p.dry_run as boolean, roots: p.roots as string[] });
          return Promise.resolve({
            parameters: {
              result: {
                objects_removed: r.objectsRemoved,
                objects_bytes: r.objectsBytes,
                images_pruned: r.imagesPruned,
                streams_pruned: r.streamsPruned,
              },
              dry_run: r.dryRun,
            },
          });
        },
      },
      ImageObjects(p): Promise<MethodReply> {
        const repo = repositoryFor(handles, p.handle);
        const name = p.name as string;
        checkImageName(name);
        let ids: Uint8Array[];
        try {
          ids = repo.imageObjects(name);
        } catch (e) {
          if (e instanceof NotFoundError) throw RepositoryError.noSuchRef(name, { cause: e });
          throw e;
        }
        const strs = ids.map((id) => toIdString(id, repo.algorithm)).sort();
        return Promise.resolve({ parameters: { object_ids: strs } });
      },
      ListImageRefs(p): Promise<MethodReply> {
        const repo = repositoryFor(handles, p.handle);
        const images = repo.listImages().map((i) => ({ name: i.name, digest: toHex(i.id) }));
        return Promise.resolve({ parameters: { images } });
      },
      Mount(p, ctx): Promise<MethodReply> {
        const repo = repositoryFor(handles, p.handle);
        const options = p.options as JsonObject;
        const name = p.name as string;
        checkImageName(name);
        const fds = takeMountFds(options, ctx, (m) => RepositoryError.invalidSpec(m));
        try {
          using image = repo.openImage(name);
          return Promise.resolve(mountReply(repo, image, name, options, fds));
        } catch (e) {
          throw RepositoryError.internal(message(e), { cause: e });
        } finally {
          for (const f of fds) f.close();
        }
      },
    },
  };
}

/**
 * The composefs varlink service end to end: our typed client and varlinkctl against a server
 * holding real repositories (a demo image pulled from an OCI layout): images, tags, fsck, GC,
 * Pull with progress frames, HasLayer/GetLayer/PutLayer/FinalizeImage and `oci copy` through
 * two server-side repositories, with the spec's typed errors (varlink-api §7).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { Repository } from "../lib/repository/repository.ts";
import { pullImage } from "../lib/oci/pull.ts";
import { copyImage } from "../lib/oci/copy.ts";
import { LocalRepositoryEndpoint } from "../lib/oci/copy_endpoint.ts";
import { resolveImage } from "../lib/oci/image_store.ts";
import { computeImageId } from "../lib/oci/composefs_image.ts";
import { toHex } from "../lib/repository/object_id.ts";
import { writeDemoImage } from "../lib/demo/demo_image.ts";
import { readableFromFd } from "../ffi/fd_stream.ts";
import { fstat, openBeneath, openDir, openPath, pipe, readDir, writeAll } from "../ffi/fs.ts";
import { O_DIRECTORY, O_RDONLY } from "../ffi/constants.ts";
import { SplitdirfdstreamDecoderStream } from "../lib/splitdirfdstream/decoder.ts";
import { encodeChunks } from "../lib/splitdirfdstream/encoder.ts";
import { reconstruct } from "../lib/splitdirfdstream/reconstruct.ts";
import { createComposefsService } from "../lib/varlink/composefs_service.ts";
import { VarlinkServer } from "../lib/varlink/server.ts";
import { ComposefsClient, VarlinkRepositoryEndpoint } from "../lib/varlink/composefs_client.ts";
import { OciError, RepositoryError, VarlinkServiceError } from "../lib/varlink/errors.ts";
import { assertNoFdLeak, requireCommand, run, tempDir } from "./_helpers.ts";

const SMALL = { files: 60, maxFileSize: 32 * 1024 };
const ZERO_DIGEST = "sha256:" + "0".repeat(64);

async function sha256Of(stream: ReadableStream<Uint8Array>): Promise<string> {
  const h = createHash("sha256");
  for await (const c of stream) h.update(c);
  return "sha256:" + h.digest("hex");
}

/** A temp dir with a demo layout, a pulled sha256 repo "a", and empty repos "b" (sha512), "c". */
async function fixture(dir: string): Promise<{ layout: string; a: string; b: string; c: string }> {
  const layout = join(dir, "layout");
  await writeDemoImage(layout, "demo", SMALL);
  const a = join(dir, "a");
  {
    using repo = await Repository.init(a, { algorithm: "sha256", insecure: true });
    await pullImage(repo, `oci:${layout}:demo`, { tag: "demo" });
  }
  const b = join(dir, "b");
  (await Repository.init(b, { algorithm: "sha512", insecure: true })).close();
  const c = join(dir, "c");
  (await Repository.init(c, { algorithm: "sha256", insecure: true })).close();
  return { layout, a, b, c };
}

/** Serve the composefs interfaces (replies checked against the IDL) on `sock` while `fn` runs. */
async function withServer(sock: string, fn: (sock: string) => Promise<void>): Promise<void> {
  using svc = createComposefsService({ checkReplies: true });
  const server = new VarlinkServer(svc.service);
  const { served } = server.listen(sock);
  try {
    await fn(sock);
  } finally {
    await server.close();
    await served;
  }
}

function isError(
  kind: string,
  cls: typeof OciError | typeof RepositoryError | typeof VarlinkServiceError,
) {
  return (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
    assert.equal(e.kind, kind);
    return true;
  };
}

Deno.test("composefs varlink: repository and image methods with typed errors", async () => {
  await using tmp = await tempDir();
  const f = await fixture(tmp.path);
  await assertNoFdLeak(async () => {
    await withServer(join(tmp.path, "s.sock"), async (sock) => {
      using c = await ComposefsClient.connect(sock);
      // R10: the selector rule.
      await assert.rejects(c.openRepository({}), isError("InvalidSpec", RepositoryError));
      await assert.rejects(
        c.openRepository({ path: f.a, user: true }),
        isError("InvalidSpec", RepositoryError),
      );
      await assert.rejects(
        c.openRepository({ path: join(tmp.path, "missing") }),
        isError("RepoNotFound", RepositoryError),
      );
      const open = await c.openRepository({ path: f.a });
      assert.equal(open.handle, 1, "handles start at 1");
      assert.equal(open.hash_algorithm, "sha256");
      assert.equal(typeof open.objects_device_id, "number");
      const h = open.handle;
      // P10: a handle works from another connection.
      using c2 = await ComposefsClient.connect(sock);
      assert.equal((await c2.fsck(h)).ok, true);

      const images = await c.listImages(h);
      assert.deepEqual(images.map((i) => [i.name, i.is_container, i.layer_count]), [[
        "demo",
        true,
        3,
      ]]);
      assert.match(images[0].manifest_digest, /^sha256:[0-9a-f]{64}$/);
      assert.deepEqual(await c.listImages(h, "nope"), []);
      const insp = await c.inspect(h, "demo");
      assert.equal(JSON.parse(insp.manifest).schemaVersion, 2);
      assert.ok(Array.isArray(JSON.parse(insp.config).rootfs.diff_ids));
      assert.deepEqual(insp.referrers, []);
      assert.equal(insp.composefs_boot_erofs, null);
      assert.deepEqual(
        (await c.inspect(h, `@${images[0].manifest_digest}`)).manifest,
        insp.manifest,
      );
      await assert.rejects(c.inspect(h, "does-not-exist"), (e: unknown) => {
        assert.ok(e instanceof OciError && e.kind === "NoSuchImage");
        assert.deepEqual(e.parameters, { image: "does-not-exist" });
        return true;
      });
      const check = await c.check(h);
      assert.deepEqual(
        [check.ok, check.images_checked, check.images_corrupted, check.errors, check.repo.ok],
        [true, 1, 0, [], true],
      );
      // O7: ComputeId equals the library's (what `cfs oci compute-id` prints).
      const computed = await c.client.call("org.composefs.Oci.ComputeId", {
        handle: h,
        image: "demo",
        verity: null,
        bootable: false,
      });
      {
        using repo = await Repository.open(f.a);
        assert.equal(computed.parameters.image_id, toHex(computeImageId(repo, "demo")));
      }
      // Mount and OciMount hand out a detached composefs mount (root, Linux ≥ 6.13).
      for (
        const [method, params] of [
          ["org.composefs.Oci.OciMount", { image: "demo", bootable: false, options: {} }],
          ["org.composefs.Oci.OciMount", {
            image: images[0].manifest_digest,
            bootable: false,
            options: {},
          }],
          ["org.composefs.Repository.Mount", {
            name: computed.parameters.image_id as string,
            options: { overlay: false },
          }],
        ] as const
      ) {
        const m = await c.client.call(method, { handle: h, ...params });
        assert.deepEqual(m.parameters, { fd_index: 0 });
        assert.equal(m.fds.length, 1);
        using mnt = m.fds[0];
        using root = openBeneath(mnt, ".", { flags: O_RDONLY | O_DIRECTORY });
        assert.ok(readDir(root).some((e) => e.name === "opt"), `${method}: the image's /opt`);
      }
      await assert.rejects(
        c.client.call("org.composefs.Oci.OciMount", {
          handle: h,
          image: "sha256:zz",
          bootable: false,
          options: {},
        }),
        (e: unknown) => e instanceof OciError && /Invalid manifest digest/.test(e.message),
      );
      await assert.rejects(
        c.client.call("org.composefs.Oci.OciMount", {
          handle: h,
          image: "nope",
          bootable: false,
          options: {},
        }),
        isError("NoSuchImage", OciError),
      );
      // O6: tag and untag.
      await c.tag(h, images[0].manifest_digest, "myimage:latest");
      await c.tag(h, images[0].manifest_digest, "myimage:v1");
      assert.deepEqual((await c.listImages(h, "myimage")).map((i) => i.name).sort(), [
        "myimage:latest",
        "myimage:v1",
      ]);
      await c.untag(h, "myimage:v1");
      assert.deepEqual((await c.listImages(h, "myimage")).map((i) => i.name), ["myimage:latest"]);
      await assert.rejects(c.tag(h, "sha256:zz", "x"), isError("InternalError", OciError));
      // R6: a dry run removes nothing (a second one reports the same), the image stays whole.
      const dry = await c.gc(h, { dryRun: true });
      assert.equal(dry.dry_run, true);
      assert.deepEqual(await c.gc(h, { dryRun: true }), dry);
      assert.equal((await c.check(h, "demo")).ok, true);
      // R3: metadata-only fsck.
      const meta = await c.fsck(h, { metadataOnly: true });
      assert.deepEqual([meta.ok, meta.objects_checked], [true, 0]);
      assert.ok((await c.fsck(h)).objects_checked > 0);
      // R8, R11, R12, R9.
      await assert.rejects(c.imageObjects(h, "refs/does-not-exist"), (e: unknown) => {
        assert.ok(e instanceof RepositoryError && e.kind === "NoSuchRef");
        assert.deepEqual(e.parameters, { reference: "refs/does-not-exist" });
        return true;
      });
      await assert.rejects(c.imageObjects(h, "../../etc"), isError("NoSuchRef", RepositoryError));
      await assert.rejects(c.fsck(999), isError("InvalidHandle", RepositoryError));
      await assert.rejects(c.listImages(999), isError("InvalidHandle", OciError));
      await assert.rejects(c.closeRepository(424242), isError("InvalidHandle", RepositoryError));
      const h2 = (await c.openRepository({ path: f.a })).handle;
      assert.equal(h2, 2);
      await c.closeRepository(h2);
      await assert.rejects(c.fsck(h2), isError("InvalidHandle", RepositoryError));
      assert.deepEqual(await c.listImageRefs(h), []);
      // L1, L2.
      assert.deepEqual(await c.ociFeatures(), ["splitdirfdstream-v0"]);
      const diffIds: string[] = JSON.parse(insp.config).rootfs.diff_ids;
      const present = await c.hasLayer(h, diffIds[0]);
      assert.equal(present.present, true);
      assert.match(present.layer_verity!, /^[0-9a-f]{64}$/);
      assert.deepEqual(await c.hasLayer(h, ZERO_DIGEST), { present: false, layer_verity: null });
      await assert.rejects(c.hasLayer(999, "nope"), isError("InvalidDigest", OciError));
      // P6: parameters absent, null or {} — ListImages needs a handle, GetInfo needs nothing.
      {
        const { UnixSocket } = await import("../ffi/socket.ts");
        using raw = await UnixSocket.connect(sock);
        const forms = ["", ',"parameters":null', ',"parameters":{}'];
        for (const m of ["org.composefs.Oci.ListImages", "org.varlink.service.GetInfo"]) {
          for (const form of forms) {
            await raw.sendMessage(new TextEncoder().encode(`{"method":"${m}"${form}}\0`));
          }
        }
        let text = "";
        const buf = new Uint8Array(65536);
        while (text.split("\0").length < 7) {
          const { n } = await raw.recvMessage(buf);
          assert.ok(n > 0, "the server keeps the connection");
          text += new TextDecoder().decode(buf.subarray(0, n));
        }
        const replies = text.split("\0").slice(0, 6).map((r) => JSON.parse(r));
        for (const r of replies.slice(0, 3)) {
          assert.deepEqual(r, {
            error: "org.varlink.service.InvalidParameter",
            parameters: { parameter: "handle" },
          });
        }
        for (const r of replies.slice(3)) assert.equal(r.parameters.product, "cfsctl");
      }
      // P5: a missing required parameter.
      await assert.rejects(
        c.client.call("org.composefs.Repository.Gc", { handle: h, dry_run: false }),
        (e: unknown) => e instanceof VarlinkServiceError && e.parameters.parameter === "roots",
      );
      // R13/R14/R15/R16.
      const fresh = join(tmp.path, "nested", "fresh");
      assert.deepEqual(await c.initRepository({ path: fresh, insecure: true }), { created: true });
      assert.deepEqual(await c.initRepository({ path: fresh, insecure: true }), { created: false });
      await assert.rejects(
        c.initRepository({ path: join(tmp.path, "x"), algorithm: "not-an-algorithm" }),
        isError("InvalidSpec", RepositoryError),
      );
      assert.deepEqual(
        await c.ensureRepository({ path: join(tmp.path, "ens", "deep"), insecure: true }),
        { status: "Created" },
      );
      assert.deepEqual(await c.ensureRepository({ path: fresh }), { status: "Opened" });
      const meta2 = JSON.parse(await Deno.readTextFile(join(tmp.path, "ens", "deep", "meta.json")));
      assert.equal(meta2.algorithm, "fsverity-sha512-12");
      // R20 and the Mount placeholder.
      await assert.rejects(
        c.client.call("org.composefs.Repository.Mount", {
          handle: h,
          name: "x",
          options: { overlay: true },
        }),
        isError("InvalidSpec", RepositoryError),
      );
      // O13.
      await assert.rejects(
        c.client.call("org.composefs.Oci.Pull", {
          handle: h,
          image: "oci:/x",
          local_fetch: "auto",
          bootable: false,
          expected_digest: "abc",
        }),
        isError("InvalidRequest", OciError),
      );
      c.close();
      c2.close();
    });
  });
});

Deno.test("composefs varlink: Pull frames, GetLayer reconstruction, PutLayer checks, oci copy through servers", async () => {
  await using tmp = await tempDir();
  const f = await fixture(tmp.path);
  await assertNoFdLeak(async () => {
    await withServer(join(tmp.path, "s.sock"), async (sock) => {
      using c = await ComposefsClient.connect(sock);
      // O9: Pull with more into the empty sha256 repo "c".
      const hc = (await c.openRepository({ path: f.c })).handle;
      const frames = [];
      for await (const fr of c.pull(hc, { image: `oci:${f.layout}:demo`, name: "pulled" })) {
        frames.push(fr);
      }
      const last = frames.at(-1)!;
      assert.ok(last.completed, "the last frame is completed");
      assert.equal(frames.filter((fr) => fr.completed).length, 1);
      for (const fr of frames) {
        assert.equal(Object.keys(fr).length, 1, `exactly one field: ${JSON.stringify(fr)}`);
      }
      assert.ok(frames.some((fr) => fr.started) && frames.some((fr) => fr.done));
      assert.deepEqual((await c.listImages(hc)).map((i) => i.name), ["pulled"]);
      // O11: a failing pull is one error reply, no completed frame.
      await assert.rejects(
        (async () => {
          for await (const _ of c.pull(hc, { image: "oci:/nonexistent/path/nope" })) {
            // no frames expected
          }
        })(),
        isError("InternalError", OciError),
      );

      const ha = (await c.openRepository({ path: f.a })).handle;
      const config = JSON.parse((await c.inspect(ha, "demo")).config);
      const diffIds: string[] = config.rootfs.diff_ids;
      // L3: GetLayer, reconstruct to the diff_id.
      for (const d of diffIds) {
        using layer = await c.getLayer(ha, d);
        assert.ok(layer.dirfds.length >= 2 && layer.lifetime.length >= 1);
        const chunks = readableFromFd(layer.pipe.dup()).pipeThrough(
          new SplitdirfdstreamDecoderStream(),
        );
        assert.equal(await sha256Of(reconstruct(chunks, layer.dirfds)), d);
      }
      // L13: more:false gives exactly one frame; the fd array keeps its shape (§4.3.1).
      {
        const single = await c.client.call("org.composefs.Oci.GetLayer", {
          handle: ha,
          params: { diff_id: diffIds[0] },
        });
        const dc = Number(single.parameters.dir_count);
        try {
          assert.ok(dc === 2 || dc === 3, `dir_count ${dc}`);
          assert.ok(single.fds.length >= dc + 2 && single.fds.length <= dc + 4);
          assert.equal(fstat(single.fds[0]).mode & 0o170000, 0o010000, "index 0 is a pipe");
          const dirs = single.fds.slice(1, 1 + dc).filter((fd) =>
            (fstat(fd).mode & 0o170000) === 0o040000
          );
          assert.equal(dirs.length, 1, "one real directory (objects/) in the region");
        } finally {
          for (const fd of single.fds) fd.close();
        }
      }
      // L4, and the check order of §4.3.6.
      await assert.rejects(c.getLayer(ha, ZERO_DIGEST), isError("NoSuchLayer", OciError));
      await assert.rejects(c.getLayer(999, "bad"), isError("InvalidDigest", OciError));
      await assert.rejects(c.getLayer(999, ZERO_DIGEST), isError("InvalidHandle", OciError));
      await assert.rejects(
        c.client.call("org.composefs.Oci.GetLayer", { handle: ha, params: {} }),
        isError("InvalidRequest", OciError),
      );
      // L11: PutLayer with one fd.
      const p1 = pipe();
      p1.write.close();
      await assert.rejects(
        c.putLayer(ha, diffIds[0], [p1.read]),
        isError("InvalidRequest", OciError),
      );
      // L9: the wrong diff_id → DiffIdMismatch, nothing committed.
      const hb = (await c.openRepository({ path: f.b })).handle;
      {
        using layer = await c.getLayer(ha, diffIds[0]);
        await assert.rejects(
          c.putLayer(hb, diffIds[1], [layer.pipe.dup(), ...layer.dirfds.map((d) => d.dup())]),
          (e: unknown) => {
            assert.ok(e instanceof OciError && e.kind === "DiffIdMismatch");
            assert.deepEqual(e.parameters, { expected: diffIds[1], actual: diffIds[0] });
            return true;
          },
        );
      }
      assert.equal((await c.hasLayer(hb, diffIds[1])).present, false);
      // L10: sha512 diff_id.
      const p2 = pipe();
      p2.write.close();
      using dir = openDir(tmp.path);
      await assert.rejects(
        c.putLayer(hb, "sha512:" + "0".repeat(128), [p2.read, dir.dup()]),
        (e: unknown) => e instanceof OciError && /sha256/.test(e.message),
      );

      // C1/C2: oci copy a (sha256) → b (sha512) through the server (relay), then to c by push.
      await using src = await VarlinkRepositoryEndpoint.open(sock, f.a);
      await using dst = await VarlinkRepositoryEndpoint.open(sock, f.b);
      const s1 = await copyImage(src, dst, "demo", { name: "copied" });
      assert.equal(s1.layersCopied, 3);
      assert.equal(s1.manifestVerity.length, 128);
      {
        using a = await Repository.open(f.a);
        using b = await Repository.open(f.b);
        const ai = resolveImage(a, "demo");
        const bi = resolveImage(b, "copied");
        assert.equal(bi.manifestDigest, ai.manifestDigest);
        assert.deepEqual(bi.configBytes, ai.configBytes);
        assert.equal(b.fsck().ok, true);
      }
      // L8: a second copy skips every layer.
      const s2 = await copyImage(src, dst, "demo", { name: "copied" });
      assert.deepEqual([s2.layersCopied, s2.layersSkipped], [0, 3]);
      // Push mode: a local source into the server.
      const hd = join(tmp.path, "d");
      (await Repository.init(hd, { algorithm: "sha256", insecure: true })).close();
      await using push = await VarlinkRepositoryEndpoint.open(sock, hd);
      {
        using a = await Repository.open(f.a);
        const s3 = await copyImage(new LocalRepositoryEndpoint(a), push, "demo");
        assert.equal(s3.layersCopied, 3);
        assert.ok(s3.objectsReflinked + s3.objectsHardlinked + s3.objectsCopied > 0);
      }
      assert.equal((await c.fsck((await c.openRepository({ path: hd })).handle)).ok, true);
      c.close();
    });
  });
});

Deno.test("varlinkctl drives cfs varlink: info, introspect, calls, Pull --more, PutLayer --push-fd, exec: and socket activation", async () => {
  const varlinkctl = requireCommand("varlinkctl");
  const activate = requireCommand("systemd-socket-activate");
  await using tmp = await tempDir();
  const f = await fixture(tmp.path);
  const cli = new URL("../cli.ts", import.meta.url).pathname;
  const sock = join(tmp.path, "s.sock");
  const deno = Deno.execPath();
  const child = new Deno.Command(deno, {
    args: ["run", "-A", cli, "varlink", "--address", sock],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let exited = false;
  child.status.then(() => exited = true);
  try {
    for (let i = 0; i < 200; i++) {
      try {
        await Deno.stat(sock);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const vc = (args: string[], allowFail = false) =>
      run(varlinkctl, ["--json=short", ...args], { allowFail });
    const info = JSON.parse((await vc(["info", sock])).stdout);
    assert.equal(info.vendor, "org.composefs");
    assert.equal(info.product, "cfsctl");
    for (const i of ["org.composefs.Repository", "org.composefs.Oci", "org.varlink.service"]) {
      assert.ok(info.interfaces.includes(i), i);
    }
    const listed = (await run(varlinkctl, ["list-interfaces", sock])).stdout.trim().split("\n");
    assert.deepEqual(listed.sort(), info.interfaces.sort());
    for (const i of ["org.composefs.Repository", "org.composefs.Oci"]) {
      const idl = (await run(varlinkctl, ["introspect", sock, i])).stdout;
      const path = join(tmp.path, `${i}.varlink`);
      await Deno.writeTextFile(path, idl);
      await run(varlinkctl, ["validate-idl", path]);
    }
    const call = async (method: string, p: unknown) =>
      JSON.parse((await vc(["call", sock, method, JSON.stringify(p)])).stdout);
    const h = (await call("org.composefs.Repository.OpenRepository", { path: f.a })).handle;
    assert.equal(h, 1);
    // Every non-fd method answers through varlinkctl.
    assert.equal((await call("org.composefs.Repository.Fsck", { handle: h })).ok, true);
    assert.equal(
      (await call("org.composefs.Repository.Gc", { handle: h, dry_run: true, roots: [] })).dry_run,
      true,
    );
    assert.deepEqual(
      await call("org.composefs.Repository.ListImageRefs", { handle: h }),
      { images: [] },
    );
    const images = (await call("org.composefs.Oci.ListImages", { handle: h })).images;
    assert.equal(images[0].name, "demo");
    const digest = images[0].manifest_digest;
    assert.equal((await call("org.composefs.Oci.Check", { handle: h })).ok, true);
    const insp = await call("org.composefs.Oci.Inspect", { handle: h, image: "demo" });
    const diffIds: string[] = JSON.parse(insp.config).rootfs.diff_ids;
    assert.deepEqual(
      await call("org.composefs.Oci.Tag", { handle: h, manifest_digest: digest, name: "t2" }),
      {},
    );
    assert.deepEqual(await call("org.composefs.Oci.Untag", { handle: h, name: "t2" }), {});
    assert.deepEqual(await call("org.composefs.Oci.GetInfo", {}), {
      features: ["splitdirfdstream-v0"],
    });
    assert.equal(
      (await call("org.composefs.Oci.HasLayer", { handle: h, diff_id: diffIds[0] })).present,
      true,
    );
    const fresh = join(tmp.path, "vc-fresh");
    assert.deepEqual(
      await call("org.composefs.Repository.InitRepository", {
        path: fresh,
        algorithm: "fsverity-sha256-12",
        insecure: true,
      }),
      { created: true },
    );
    assert.deepEqual(
      await call("org.composefs.Repository.EnsureRepository", { path: fresh }),
      { status: "Opened" },
    );
    const hf = (await call("org.composefs.Repository.OpenRepository", { path: fresh })).handle;
    // Pull --more.
    const pulled = await vc([
      "--more",
      "call",
      sock,
      "org.composefs.Oci.Pull",
      JSON.stringify({
        handle: hf,
        image: `oci:${f.layout}:demo`,
        name: "vc",
        local_fetch: "auto",
        bootable: false,
      }),
    ]);
    const frames = pulled.stdout.split("\n").filter((l) => l).map((l) =>
      JSON.parse(l.startsWith("\x1e") ? l.slice(1) : l)
    );
    assert.ok(frames.length > 1);
    assert.ok(frames.at(-1).completed);
    assert.equal(frames.filter((x: Record<string, unknown>) => x.completed).length, 1);
    assert.equal(frames.at(-1).completed.manifest_digest, digest);
    // PutLayer with --push-fd: a splitdirfdstream file as the "pipe" and a directory as dirfd 0.
    const content = new TextEncoder().encode("x".repeat(100));
    const dataDir = join(tmp.path, "files");
    await Deno.mkdir(dataDir);
    await Deno.writeFile(join(dataDir, "file"), content);
    const meta = new TextEncoder().encode("tar header bytes");
    const stream = encodeChunks([
      { type: "metadata", data: meta },
      { type: "fileBackedData", contentLength: content.length, dirfdIndex: 0, filename: "file" },
    ]);
    const streamPath = join(tmp.path, "layer.sdfs");
    await Deno.writeFile(streamPath, stream);
    const diffId = "sha256:" + createHash("sha256").update(meta).update(content).digest("hex");
    const put = JSON.parse(
      (await vc([
        `--push-fd=${streamPath}`,
        `--push-fd=${dataDir}`,
        "call",
        sock,
        "org.composefs.Oci.PutLayer",
        JSON.stringify({ handle: hf, diff_id: diffId, zerocopy: false }),
      ])).stdout,
    );
    assert.equal(put.already_present, false);
    assert.match(put.layer_verity, /^[0-9a-f]{64}$/);
    assert.equal(
      (await call("org.composefs.Oci.HasLayer", { handle: hf, diff_id: diffId })).layer_verity,
      put.layer_verity,
    );
    // Errors surface as non-zero exits naming the error.
    const bad = await vc(["call", sock, "org.composefs.Repository.Fsck", '{"handle":999}'], true);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /InvalidHandle/);
    const nope = await vc(["call", sock, "org.composefs.Oci.Nope", "{}"], true);
    assert.notEqual(nope.code, 0);

    // cfs --repo DEST --varlink ADDRESS oci copy --from SRC --from-varlink ADDRESS IMAGE
    const dest = join(tmp.path, "cli-dest");
    (await Repository.init(dest, { algorithm: "sha256", insecure: true })).close();
    const copied = await run(deno, [
      "run",
      "-A",
      cli,
      "--repo",
      dest,
      "--varlink",
      sock,
      "oci",
      "copy",
      "--from",
      f.a,
      "--from-varlink",
      sock,
      "--json",
      "demo",
    ]);
    const summary = JSON.parse(copied.stdout);
    assert.equal(summary.manifestDigest, digest);
    assert.equal(summary.layersCopied, 3);
    {
      using d = await Repository.open(dest);
      assert.equal(resolveImage(d, "demo").manifestDigest, digest);
    }

    // P8: exec: — varlinkctl runs `cfs` with the connection on fd 3 and no arguments.
    const wrapper = join(tmp.path, "cfs-exec");
    await Deno.writeTextFile(wrapper, `#!/bin/sh\nexec ${deno} run -A ${cli}\n`);
    await Deno.chmod(wrapper, 0o755);
    const viaExec = JSON.parse(
      (await vc([
        "call",
        `exec:${wrapper}`,
        "org.composefs.Repository.OpenRepository",
        JSON.stringify({ path: f.a }),
      ])).stdout,
    );
    assert.ok(viaExec.handle >= 1);

    // A connected socket on fd 3 (systemd-socket-activate --accept, like exec:): the process
    // serves that one connection and exits 0 when it ends (reference quirk §9.9 fixed).
    const acceptSock = join(tmp.path, "accept.sock");
    const acc = new Deno.Command(activate, {
      args: ["-a", "-l", acceptSock, wrapper],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    try {
      for (let i = 0; i < 100; i++) {
        try {
          await Deno.stat(acceptSock);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      assert.equal(JSON.parse((await vc(["info", acceptSock])).stdout).product, "cfsctl");
      let log = "";
      const reader = acc.stderr.pipeThrough(new TextDecoderStream()).getReader();
      const deadline = Date.now() + 20_000;
      while (!/died with code 0/.test(log) && Date.now() < deadline) {
        const r = await Promise.race([
          reader.read(),
          new Promise<{ done: true; value: undefined }>((res) =>
            setTimeout(() => res({ done: true, value: undefined }), deadline - Date.now())
          ),
        ]);
        if (r.done) break;
        log += r.value;
      }
      reader.releaseLock();
      assert.match(log, /died with code 0/, "the connected-mode server exits at EOF");
    } finally {
      acc.kill("SIGTERM");
      await acc.status;
      await acc.stderr.cancel().catch(() => {});
    }

    // P9: a listening socket on fd 3 (systemd-socket-activate), connect right away.
    const actSock = join(tmp.path, "act.sock");
    const act = new Deno.Command(activate, {
      args: ["-l", actSock, wrapper],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    try {
      for (let i = 0; i < 100; i++) {
        try {
          await Deno.stat(actSock);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      const actInfo = JSON.parse((await vc(["info", actSock])).stdout);
      assert.equal(actInfo.product, "cfsctl");
      const again = JSON.parse((await vc(["info", actSock])).stdout);
      assert.equal(again.vendor, "org.composefs");
    } finally {
      act.kill("SIGTERM");
      const st = await act.output();
      assert.equal(new TextDecoder().decode(st.stdout), "", "nothing on stdout");
    }
  } finally {
    const wasExited = exited;
    if (!exited) child.kill("SIGTERM");
    const out = await child.output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(new TextDecoder().decode(out.stdout), "", "the server never writes to stdout");
    assert.ok(!wasExited, `the server exited early (${out.code}): ${stderr}`);
  }
});

Deno.test("composefs varlink: PutLayer opens files only beneath the client's dirfds, and only for trusted peers", async () => {
  await using tmp = await tempDir();
  const repoPath = join(tmp.path, "r");
  (await Repository.init(repoPath, { algorithm: "sha256", insecure: true })).close();
  const base = join(tmp.path, "base");
  await Deno.mkdir(base);
  await Deno.writeTextFile(join(tmp.path, "secret"), "s".repeat(100));
  await Deno.writeTextFile(join(base, "inside"), "i".repeat(100));
  await Deno.symlink("../secret", join(base, "link-out"));
  const cases: { name: string; file: string; slot: "dir" | "devnull"; ok: boolean }[] = [
    { name: "a file beneath the dirfd", file: "inside", slot: "dir", ok: true },
    { name: "a .. escape", file: "../secret", slot: "dir", ok: false },
    { name: "a symlink pointing outside", file: "link-out", slot: "dir", ok: false },
    { name: "an absolute name", file: "/etc/passwd", slot: "dir", ok: false },
    { name: "a slot that is not a directory", file: "inside", slot: "devnull", ok: false },
  ];
  await assertNoFdLeak(async () => {
    await withServer(join(tmp.path, "s.sock"), async (sock) => {
      using c = await ComposefsClient.connect(sock);
      const h = (await c.openRepository({ path: repoPath })).handle;
      for (const [i, t] of cases.entries()) {
        const content = new TextEncoder().encode("i".repeat(100));
        const meta = new TextEncoder().encode(`case ${i}`);
        // Built by hand: our encoder refuses unsafe names, a hostile client would not.
        const stream = concatBytes(
          encodeChunks([{ type: "metadata", data: meta }]),
          rawFileBacked(100, 0, t.file),
        );
        const diffId = "sha256:" + createHash("sha256").update(meta).update(content).digest("hex");
        const p = pipe();
        // The stream is tiny: it fits in the pipe, so a synchronous write cannot block.
        writeAll(p.write, stream);
        p.write.close();
        const slot = t.slot === "dir" ? openDir(base) : openPathRo("/dev/null");
        const put = c.putLayer(h, diffId, [p.read, slot]);
        if (t.ok) {
          assert.equal((await put).already_present, false, t.name);
        } else {
          await assert.rejects(put, isError("InternalError", OciError), t.name);
          assert.equal(
            (await c.hasLayer(h, diffId)).present,
            false,
            `${t.name}: nothing committed`,
          );
        }
      }
    });
    // A peer whose uid is not trusted may not write at all.
    using strictSvc = createComposefsService();
    const strict = new VarlinkServer(strictSvc.service, { trustedUids: [4242424] });
    const sock2 = join(tmp.path, "strict.sock");
    const s2 = strict.listen(sock2);
    try {
      using c = await ComposefsClient.connect(sock2);
      const h = (await c.openRepository({ path: repoPath })).handle;
      const p = pipe();
      p.write.close();
      await assert.rejects(
        c.putLayer(h, ZERO_DIGEST, [p.read, openDir(base)]),
        isError("PermissionDenied", VarlinkServiceError),
      );
      assert.equal((await c.fsck(h)).ok, true, "reads stay allowed");
    } finally {
      await strict.close();
      await s2.served;
    }
  });
});

function openPathRo(path: string) {
  return openPath(path, O_RDONLY);
}

/** A FileBackedData chunk without the encoder's name validation (type, u64, u32, u32, name). */
function rawFileBacked(length: number, index: number, name: string): Uint8Array {
  const n = new TextEncoder().encode(name);
  const out = new Uint8Array(17 + n.length);
  const dv = new DataView(out.buffer);
  out[0] = 2;
  dv.setBigUint64(1, BigInt(length), true);
  dv.setUint32(9, index, true);
  dv.setUint32(13, n.length, true);
  out.set(n, 17);
  return out;
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

Deno.test("composefs varlink: a Pull stops when its client goes away, and tags nothing", async () => {
  const varlinkctl = requireCommand("varlinkctl");
  await using tmp = await tempDir();
  const layout = join(tmp.path, "layout");
  await writeDemoImage(layout, "big", { files: 40, maxFileSize: 2 * 1024 * 1024, gzip: false });
  const repoPath = join(tmp.path, "r");
  (await Repository.init(repoPath, { algorithm: "sha256", insecure: true })).close();
  await assertNoFdLeak(async () => {
    const logs: string[] = [];
    using svc = createComposefsService({ log: (m) => logs.push(m) });
    const server = new VarlinkServer(svc.service);
    const sock = join(tmp.path, "s.sock");
    const { served } = server.listen(sock);
    try {
      using c = await ComposefsClient.connect(sock);
      const h = (await c.openRepository({ path: repoPath })).handle;
      // The client is another process that reads one frame and dies (SIGPIPE from head).
      const params = JSON.stringify({
        handle: h,
        image: `oci:${layout}:big`,
        name: "big",
        local_fetch: "auto",
        bootable: false,
      });
      const out = await run("sh", [
        "-c",
        `'${varlinkctl}' --more call '${sock}' org.composefs.Oci.Pull '${params}' | head -n 1`,
      ]);
      assert.match(out.stdout, /message|started/);
      for (let i = 0; i < 400 && !logs.some((l) => /after the client left/.test(l)); i++) {
        await new Promise((r) => setTimeout(r, 25));
      }
      assert.ok(logs.some((l) => /after the client left/.test(l)), JSON.stringify(logs));
      assert.deepEqual(await c.listImages(h), [], "an aborted pull tags nothing");
      assert.equal((await c.fsck(h)).ok, true);
    } finally {
      await server.close();
      await served;
    }
  });
});

/**
 * A composefs server allowing `maxProducers` live GetLayer producers, a client connected to it
 * with a handle on repository `repoPath`, and an fd-leak check around all of it.
 */
async function withProducerServer(
  dir: string,
  repoPath: string,
  maxProducers: number,
  fn: (ctx: {
    c: ComposefsClient;
    h: number;
    stop: () => Promise<void>;
    svc: Disposable;
  }) => Promise<void>,
): Promise<void> {
  await assertNoFdLeak(async () => {
    using svc = createComposefsService({ maxProducers });
    const server = new VarlinkServer(svc.service);
    const { served } = server.listen(join(dir, "s.sock"));
    const stop = async () => {
      await server.close();
      await served;
    };
    try {
      using c = await ComposefsClient.connect(join(dir, "s.sock"));
      const h = (await c.openRepository({ path: repoPath })).handle;
      await fn({ c, h, stop, svc });
    } finally {
      await stop();
    }
  });
}

Deno.test("composefs varlink: disposing the service stops GetLayer producers nobody consumed", async () => {
  await using tmp = await tempDir();
  const f = await fixture(tmp.path);
  await withProducerServer(tmp.path, f.a, 4, async ({ c, h, stop, svc }) => {
    const diffIds: string[] = JSON.parse((await c.inspect(h, "demo")).config).rootfs.diff_ids;
    // Two transfers, never read and never closed by the client until after the service is
    // gone: their producers wait on a full pipe or on the keepalive.
    const transfers = [await c.getLayer(h, diffIds[0]), await c.getLayer(h, diffIds[1])];
    await stop();
    svc[Symbol.dispose]();
    // The client's ends close afterwards: the producers' fds must already be gone (the leak
    // check counts right after this) and nothing may touch a closed fd.
    for (const t of transfers) t[Symbol.dispose]();
  });
});

Deno.test("composefs varlink: live GetLayer producers are capped until their consumers finish", async () => {
  await using tmp = await tempDir();
  const f = await fixture(tmp.path);
  await withProducerServer(tmp.path, f.a, 1, async ({ c, h }) => {
    const diffId: string = JSON.parse((await c.inspect(h, "demo")).config).rootfs.diff_ids[0];
    const first = await c.getLayer(h, diffId);
    await assert.rejects(
      c.getLayer(h, diffId),
      (e: unknown) =>
        e instanceof OciError && e.kind === "InternalError" && /in progress/.test(e.message),
    );
    // Consume the first transfer, then release its lifetime fds: the slot frees up.
    await new Response(readableFromFd(first.pipe.dup())).arrayBuffer();
    first[Symbol.dispose]();
    let again;
    for (let i = 0; i < 200 && again === undefined; i++) {
      again = await c.getLayer(h, diffId).catch(() => undefined);
      if (again === undefined) await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(again, "a new transfer starts once the first consumer is done");
    await new Response(readableFromFd(again.pipe.dup())).arrayBuffer();
    again[Symbol.dispose]();
  });
});

import assert from "node:assert/strict";
import {
  errorFromReply,
  OciError,
  RepositoryError,
  VarlinkError,
  VarlinkServiceError,
  VarlinkTransportError,
} from "./errors.ts";

Deno.test("error factories carry the spec's names and fields", async (t) => {
  const cases: {
    name: string;
    e: VarlinkError;
    cls: typeof VarlinkError;
    error: string;
    parameters: unknown;
  }[] = [
    {
      name: "InterfaceNotFound",
      e: VarlinkServiceError.interfaceNotFound("a.b"),
      cls: VarlinkServiceError,
      error: "org.varlink.service.InterfaceNotFound",
      parameters: { interface: "a.b" },
    },
    {
      name: "MethodNotFound",
      e: VarlinkServiceError.methodNotFound("a.b.C"),
      cls: VarlinkServiceError,
      error: "org.varlink.service.MethodNotFound",
      parameters: { method: "a.b.C" },
    },
    {
      name: "MethodNotImplemented",
      e: VarlinkServiceError.methodNotImplemented("a.b.C"),
      cls: VarlinkServiceError,
      error: "org.varlink.service.MethodNotImplemented",
      parameters: { method: "a.b.C" },
    },
    {
      name: "InvalidParameter",
      e: VarlinkServiceError.invalidParameter("x"),
      cls: VarlinkServiceError,
      error: "org.varlink.service.InvalidParameter",
      parameters: { parameter: "x" },
    },
    {
      name: "PermissionDenied",
      e: VarlinkServiceError.permissionDenied(),
      cls: VarlinkServiceError,
      error: "org.varlink.service.PermissionDenied",
      parameters: {},
    },
    {
      name: "ExpectedMore",
      e: VarlinkServiceError.expectedMore(),
      cls: VarlinkServiceError,
      error: "org.varlink.service.ExpectedMore",
      parameters: {},
    },
    {
      name: "Repository.RepoNotFound",
      e: RepositoryError.repoNotFound("m"),
      cls: RepositoryError,
      error: "org.composefs.Repository.RepoNotFound",
      parameters: { message: "m" },
    },
    {
      name: "Repository.InvalidHandle",
      e: RepositoryError.invalidHandle(9),
      cls: RepositoryError,
      error: "org.composefs.Repository.InvalidHandle",
      parameters: { handle: 9 },
    },
    {
      name: "Repository.InvalidSpec",
      e: RepositoryError.invalidSpec("m"),
      cls: RepositoryError,
      error: "org.composefs.Repository.InvalidSpec",
      parameters: { message: "m" },
    },
    {
      name: "Repository.NoSuchRef",
      e: RepositoryError.noSuchRef("r"),
      cls: RepositoryError,
      error: "org.composefs.Repository.NoSuchRef",
      parameters: { reference: "r" },
    },
    {
      name: "Repository.InternalError",
      e: RepositoryError.internal("m"),
      cls: RepositoryError,
      error: "org.composefs.Repository.InternalError",
      parameters: { message: "m" },
    },
    {
      name: "Oci.RepoNotFound",
      e: OciError.repoNotFound("m"),
      cls: OciError,
      error: "org.composefs.Oci.RepoNotFound",
      parameters: { message: "m" },
    },
    {
      name: "Oci.InvalidHandle",
      e: OciError.invalidHandle(3n),
      cls: OciError,
      error: "org.composefs.Oci.InvalidHandle",
      parameters: { handle: 3n },
    },
    {
      name: "Oci.NoSuchImage",
      e: OciError.noSuchImage("i"),
      cls: OciError,
      error: "org.composefs.Oci.NoSuchImage",
      parameters: { image: "i" },
    },
    {
      name: "Oci.InternalError",
      e: OciError.internal("m"),
      cls: OciError,
      error: "org.composefs.Oci.InternalError",
      parameters: { message: "m" },
    },
    {
      name: "Oci.NoSuchLayer",
      e: OciError.noSuchLayer("sha256:a"),
      cls: OciError,
      error: "org.composefs.Oci.NoSuchLayer",
      parameters: { diff_id: "sha256:a" },
    },
    {
      name: "Oci.InvalidDigest",
      e: OciError.invalidDigest("m"),
      cls: OciError,
      error: "org.composefs.Oci.InvalidDigest",
      parameters: { message: "m" },
    },
    {
      name: "Oci.DiffIdMismatch",
      e: OciError.diffIdMismatch("e", "a"),
      cls: OciError,
      error: "org.composefs.Oci.DiffIdMismatch",
      parameters: { expected: "e", actual: "a" },
    },
    {
      name: "Oci.InvalidRequest",
      e: OciError.invalidRequest("m"),
      cls: OciError,
      error: "org.composefs.Oci.InvalidRequest",
      parameters: { message: "m" },
    },
    {
      name: "Oci.FdLimitExceeded",
      e: OciError.fdLimitExceeded(300, 240),
      cls: OciError,
      error: "org.composefs.Oci.FdLimitExceeded",
      parameters: { fd_count: 300, max_per_frame: 240 },
    },
    {
      name: "Oci.BootImageMismatch",
      e: OciError.bootImageMismatch("d", 4),
      cls: OciError,
      error: "org.composefs.Oci.BootImageMismatch",
      parameters: { expected: "d", tried: 4 },
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      assert.ok(c.e instanceof c.cls);
      assert.ok(c.e instanceof VarlinkError);
      assert.equal(c.e.error, c.error);
      assert.deepEqual(c.e.parameters, c.parameters);
      assert.equal(c.e.kind, c.error.slice(c.error.lastIndexOf(".") + 1));
      // The reply a client decodes becomes the same class.
      const back = errorFromReply(c.e.error, c.e.parameters);
      assert.equal(back.constructor, c.cls);
      assert.equal(back.name, c.e.name);
    });
  }
});

Deno.test("VarlinkError messages name the error and its fields", () => {
  assert.equal(
    RepositoryError.internal("Disk full").message,
    "org.composefs.Repository.InternalError: Disk full",
  );
  assert.equal(
    OciError.noSuchLayer("sha256:ab").message,
    'org.composefs.Oci.NoSuchLayer: diff_id "sha256:ab"',
  );
  assert.equal(
    VarlinkServiceError.permissionDenied().message,
    "org.varlink.service.PermissionDenied",
  );
  const other = errorFromReply("org.example.Foo.Bar", { x: 1 });
  assert.equal(other.constructor, VarlinkError);
  assert.equal(other.interface, "org.example.Foo");
  const cause = new Error("root");
  assert.equal(RepositoryError.internal("wrapped", { cause }).cause, cause);
});

Deno.test("VarlinkTransportError records why the connection failed", () => {
  const e = new VarlinkTransportError("protocol", "Bad bytes");
  assert.equal(e.reason, "protocol");
  assert.equal(e.name, "VarlinkTransportError");
  assert.ok(!(e instanceof VarlinkError));
});

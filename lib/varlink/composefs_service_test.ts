import assert from "node:assert/strict";
import { createComposefsService } from "./composefs_service.ts";
import {
  OCI_ERROR_KINDS,
  OCI_INTERFACE,
  REPOSITORY_ERROR_KINDS,
  REPOSITORY_INTERFACE,
} from "./errors.ts";

Deno.test("the composefs service implements exactly the IDL: every method has a handler, every error a kind", () => {
  // Construction fails if any IDL method lacks a handler or a handler lacks an IDL method.
  using svc = createComposefsService();
  assert.deepEqual(svc.service.interfaceNames(), [
    REPOSITORY_INTERFACE,
    OCI_INTERFACE,
    "org.varlink.service",
  ]);
  const repo = svc.service.interface(REPOSITORY_INTERFACE)!;
  const oci = svc.service.interface(OCI_INTERFACE)!;
  assert.deepEqual([...repo.idl.errors.keys()], [...REPOSITORY_ERROR_KINDS]);
  assert.deepEqual([...oci.idl.errors.keys()], [...OCI_ERROR_KINDS]);
  for (const m of repo.idl.methods.keys()) assert.ok(repo.method(m), m);
  for (const m of oci.idl.methods.keys()) assert.ok(oci.method(m), m);
  assert.deepEqual(svc.service.info, {
    vendor: "org.composefs",
    product: "cfsctl",
    version: "0.9.0",
    url: "https://github.com/composefs/composefs-rs",
  });
  assert.equal(svc.handles.size, 0);
});

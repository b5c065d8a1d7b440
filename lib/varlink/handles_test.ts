import assert from "node:assert/strict";
import { HandleTable } from "./handles.ts";
import { Repository } from "../repository/repository.ts";
import { tempDir } from "../../tests/_helpers.ts";

Deno.test("HandleTable hands out 1, 2, … never reused, and closes what it forgets", async () => {
  await using tmp = await tempDir();
  const r1 = await Repository.init(`${tmp.path}/a`, { algorithm: "sha256", insecure: true });
  const r2 = await Repository.open(`${tmp.path}/a`);
  const r3 = await Repository.open(`${tmp.path}/a`);
  using table = new HandleTable();
  assert.equal(table.add(r1), 1);
  assert.equal(table.add(r2), 2);
  assert.equal(table.get(1), r1);
  assert.equal(table.get("1"), undefined, "only integers are handles");
  assert.equal(table.get(1n), undefined);
  assert.equal(table.close(1), true);
  assert.equal(table.close(1), false);
  assert.throws(() => r1.fsck(), TypeError, "closed on CloseRepository");
  assert.equal(table.add(r3), 3, "1 is never reused");
  assert.equal(table.size, 2);
  table[Symbol.dispose]();
  assert.equal(table.size, 0);
  assert.throws(() => r2.fsck(), TypeError);
});

import assert from "node:assert/strict";
import {
  expandEnvPath,
  parseStorageOpts,
  resolveStoreOptions,
  StorageConfError,
  storeOptionsFromConf,
} from "./storage_conf.ts";

const files = (m: Record<string, string>) => (p: string) => m[p] ?? null;

Deno.test("storage_conf: root defaults with no configuration file", () => {
  const o = resolveStoreOptions({ env: {}, uid: 0, readFile: files({}) });
  assert.deepEqual(o, {
    driver: null,
    graphRoot: "/var/lib/containers/storage",
    runRoot: "/run/containers/storage",
    imageStores: [],
    configFile: null,
    rootless: false,
  });
});

Deno.test("storage_conf: /etc wins over /usr/share; keys are read", () => {
  const o = resolveStoreOptions({
    env: {},
    uid: 0,
    readFile: files({
      "/usr/share/containers/storage.conf": `[storage]\ndriver = "vfs"\n`,
      "/etc/containers/storage.conf": `[storage]\ndriver = "overlay"\ngraphroot = "/g"\n` +
        `runroot = "/r"\n[storage.options]\nadditionalimagestores = ["/ro1", "/ro2"]\n`,
    }),
  });
  assert.equal(o.configFile, "/etc/containers/storage.conf");
  assert.equal(o.driver, "overlay");
  assert.equal(o.graphRoot, "/g");
  assert.equal(o.runRoot, "/r");
  assert.deepEqual(o.imageStores, ["/ro1", "/ro2"]);
  const o2 = resolveStoreOptions({
    env: {},
    uid: 0,
    readFile: files({ "/usr/share/containers/storage.conf": `[storage]\ndriver = "vfs"\n` }),
  });
  assert.equal(o2.configFile, "/usr/share/containers/storage.conf");
  assert.equal(o2.driver, "vfs");
});

Deno.test("storage_conf: CONTAINERS_STORAGE_CONF is used alone; missing → typed error", () => {
  const read = files({
    "/etc/containers/storage.conf": `[storage]\ngraphroot = "/etc-root"\n`,
    "/tmp/my.conf": `[storage]\ngraphroot = "/mine"\ndriver="vfs"\n`,
  });
  const o = resolveStoreOptions({
    env: { CONTAINERS_STORAGE_CONF: "/tmp/my.conf" },
    uid: 0,
    readFile: read,
  });
  assert.equal(o.graphRoot, "/mine");
  assert.equal(o.driver, "vfs");
  assert.equal(o.configFile, "/tmp/my.conf");
  assert.throws(
    () =>
      resolveStoreOptions({
        env: { CONTAINERS_STORAGE_CONF: "/nope.conf" },
        uid: 0,
        readFile: read,
      }),
    (e) =>
      e instanceof StorageConfError && e.source === "/nope.conf" &&
      /does not exist/.test(e.message),
  );
});

Deno.test("storage_conf: per-user file overrides the system one, even for root", () => {
  const o = resolveStoreOptions({
    env: { HOME: "/home/u" },
    uid: 0,
    readFile: files({
      "/home/u/.config/containers/storage.conf": `[storage]\ngraphroot = "/user-root"\n`,
      "/etc/containers/storage.conf": `[storage]\ngraphroot = "/etc-root"\n`,
    }),
  });
  assert.equal(o.graphRoot, "/user-root");
  assert.equal(o.configFile, "/home/u/.config/containers/storage.conf");
});

Deno.test("storage_conf: rootless defaults and rootless_storage_path expansion", () => {
  const o = resolveStoreOptions({
    env: { HOME: "/home/u", XDG_RUNTIME_DIR: "/run/user/1000" },
    uid: 1000,
    readFile: files({
      "/usr/share/containers/storage.conf":
        `[storage]\ndriver = "devmapper"\ngraphroot="/var/lib/x"\n`,
    }),
  });
  assert.equal(o.rootless, true);
  assert.equal(o.graphRoot, "/home/u/.local/share/containers/storage"); // system graphroot ignored
  assert.equal(o.runRoot, "/run/user/1000/containers");
  assert.equal(o.driver, "vfs"); // devmapper is not usable rootless
  const o2 = resolveStoreOptions({
    env: { HOME: "/home/u", XDG_DATA_HOME: "/data" },
    uid: 1000,
    readFile: files({}),
  });
  assert.equal(o2.graphRoot, "/data/containers/storage");
  assert.equal(o2.runRoot, "/run/user/1000/containers");
  const o3 = resolveStoreOptions({
    env: { HOME: "/home/u", _CONTAINERS_ROOTLESS_UID: "1234" },
    uid: 0, // inside podman unshare
    readFile: files({
      "/etc/containers/storage.conf":
        `[storage]\ndriver = "overlay"\nrootless_storage_path = "$HOME/s/$UID"\n`,
    }),
  });
  assert.equal(o3.rootless, true);
  assert.equal(o3.graphRoot, "/home/u/s/1234");
  assert.equal(o3.driver, "overlay");
  assert.throws(
    () => resolveStoreOptions({ env: {}, uid: 1000, readFile: files({}) }),
    StorageConfError,
  );
});

Deno.test("storage_conf: STORAGE_DRIVER and STORAGE_OPTS override", () => {
  const o = resolveStoreOptions({
    env: {
      STORAGE_DRIVER: "vfs",
      STORAGE_OPTS:
        "overlay.mountopt=nodev,additionalimagestore=/a,overlay.imagestore=/b,.imagestore=/c",
    },
    uid: 0,
    readFile: files({
      "/etc/containers/storage.conf":
        `[storage]\ndriver="overlay"\n[storage.options]\nadditionalimagestores=["/conf"]\n`,
    }),
  });
  assert.equal(o.driver, "vfs");
  assert.deepEqual(o.imageStores, ["/a", "/b", "/c"]); // replaced, not appended
  assert.throws(
    () =>
      resolveStoreOptions({ env: { STORAGE_OPTS: "imagestore=rel" }, uid: 0, readFile: files({}) }),
    (e) => e instanceof StorageConfError && e.source === "STORAGE_OPTS",
  );
});

Deno.test("storage_conf: bad files give typed errors naming the file", () => {
  for (
    const bad of [
      '[storage]\ndriver = ["x"]',
      "[storage\n",
      "storage = 1",
      '[storage.options]\nadditionalimagestores = "x"',
      '[storage]\ngraphroot = "rel/path"',
    ]
  ) {
    assert.throws(
      () =>
        resolveStoreOptions({
          env: { CONTAINERS_STORAGE_CONF: "/c" },
          uid: 0,
          readFile: files({ "/c": bad }),
        }),
      (e) => e instanceof StorageConfError && e.message.includes('"'),
      bad,
    );
  }
});

Deno.test("storage_conf: helpers", () => {
  assert.deepEqual(storeOptionsFromConf("", "x"), { imageStores: [] });
  assert.deepEqual(parseStorageOpts(["", "size=10G", "OVERLAY2.ImageStore=/z"], "s"), ["/z"]);
  assert.equal(expandEnvPath("$HOME/${X}/$UID/$NOPE", 7, { HOME: "/h", X: "x" }), "/h/x/7/");
});
